"""netfilter.conntrack.facts against the live kernel, through real ansible.

conntrack-tools is the oracle: what the module reports for a namespace the test
built must equal what conntrack -C, -L and -S report for the same namespace.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from support import traffic
from support.ansible import run_module, run_playbook
from support.kernel import Netns, read_int, write_value

# conntrack -S names → the facts' stats.totals names (conntrack-tools' names are aliases there).
ORACLE_STATS = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
                "search_restart", "clash_resolve", "chaintoolong")


def facts_in(ns, **args):
    result = run_module("facts", args, netns=ns)
    assert not result.get("failed"), result.get("msg") or result["_stderr"]
    assert result["changed"] is False
    return result["ansible_facts"]["conntrack"]


def oracle_states(ns):
    """TCP entries per state from conntrack -L, the way conntrack-tools prints them."""
    states = collections.Counter()
    for line in ns.conntrack("-L", "-p", "tcp").stdout.splitlines():
        words = line.split()
        if len(words) > 3 and words[0] == "tcp":
            states[words[3]] += 1
    return dict(states)


def oracle_stats(ns):
    totals = collections.Counter()
    for line in ns.conntrack("-S").stdout.splitlines():
        for word in line.split():
            key, _sep, value = word.partition("=")
            if key in ORACLE_STATS:
                totals[key] += int(value)
    return dict(totals)


def netns_inode(ns):
    return os.stat("/run/netns/%s" % ns.name).st_ino


def test_facts_equal_conntrack_tools_for_a_namespace_with_known_connections(netns):
    connections = 25
    with traffic.tcp_connections(netns, connections):
        facts = facts_in(netns, table=True, top_sources=3)
        count, states, stats = netns.count(), oracle_states(netns), oracle_stats(netns)
    assert facts["available"] is True and facts["active"] is True
    assert count == connections
    assert facts["usage"]["count"] == count
    assert facts["stats"]["totals"]["entries"] == count
    assert facts["table"]["entries_read"] == count
    assert facts["table"]["tcp_states"] == states == {"ESTABLISHED": connections}
    assert facts["table"]["by_protocol"] == {"tcp": connections}
    assert facts["table"]["assured"] == connections
    assert facts["table"]["top_sources"] == [{"address": "127.0.0.1", "count": connections}]
    assert facts["stats"]["source"] == "proc"
    for key in ORACLE_STATS:
        assert facts["stats"]["totals"][key] == stats[key], key


def test_udp_unreplied_entries_equal_conntrack_tools(kernel_lock):
    with Netns(ruleset=traffic.UDP_FILL_RULESET) as ns:
        sent = traffic.udp_fill(ns, 300, udp_timeout=120)
        facts = facts_in(ns, table=True)
        listed = [line for line in ns.conntrack("-L", "-p", "udp").stdout.splitlines() if line.startswith("udp")]
        count = ns.count()
    assert sent == 300
    assert facts["usage"]["count"] == count == len(listed)
    assert facts["table"]["by_protocol"] == {"udp": count}
    assert facts["table"]["unreplied"] == sum("[UNREPLIED]" in line for line in listed) == count
    assert facts["table"]["assured"] == 0


def test_table_walk_through_conntrack_tool_agrees_with_proc(netns):
    with traffic.tcp_connections(netns, 10):
        via_proc = facts_in(netns, table=True, table_source="proc", gather_environment=False)["table"]
        via_tool = facts_in(netns, table=True, table_source="conntrack", gather_environment=False)["table"]
    assert via_tool["source"] == "conntrack"
    for key in ("entries_read", "by_family", "by_protocol", "tcp_states", "assured", "unreplied", "top_sources"):
        assert via_proc[key] == via_tool[key], key


def test_table_limit_caps_the_walk_and_says_truncated(netns):
    with traffic.tcp_connections(netns, 12):
        table = facts_in(netns, table=True, table_limit=5)["table"]
    assert table["entries_read"] == 5 and table["truncated"] is True and table["limit"] == 5


def test_sample_reports_the_count_rate(netns):
    facts = facts_in(netns, sample_seconds=1)
    sample = facts["stats"]["sample"]
    assert sample["seconds"] >= 1
    assert set(sample["rates_per_second"]) == {"count", "drop", "insert_failed", "early_drop", "chaintoolong"}
    assert sample["rates_per_second"]["count"] == 0.0  # nothing runs in this namespace


def test_overflowing_a_small_max_raises_drop_and_the_table_full_log(global_sysctls):
    with Netns(ruleset=traffic.UDP_FILL_RULESET) as ns:
        inode = netns_inode(ns)
        before = facts_in(ns)
        log = before["kernel_log"]
        assert log["readable"] is True, before["warnings"]
        # The kernel rate-limits these messages (a burst of 10 per 5 s, machine-wide):
        # let an earlier burst expire so that ours is logged.
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        if log["last_seen_seconds_since_boot"] is not None:
            time.sleep(max(0.0, log["last_seen_seconds_since_boot"] + 6 - uptime))
        write_value("nf_conntrack_max", 16)
        traffic.udp_fill(ns, 200, udp_timeout=60)
        after = facts_in(ns)
        write_value("nf_conntrack_max", global_sysctls["nf_conntrack_max"])
    assert after["usage"]["max"] == 16
    assert after["usage"]["count"] <= 16
    assert after["stats"]["totals"]["drop"] > before["stats"]["totals"]["drop"]
    # A new line, seen by its time: the count is of the lines still in the kernel's ring buffer,
    # and once the buffer is full of such lines each new one pushes an old one out.
    seen_before = before["kernel_log"]["last_seen_seconds_since_boot"]
    seen_after = after["kernel_log"]["last_seen_seconds_since_boot"]
    assert seen_after is not None and (seen_before is None or seen_after > seen_before)
    assert after["kernel_log"]["table_full_count"] >= 1
    assert inode in after["kernel_log"]["netns"]
    assert read_int("nf_conntrack_max") == int(global_sysctls["nf_conntrack_max"])


NAT_RULESET = """
table ip nctest_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "lo" masquerade
    }
}
"""


def test_nat_rules_are_seen_only_where_they_exist(netns):
    assert facts_in(netns)["environment"]["nat_rules_present"] is False
    netns.nft(NAT_RULESET)
    env = facts_in(netns)["environment"]
    assert env["nat_rules_present"] is True and env["nat_rules_source"] == "nftables"


def test_inside_a_namespace_the_global_keys_are_not_settable(netns):
    facts = facts_in(netns)
    assert facts["initial_netns"] is False
    assert facts["host_settable"] is False


def test_on_the_host_the_namespace_is_initial_and_settable(kernel_lock):
    result = run_module("facts", {"gather_environment": False})
    facts = result["ansible_facts"]["conntrack"]
    assert facts["available"] is True
    assert facts["module"] == "builtin"  # this machine's kernel has nf_conntrack built in
    assert facts["initial_netns"] is True
    assert facts["host_settable"] is True
    assert facts["memory"]["source"] == "sysfs" and facts["memory"]["slab_size_bytes"] > 0
    assert facts["usage"]["max"] == read_int("nf_conntrack_max")


def test_facts_playbook_prints_the_summary(netns):
    """README's main job: the FQCN playbook shows the facts readably, with and without the walk."""
    with traffic.tcp_connections(netns, 3):
        proc, recap = run_playbook("netfilter.conntrack.facts", netns=netns,
                                   extra_vars={"conntrack_table": True, "conntrack_sample_seconds": 0.5})
    assert recap["localhost"]["failed"] == 0, proc.stdout + proc.stderr
    for text in ("usage: 3 / ", "non-initial netns", "stats (proc): drop=", "memory: ",
                 "table walk: 3 entries", "'ESTABLISHED': 3", "rates over "):
        assert text in proc.stdout, text


