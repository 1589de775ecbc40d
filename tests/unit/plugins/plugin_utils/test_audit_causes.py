"""The audit's cause_* findings (issue 12): the advisor's causes and the kube-proxy block."""
import copy
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_rules

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "audit", "fleet.json")


@pytest.fixture
def ok_host():
    with open(FIXTURE) as f:
        return copy.deepcopy(json.load(f)[0])


def report_host(entry):
    return _audit.build_report([entry], generated_at="x")["hosts"][0]


def test_the_ok_fixture_has_no_cause(ok_host):
    assert not [f for f in report_host(ok_host)["findings"] if f["rule"].startswith("cause_")]


def test_the_audit_names_the_namespace_that_filled_the_table(ok_host):
    ok_host["recommendation"] = None
    ok_host["facts"]["namespaces"] = [
        {"inode": 4026532999, "owner": {"kind": "ip-netns", "netns_name": "filler"}, "entries": 2000,
         "stats": {"totals": {"drop": 40}}}]
    cause = [f for f in report_host(ok_host)["findings"] if f["rule"] == "cause_table_full"][0]
    assert "netns filler" in cause["message"] and cause["namespaces"][0]["inode"] == 4026532999
    assert cause["evidence"]["drop_all_namespaces"] == 40 and "nf_conntrack_max" in cause["remedy"]


def test_recommend_causes_are_taken_as_they_are(ok_host):
    rec = ok_host.get("recommendation") or {}
    rec.setdefault("verdict", {})["causes"] = [{"id": "udp_insert_race", "severity": "warning", "summary": "s",
                                                "remedy": "r", "evidence": {"insert_failed": 3}, "namespaces": []}]
    ok_host["recommendation"] = rec
    found = dict((f["rule"], f) for f in report_host(ok_host)["findings"])
    assert found["cause_udp_insert_race"]["severity"] == "warning"
    assert found["cause_udp_insert_race"]["evidence"] == {"insert_failed": 3}


def test_kube_proxy_block_finding_carries_the_block(ok_host):
    rec = ok_host.get("recommendation") or {}
    rec["kube_proxy"] = {"differs": {"nf_conntrack_max": {"kube_proxy": 131072, "recommended": 100352}},
                         "conntrack": {"min": 100352}, "conntrack_yaml": "conntrack:\n  min: 100352\n",
                         "config_file": "/var/lib/kube-proxy/config.conf"}
    ok_host["recommendation"] = rec
    f = [f for f in report_host(ok_host)["findings"] if f["rule"] == "kube_proxy_block"][0]
    assert "min: 100352" in f["message"] and f["conntrack"] == {"min": 100352}


def test_every_cause_has_a_rule_name():
    for cid in ("table_full", "udp_insert_race", "invalid_packets", "chains_too_deep", "search_restart",
                "notrack_candidate", "ebpf_datapath", "ena_conntrack_allowance"):
        assert "cause_" + cid in _audit_rules.RULE_NAMES


def _finding(rule, severity):
    return {"rule": rule, "severity": severity, "message": rule}


def test_a_cause_explains_its_signals_and_nothing_is_dropped_or_recounted():
    findings = [_finding("cause_table_full", "critical"), _finding("drop_rising", "critical"),
                _finding("usage", "critical"), _finding("table_full_logged", "warning"),
                _finding("not_persisted", "warning"), _finding("insert_failed_total", "info")]
    _audit.link_causes(findings)
    by_rule = dict((f["rule"], f) for f in findings)
    assert by_rule["cause_table_full"]["explains"] == ["drop_rising", "usage", "table_full_logged"]
    assert [by_rule[r]["cause"] for r in ("drop_rising", "usage", "table_full_logged")] == ["cause_table_full"] * 3
    # Not a signal of that cause, and a signal whose cause was not found: they stand on their own.
    assert by_rule["not_persisted"]["cause"] is None and by_rule["insert_failed_total"]["cause"] is None
    assert len(findings) == 6 and by_rule["cause_table_full"]["cause"] is None


def test_a_signal_more_severe_than_its_cause_is_not_hidden_under_it():
    findings = [_finding("cause_chains_too_deep", "warning"), _finding("chain_depth", "critical"),
                _finding("chaintoolong_total", "info")]
    _audit.link_causes(findings)
    assert findings[1]["cause"] is None and findings[2]["cause"] == "cause_chains_too_deep"
    assert findings[0]["explains"] == ["chaintoolong_total"]


def test_the_report_nests_a_full_tables_signals_under_its_cause_and_keeps_the_counts():
    from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit_render
    with open(FIXTURE) as f:
        report = _audit.build_report(json.load(f), generated_at="x")
    host = [h for h in report["hosts"] if h["host"] == "k8s-crit-3"][0]
    assert host["counts"] == {"critical": 6, "warning": 5, "info": 4}
    text = _audit_render.render(report, "markdown")
    assert "\n  - **critical** `drop_rising`:" in text and "\n- **critical** `drop_rising`:" not in text
    assert all(rule in _audit_rules.RULE_NAMES for signals in _audit.CAUSE_SIGNALS.values() for rule in signals)
