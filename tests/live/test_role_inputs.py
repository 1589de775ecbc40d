"""The roles refuse bad inputs before any change, and take booleans from -e as strings.

Each refused run goes through the real playbooks against localhost, with and without
--check, and must leave every /proc/sys/net/netfilter value and every file in the
directories the tune role writes exactly as they were, with a message that names the
variable.
"""
import hashlib
import os
import re
import subprocess

import pytest

from support.ansible import run_playbook
from support.kernel import NETFILTER

WATCHED_DIRS = ("/etc/sysctl.d", "/etc/modprobe.d", "/etc/modules-load.d", "/etc/udev/rules.d",
                "/etc/ansible/facts.d")
# Counters, not settings: they move with the traffic of the machine.
MOVING = ("nf_conntrack_count",)


def snapshot():
    values = {}
    for name in sorted(os.listdir(NETFILTER)):
        if name in MOVING:
            continue
        try:
            with open(os.path.join(NETFILTER, name)) as f:
                values[name] = f.read()
        except OSError as exc:
            values[name] = "unreadable: %s" % exc.strerror
    files = {}
    for directory in WATCHED_DIRS:
        for root, _dirs, names in os.walk(directory):
            for name in names:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    files[path] = "not a regular file"
                    continue
                with open(path, "rb") as f:
                    files[path] = hashlib.sha256(f.read()).hexdigest()
    return {"netfilter": values, "files": files}


def args(*pairs):
    """-e key=value pairs: what a shell user types, so every value arrives as a string."""
    out = []
    for pair in pairs:
        out += ["-e", pair]
    return out


TUNE_REFUSALS = [
    pytest.param(["conntrack_tune_profle=nat_gateway"], "unknown variable conntrack_tune_profle; did you mean conntrack_tune_profile?",
                 id="typo"),
    pytest.param(["conntrack_tune_profile=nat_gatway"], "conntrack_tune_profile='nat_gatway' is refused: it must be one of:",
                 id="bad-profile"),
    pytest.param(["conntrack_tune_peak_entries=lots"], "conntrack_tune_peak_entries='lots' is refused: it must be a whole number",
                 id="wrong-type"),
    pytest.param(['{"conntrack_tune_settings": [{"nf_conntrack_max": 1}]}'],
                 "conntrack_tune_settings=[{'nf_conntrack_max': 1}] is refused: it must be a dict", id="list-for-settings"),
    pytest.param(['{"conntrack_tune_rates": [1]}'], "conntrack_tune_rates=[1] is refused: it must be a dict", id="list-for-rates"),
    pytest.param(["conntrack_tune_max=lots"], "unknown variable conntrack_tune_max; to set nf_conntrack_max, use conntrack_tune_settings",
                 id="max-outside-settings"),
    pytest.param(['{"conntrack_tune_rates": {"tcp_new_per_sec": 6500}}'], "conntrack_tune_rates.tcp_new_per_sec", id="unknown-rate"),
    pytest.param(["conntrack_tune_peak_entries=-1"], "conntrack_tune_peak_entries='-1' is refused", id="negative-peak"),
    pytest.param(["conntrack_tune_headroom=0"], "conntrack_tune_headroom='0' is refused", id="zero-headroom"),
    pytest.param(['{"conntrack_tune_rates": {"tcp_new_per_second": 1e308}}'], "conntrack_tune_rates.tcp_new_per_second=1e+308",
                 id="absurd-rate"),
]

AUDIT_REFUSALS = [
    pytest.param(["conntrack_audit_textfile_name=../x.prom"], "conntrack_audit_textfile_name", id="textfile-dotdot"),
    pytest.param(["conntrack_audit_textfile_name=x.txt"], "conntrack_audit_textfile_name", id="textfile-not-prom"),
    pytest.param(['{"conntrack_audit_query": "summary", "conntrack_audit_query_file": "../query.json"}'], "conntrack_audit_query_file",
                 id="query-file-dotdot"),
    pytest.param(['{"conntrack_audit_thresholds": [1]}'], "conntrack_audit_thresholds=[1] is refused: it must be a dict",
                 id="list-for-thresholds"),
    pytest.param(["conntrack_audit_sample_seconds=soon"], "conntrack_audit_sample_seconds='soon' is refused: it must be a number",
                 id="wrong-type"),
    pytest.param(["conntrack_audit_tabel=true"], "unknown variable conntrack_audit_tabel; did you mean conntrack_audit_table?", id="typo"),
]