def test_check_mode_reads_the_same_facts(netns):
    result = run_module("facts", {}, netns=netns, check=True)
    assert result["changed"] is False
    assert result["ansible_facts"]["conntrack"]["available"] is True


@pytest.mark.parametrize("args, message", [
    ({"table_limit": 0}, "table_limit"),
    ({"sample_seconds": 301}, "sample_seconds"),
    ({"top_sources": -1}, "top_sources"),
    ({"table_source": "kernel"}, "table_source"),
    ({"table": "maybe"}, "table"),
    ({"no_such_option": 1}, "no_such_option"),
])
def test_bad_options_fail_with_a_clear_message(args, message):
    result = run_module("facts", args)
    assert result.get("failed") is True
    assert message in result["msg"]


IMAGE = "localhost/netfilter-conntrack-test"


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_module_in_a_container_reports_a_non_initial_namespace():
    """A real container (--network none): ansible from the test venv, mounted read-only, runs inside."""
    here = os.path.dirname(os.path.abspath(__file__))
    venv = os.path.dirname(os.path.dirname(sys.executable))
    python_home = os.path.realpath(sys.executable)
    python_home = python_home[:python_home.index("/bin/")] if "/bin/" in python_home else None
    collections_path = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(":")[0]
    if not collections_path:
        pytest.skip("ANSIBLE_COLLECTIONS_PATH is not set (run through scripts/test live)")
    scripts = os.path.join(here, "..", "..", "scripts")
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(scripts, "containers.conf"))
    # Builds the local image on a fresh machine; a no-op when it is current.
    subprocess.run([os.path.join(scripts, "test-image")], stdout=subprocess.DEVNULL, check=True, env=env, timeout=600)
    mounts = ["-v", "%s:%s:ro" % (venv, venv), "-v", "%s:%s:ro" % (collections_path, collections_path)]
    if python_home and not python_home.startswith(venv):
        mounts += ["-v", "%s:%s:ro" % (python_home, python_home)]
    cmd = (["podman", "run", "--rm", "--network", "none"] + mounts
           + ["-e", "ANSIBLE_COLLECTIONS_PATH=" + collections_path, "-e", "ANSIBLE_PYTHON_INTERPRETER=" + sys.executable,
              "-e", "ANSIBLE_LOCAL_TEMP=/tmp/ansible-local", "-e", "ANSIBLE_REMOTE_TEMP=/tmp/ansible-remote",
              IMAGE, os.path.join(venv, "bin", "ansible"), "localhost", "-c", "local", "-i", "localhost,",
              "-m", "netfilter.conntrack.facts", "-o"])
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    facts = json.loads(proc.stdout.split("=>", 1)[1])["ansible_facts"]["conntrack"]
    assert facts["available"] is True
    assert facts["initial_netns"] is False
    assert facts["host_settable"] is False
    # No /dev/kmsg, dmesg or journal in the image: a warning, not a failure.
    assert facts["kernel_log"]["readable"] is False
    assert any("kernel log" in w for w in facts["warnings"])
