"""Each audit rule on the smallest facts that raise it, and the gate."""
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


def findings(entry, **thresholds):
    host = _audit.build_report([entry], thresholds=thresholds, generated_at="x")["hosts"][0]
    return dict((f["rule"], f["severity"]) for f in host["findings"])


def set_usage(entry, count):
    usage = entry["facts"]["usage"]
    usage["count"] = count
    usage["usage_ratio"] = count / float(usage["max"])


def test_the_ok_fixture_has_no_findings(ok_host):
    assert findings(ok_host) == {}


@pytest.mark.parametrize("ratio,severity", [(0.7499, None), (0.75, "warning"), (0.8999, "warning"),
                                            (0.90, "critical"), (1.0, "critical")])
def test_usage_warns_at_75_and_is_critical_at_90_percent(ok_host, ratio, severity):
    set_usage(ok_host, int(round(ratio * ok_host["facts"]["usage"]["max"])))
    assert findings(ok_host).get("usage") == severity


def test_usage_thresholds_can_be_moved(ok_host):
    set_usage(ok_host, int(0.6 * ok_host["facts"]["usage"]["max"]))
    assert findings(ok_host, usage_warning_ratio=0.5).get("usage") == "warning"
    with pytest.raises(ValueError, match="usage_warning_ratio must not be above"):
        _audit.merge_thresholds({"usage_warning_ratio": 0.95})
    with pytest.raises(ValueError, match="unknown audit threshold"):
        _audit.merge_thresholds({"usage_warn": 0.5})


def test_counters_rising_in_the_sample_are_findings_and_totals_are_info(ok_host):
    stats = ok_host["facts"]["stats"]
    stats["totals"].update(drop=5, insert_failed=2)
    stats["sample"] = {"seconds": 5, "deltas": {}, "rates_per_second": {"drop": 0.0, "insert_failed": 1.5,
                                                                        "chaintoolong": 0.2, "early_drop": 0.0}}
    got = findings(ok_host)
    assert got["insert_failed_rising"] == "warning"
    assert got["chaintoolong_rising"] == "warning"
    assert got["drop_total"] == "info"
    assert "drop_rising" not in got


def test_drops_rising_are_critical(ok_host):
    ok_host["facts"]["stats"]["sample"] = {"seconds": 5, "deltas": {}, "rates_per_second": {"drop": 3.0}}
    assert findings(ok_host)["drop_rising"] == "critical"


def test_totals_without_a_sample_are_info(ok_host):
    ok_host["facts"]["stats"]["sample"] = None
    ok_host["facts"]["stats"]["totals"]["chaintoolong"] = 9
    assert findings(ok_host)["chaintoolong_total"] == "info"


def test_table_full_in_the_kernel_log_warns(ok_host):
    ok_host["facts"]["kernel_log"].update(table_full_count=3, netns=[4026532246])
    assert findings(ok_host)["table_full_logged"] == "warning"


@pytest.mark.parametrize("buckets,severity", [(65536, None), (32768, "warning"), (8192, "critical")])
def test_chain_depth_at_max(ok_host, buckets, severity):
    usage = ok_host["facts"]["usage"]
    usage["buckets"] = buckets
    usage["chain_depth_at_max"] = usage["max"] / float(buckets)
    assert findings(ok_host).get("chain_depth") == severity


def test_runtime_not_persisted_warns_per_key(ok_host):
    ok_host["facts"]["environment"]["drift"] = {
        "nf_conntrack_max": {"runtime": 262144, "persisted": 131072, "file": "/etc/sysctl.d/90-x.conf"}}
    host = _audit.build_report([ok_host], generated_at="x")["hosts"][0]
    (finding,) = [f for f in host["findings"] if f["rule"] == "not_persisted"]
    assert finding["severity"] == "warning" and finding["key"] == "nf_conntrack_max"
    assert "lost at reboot" in finding["message"] and "/etc/sysctl.d/90-x.conf" in finding["message"]


def test_runtime_differing_from_the_recommendation_is_info_and_kube_proxy_makes_it_a_warning(ok_host):
    comp = ok_host["recommendation"]["comparison"]
    comp["nf_conntrack_max"] = {"current": 262144, "recommended": 524288, "change": True}
    assert findings(ok_host)["differs_from_recommended"] == "info"
    assert "kube_proxy_conflict" not in findings(ok_host)
    ok_host["facts"]["environment"]["kube_proxy_running"] = True
    assert findings(ok_host)["kube_proxy_conflict"] == "warning"


