"""Every namespace seen from the host (issue 12): the facts module's ``namespaces: all``
against namespaces this test makes, with conntrack-tools inside each one as the oracle.

- three ip netns with a sleeping process each: ``known`` (7 entries inserted with
  ``conntrack -I``, nsid 42 set with ``ip netns set``), ``small`` (3 entries) and ``filler``,
  which overflows a global nf_conntrack_max lowered to 512 (restored by global_sysctls) with
  UDP flows over its loopback, so that its ``drop`` counter grows;
- one more ip netns with no process in it: listed, but not readable from the host;
- a podman container (``--network none``) with 5 entries, named by the facts.

The facts must give each namespace the count of ``conntrack -C`` and the counters of
``conntrack -S`` run inside it, and the audit's table-full cause must name the filler.
"""
import json
import os
import shutil
import uuid

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import reading
from support.ansible import run_module, run_playbook
from support.kernel import TRACKING_RULESET, EnteredNetns, Netns, run, write_value
from support.traffic import UDP_FILL_RULESET, udp_fill

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL_MAX = 512
FILL = 700  # UDP flows sent into the filler: about 188 of them find no room
ENTRIES = {"known": 7, "small": 3}
CONTAINER_ENTRIES = 5
NSID = 42
COUNTERS = ("drop", "early_drop", "insert_failed", "invalid", "clash_resolve", "search_restart")

pytestmark = pytest.mark.skipif(shutil.which("conntrack") is None, reason="needs conntrack-tools")


def insert(ns, n):
    for i in range(n):
        ns.conntrack("-I", "-p", "udp", "-s", "10.9.0.1", "-d", "10.9.0.2", "--sport", str(2000 + i),
                     "--dport", "53", "-t", "600")


def oracle_counters(ns):
    columns, rows = reading.parse_conntrack_s(ns.conntrack("-S").stdout)
    return dict((name, sum(row[i] for row in rows)) for i, name in enumerate(columns))


def podman(*args, check=True):
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "scripts", "containers.conf"))
    return run(["podman"] + list(args), check=check, env=env)


@pytest.fixture
def container():
    """A podman container with its own network namespace, removed afterwards; None without podman."""
    if shutil.which("podman") is None:
        yield None
        return
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "scripts", "containers.conf"))
    image = os.environ.get("NC_TEST_IMAGE")
    if not image:
        image = run([os.path.join(ROOT, "scripts", "test-image")], env=env, timeout=600).stdout.strip().splitlines()[-1]
    name = "nct-ns-%s" % uuid.uuid4().hex[:8]
    podman("run", "-d", "--name", name, "--network", "none", image, "sleep", "infinity")
    net = None
    try:
        pid = int(podman("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
        net = EnteredNetns(pid)
        yield name, net
    finally:
        if net is not None:
            net.close()
        podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture
def lab(global_sysctls, container):
    spaces = {}
    try:
        for kind in ("known", "small", "filler"):
            ns = Netns(prefix="nct-ns%s" % kind, ruleset=UDP_FILL_RULESET if kind == "filler" else TRACKING_RULESET)
            spaces[kind] = ns.__enter__()
            ns.popen(["sleep", "600"])  # the process through which the host reads it
        idle = Netns(prefix="nct-nsidle", track=False)
        spaces["idle"] = idle.__enter__()
        run(["ip", "netns", "set", spaces["known"].name, str(NSID)])
        for kind, n in ENTRIES.items():
            insert(spaces[kind], n)
        if container is not None:
            container[1].nft(TRACKING_RULESET)
            insert(container[1], CONTAINER_ENTRIES)
        write_value("nf_conntrack_max", SMALL_MAX)
        udp_fill(spaces["filler"], FILL, udp_timeout=600, workers=1)
        yield spaces, container
    finally:
        for ns in spaces.values():
            ns.delete()


def by_name(facts):
    out = {}
    for ns in facts["namespaces"]:
        name = (ns.get("owner") or {}).get("netns_name")
        if name:
            out[name] = ns
    return out


def test_facts_report_every_namespace_as_conntrack_does_inside_it(lab):
    spaces, container = lab
    result = run_module("facts", {"namespaces": "all"})
    assert not result["failed"], result
    facts = result["ansible_facts"]["conntrack"]
    named = by_name(facts)
    for kind in ("known", "small", "filler"):
        ns, mine = spaces[kind], named[spaces[kind].name]
        assert mine["readable"] is True and mine["owner"]["kind"] == "ip-netns"
        assert mine["entries"] == ns.count(), kind
        oracle = oracle_counters(ns)
        for counter in COUNTERS:
            if counter in oracle:
                assert mine["stats"]["totals"][counter] == oracle[counter], (kind, counter)
    assert named[spaces["known"].name]["entries"] == ENTRIES["known"]
    assert named[spaces["known"].name]["nsid"] == NSID
    filler = named[spaces["filler"].name]
    assert filler["entries"] == SMALL_MAX and filler["stats"]["totals"]["drop"] > 0
    idle = named[spaces["idle"].name]
    assert idle["readable"] is False and "no process runs in it" in idle["reason"]
    if container is not None:
        name, net = container
        mine = [ns for ns in facts["namespaces"] if (ns["owner"] or {}).get("container_name") == name]
        assert mine, [ns["owner"] for ns in facts["namespaces"]]
        assert mine[0]["owner"]["runtime"] == "podman" and mine[0]["entries"] == net.count() == CONTAINER_ENTRIES
    host = facts["namespaces"][0]
    assert host["current"] is True and host["owner"]["kind"] == "host"


def test_the_audit_names_the_namespace_that_filled_the_table(lab, tmp_path):
    spaces, dummy = lab
    facts = run_module("facts", {"namespaces": "all"})["ansible_facts"]["conntrack"]
    rec = run_module("recommend", {"facts": facts, "force": True})
    assert not rec["failed"], rec
    causes = dict((c["id"], c) for c in rec["recommendation"]["verdict"]["causes"])
    filler = spaces["filler"].name
    assert "netns %s" % filler in causes["table_full"]["summary"]
    assert rec["recommendation"]["namespaces"]["largest"]["label"] == "netns %s" % filler
    # Sizing takes the real counts: the fullest namespace is a need of its own, the memory prices them all.
    entries = rec["recommendation"]["entries"]
    assert entries["sources"]["largest_namespace"] >= by_name(facts)[filler]["entries"] == SMALL_MAX
    assert rec["recommendation"]["memory"]["namespaces_counted"] == len(
        [ns for ns in facts["namespaces"] if isinstance(ns.get("entries"), int)])
    # The audit role, as users run it: it reads the namespaces by default (audit_namespaces).
    out = os.path.join(tmp_path, "report")
    proc, recap = run_playbook("netfilter.conntrack.audit", extra_vars={"audit_dir": out, "audit_fail_on": "never"})
    assert proc.returncode == 0 and recap["localhost"]["failed"] == 0, proc.stdout + proc.stderr
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    found = [f for f in report["hosts"][0]["findings"] if f["rule"] == "cause_table_full"]
    assert found and "netns %s" % filler in found[0]["message"]
    inode = by_name(facts)[filler]["inode"]
    assert found[0]["namespaces"][0]["inode"] == inode
    log = facts.get("kernel_log") or {}
    if log.get("readable") and log.get("netns"):
        # "table full in netns N" names the namespace by its inode (rate-limited, so only when logged)
        assert inode in log["netns"] or log["table_full_count"] > 0