def assert_refused_before_any_change(proc, recap, before, message):
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert recap["localhost"]["failed"] == 1 and recap["localhost"]["changed"] == 0, out
    assert message in out, out
    assert snapshot() == before, out
    # One short line, not ansible-core's argument-spec refusal with the whole spec after it.
    assert "argument_spec_data" not in out and "Validation of arguments failed" not in out, out
    assert max(len(line) for line in out.splitlines()) < 2000, out
    # Refused before any host was read.
    assert "Read conntrack" not in out, out


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
@pytest.mark.parametrize("extra, message", TUNE_REFUSALS)
def test_tune_refuses_a_bad_variable_before_any_change(kernel_lock, extra, message, check):
    before = snapshot()
    proc, recap = run_playbook("netfilter.conntrack.tune", check=check, args=args(*extra))
    assert_refused_before_any_change(proc, recap, before, message)


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_rollback_refuses_a_typo_before_any_change(kernel_lock, check):
    before = snapshot()
    proc, recap = run_playbook("netfilter.conntrack.rollback", check=check,
                               args=args("conntrack_tune_recrod_file=/etc/ansible/facts.d/x.fact"))
    assert_refused_before_any_change(proc, recap, before,
                                     "unknown variable conntrack_tune_recrod_file; did you mean conntrack_tune_record_file?")


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
@pytest.mark.parametrize("extra, message", AUDIT_REFUSALS)
def test_audit_refuses_outputs_outside_its_directories_before_any_write(
        kernel_lock, tmp_path, extra, message, check):
    out_dir = tmp_path / "audit"
    before = snapshot()
    proc, recap = run_playbook("netfilter.conntrack.audit", check=check,
                               args=args("conntrack_audit_dir=%s" % out_dir, *extra))
    assert_refused_before_any_change(proc, recap, before, message)
    assert not out_dir.exists(), list(out_dir.rglob("*"))
    assert not (tmp_path / "x.prom").exists() and not (tmp_path / "query.json").exists()


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_health_gate_false_from_the_command_line_turns_the_gate_off(netns, tmp_path, check):
    before = snapshot()
    was = netns.sysctl("nf_conntrack_udp_timeout")
    proc, recap = run_playbook("netfilter.conntrack.tune", netns=netns, check=check, args=args(
        "conntrack_tune_health_gate=false", "conntrack_tune_persist_sysctl=false", "conntrack_tune_boot_fix=never",
        "conntrack_tune_record_file=%s" % (tmp_path / "record.fact"),
        '{"conntrack_tune_settings": {"nf_conntrack_udp_timeout": 31}}'))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and recap["localhost"]["failed"] == 0, out
    # Neither window ran: the task after tuning is skipped, the one before too.
    assert re.search(r"TASK \[netfilter\.conntrack\.conntrack_tune : Sample drop[^\n]*\n(?:[^\n]*\n)*?skipping: \[localhost\]",
                     out), out
    assert re.search(r"TASK \[netfilter\.conntrack\.conntrack_tune : Count table-full messages[^\n]*\nskipping", out), out
    assert netns.sysctl("nf_conntrack_udp_timeout") == (was if check else "31"), out
    # Only the test namespace changed; the initial namespace and /etc are as they were.
    assert snapshot() == before, out


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_audit_gather_false_from_the_command_line_reads_nothing(kernel_lock, tmp_path, check):
    out_dir = tmp_path / "audit"
    before = snapshot()
    proc, recap = run_playbook("netfilter.conntrack.audit", check=check,
                               args=args("conntrack_audit_gather=false", "conntrack_audit_dir=%s" % out_dir))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and recap["localhost"]["failed"] == 0, out
    assert re.search(r"TASK \[netfilter\.conntrack\.conntrack_audit : Read conntrack facts[^\n]*\nskipping", out), out
    # Nothing cached: the report says so instead of reading the host.
    assert "no conntrack facts in the fact cache" in (out_dir / "report.md").read_text()
    assert "Not audited: localhost (failed: no conntrack facts in the fact cache" in out, out
    assert snapshot() == before, out


@pytest.mark.parametrize("playbook", ["netfilter.conntrack.tune", "netfilter.conntrack.rollback"])
@pytest.mark.parametrize("extra, message", [
    ("conntrack_tune_serial=abc", "conntrack_tune_serial='abc' is refused: serial takes"),
    ("conntrack_tune_max_fail_percentage=lots", "conntrack_tune_max_fail_percentage='lots' is refused"),
])
def test_a_bad_play_variable_is_one_named_line_before_any_host_is_read(kernel_lock, playbook, extra, message):
    before = snapshot()
    proc, _recap = run_playbook(playbook, args=args(extra))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in out, out
    assert "Unexpected Exception" not in out and "TASK [" not in out, out
    assert snapshot() == before, out


@pytest.fixture
def read_only_dir(tmp_path):
    """A real read-only file system (a tmpfs mounted ro), unmounted afterwards."""
    path = tmp_path / "ro"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_an_audit_dir_on_a_read_only_file_system_is_refused_before_any_host_is_read(kernel_lock, read_only_dir, check):
    before = snapshot()
    proc, recap = run_playbook("netfilter.conntrack.audit", check=check,
                               args=args("conntrack_audit_dir=%s" % (read_only_dir / "reports")))
    assert_refused_before_any_change(proc, recap, before, "conntrack_audit_dir='%s' cannot hold the report: %s is not writable"
                                     % (read_only_dir / "reports", read_only_dir))


def test_a_missing_textfile_directory_is_refused_before_the_host_is_read(kernel_lock, tmp_path):
    before = snapshot()
    proc, recap = run_playbook("netfilter.conntrack.audit", args=args(
        "conntrack_audit_dir=%s" % (tmp_path / "audit"), "conntrack_audit_textfile_deploy=true",
        "conntrack_audit_textfile_dir=%s" % (tmp_path / "no-such-dir")))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and recap["localhost"]["failed"] == 1, out
    assert 'conntrack_audit_textfile_dir="%s" does not exist there' % (tmp_path / "no-such-dir") in out, out
    assert "Read conntrack facts" not in out, out
    assert snapshot() == before, out
