"""One pass over what a user runs first, on whichever ansible-core runs the tests.

scripts/test runs this in every version-matrix venv (core-2.16 ...), so that each
ansible-core minor that meta/runtime.yml claims has run the facts and recommend
modules, the tune playbook in check mode and the audit playbook on this host.
Nothing is changed: tune only predicts (its files pointed under tmp_path besides),
and the global sysctls are restored afterwards all the same.
"""
import json
import os

from support.ansible import run_module, run_playbook
from support.etc import EtcOverlay
from support.kernel import read_int


def _ok(recap):
    host = recap["localhost"]
    return host["failed"] == 0 and host["unreachable"] == 0


def test_facts_and_recommend_read_this_host(kernel_lock):
    facts = run_module("facts", {"table": True, "table_limit": 1000})
    assert not facts["failed"], facts["_stderr"]
    ct = facts["ansible_facts"]["conntrack"]
    assert ct["available"] and ct["settings"]["nf_conntrack_max"] == read_int("nf_conntrack_max")
    assert ct["table"]["walked"]

    rec = run_module("recommend", {"facts": ct, "profile": "nat_gateway"})
    assert not rec["failed"], rec["_stderr"]
    settings = rec["recommendation"]["settings"]
    assert settings["nf_conntrack_max"] % 512 == 0
    assert set(settings) == set(rec["recommendation"]["reasons"])


def test_tune_in_check_mode_predicts_and_changes_nothing(global_sysctls, tmp_path):
    wanted = int(global_sysctls["nf_conntrack_max"]) + 3584
    record_file = tmp_path / "netfilter_conntrack.fact"
    # The drop-in at its real path, seen through a private /etc overlay: even a wrong
    # prediction could not touch the host's /etc.
    etc = EtcOverlay(tmp_path)
    proc, recap = run_playbook("netfilter.conntrack.tune", check=True, diff=True, etc=etc, extra_vars={
        "tune_settings": {"nf_conntrack_max": wanted},
        "tune_record_file": str(record_file),
        "tune_health_sample_seconds": 1,
    })
    assert _ok(recap), proc.stdout + proc.stderr
    assert recap["localhost"]["changed"] >= 1, proc.stdout
    assert read_int("nf_conntrack_max") == int(global_sysctls["nf_conntrack_max"])
    assert etc.written() == {} and not record_file.exists()


def test_audit_writes_a_report_for_this_host(kernel_lock, tmp_path):
    out = tmp_path / "audit"
    proc, recap = run_playbook("netfilter.conntrack.audit", extra_vars={
        "audit_dir": str(out),
        "audit_formats": ["json", "markdown"],
        "audit_query": "hosts[].{host: host, severity: severity}",
    })
    assert _ok(recap), proc.stdout + proc.stderr
    with open(os.path.join(str(out), "report.json")) as f:
        report = json.load(f)
    assert [h["host"] for h in report["hosts"]] == ["localhost"]
    assert report["hosts"][0]["status"] == "ok"
    assert (out / "report.md").exists()