def test_memory_above_budget_warns(ok_host):
    ok_host["recommendation"]["memory"]["budget_bytes"] = 1024 * 1024
    assert findings(ok_host)["memory_over_budget"] == "warning"


def test_time_wait_pile_up_needs_a_long_timeout_and_a_real_share_of_max(ok_host):
    facts = ok_host["facts"]
    cmax = facts["usage"]["max"]
    facts["table"] = {"walked": True, "entries_read": cmax // 2,
                      "tcp_states": {"TIME_WAIT": int(cmax * 0.4), "ESTABLISHED": 10}}
    facts["settings"]["nf_conntrack_tcp_timeout_time_wait"] = 120
    assert findings(ok_host)["time_wait_pileup"] == "warning"
    facts["settings"]["nf_conntrack_tcp_timeout_time_wait"] = 30
    assert findings(ok_host)["time_wait_pileup"] == "info"
    # 60% of a walk of 10 entries is no pile-up
    facts["table"] = {"walked": True, "entries_read": 10, "tcp_states": {"TIME_WAIT": 6}}
    assert "time_wait_pileup" not in findings(ok_host)


def test_established_pile_up_blames_a_timeout_above_a_day(ok_host):
    facts = ok_host["facts"]
    cmax = facts["usage"]["max"]
    facts["table"] = {"walked": True, "entries_read": cmax // 2, "tcp_states": {"ESTABLISHED": int(cmax * 0.45)}}
    facts["settings"]["nf_conntrack_tcp_timeout_established"] = 432000
    assert findings(ok_host)["established_pileup"] == "warning"


def test_a_failed_or_unreachable_host_is_kept_with_its_error():
    report = _audit.build_report([
        {"host": "a", "status": "unreachable", "error": "ssh timed out"},
        {"host": "b", "status": "failed", "error": "python missing"},
        {"host": "c", "status": "ok", "facts": None},
    ], generated_at="x")
    got = dict((h["host"], (h["status"], h["severity"], h["error"])) for h in report["hosts"])
    assert got == {"a": ("unreachable", "warning", "ssh timed out"), "b": ("failed", "warning", "python missing"),
                   "c": ("failed", "warning", "no conntrack facts were gathered")}


def test_unreachable_severity_is_configurable():
    report = _audit.build_report([{"host": "a", "status": "unreachable"}], generated_at="x",
                                 thresholds={"unreachable_severity": "critical"}, fail_on="critical")
    assert report["gate"] == {"fail_on": "critical", "failed": True, "hosts": ["a"]}


@pytest.mark.parametrize("fail_on,failed", [("never", []), ("critical", ["k8s-crit-3"]),
                                            ("warning", ["lb-warn-2", "k8s-crit-3", "db-down-4"])])
def test_gate_names_the_hosts_at_or_above_the_severity(fail_on, failed):
    with open(FIXTURE) as f:
        report = _audit.build_report(json.load(f), generated_at="x", fail_on=fail_on)
    assert report["gate"]["hosts"] == failed
    assert report["gate"]["failed"] is bool(failed)


def test_bad_gate_value_is_refused():
    with pytest.raises(ValueError, match="fail_on must be"):
        _audit.build_report([], fail_on="sometimes")


def test_a_global_size_set_at_runtime_only_is_lost_at_reboot(ok_host):
    facts = ok_host["facts"]
    facts["environment"]["persistent"]["sysctl"] = {}
    got = _audit.build_report([ok_host], generated_at="x")["hosts"][0]["findings"]
    keys = sorted(f["key"] for f in got if f["rule"] == "not_persisted")
    # 8 GiB of RAM: the 6.x boot default is 262144 for both; buckets 65536 would not survive a reboot
    assert keys == ["nf_conntrack_buckets"]
    facts["environment"]["kube_proxy_running"] = True
    assert not [f for f in findings(ok_host) if f == "not_persisted"]
    facts["environment"]["kube_proxy_running"] = False
    facts["initial_netns"] = False
    assert "not_persisted" not in findings(ok_host)
