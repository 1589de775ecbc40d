"""The audit's cause_* findings (issue 12): the advisor's causes and the kube-proxy block."""
import copy
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit

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
        assert "cause_" + cid in _audit.RULE_NAMES
