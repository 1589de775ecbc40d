"""The audit filters: report, render and the JMESPath query on the jmespath library."""
import json
import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.filter import audit
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "audit", "fleet.json")


@pytest.fixture
def report():
    with open(FIXTURE) as f:
        return audit.audit_report(json.load(f), fail_on="warning", generated_at="2026-11-21T06:00:00+00:00")


def test_filters_are_registered():
    assert set(audit.FilterModule().filters()) == {
        "audit_record", "audit_cached", "audit_report", "audit_merge", "audit_render", "audit_query"}


def test_query_hosts_above_80_percent_with_their_recommended_max(report):
    got = audit.audit_query(report, "hosts[?metrics.usage_percent > `80`].{host: host, usage_percent: "
                                    "metrics.usage_percent, recommended_max: metrics.recommended_max}")
    assert got == [{"host": "lb-warn-2", "usage_percent": 80.11, "recommended_max": 524288},
                   {"host": "k8s-crit-3", "usage_percent": 94.6, "recommended_max": 262144}]


def test_query_unreachable_hosts(report):
    assert audit.audit_query(report, "hosts[?status!='ok'].host") == ["db-down-4"]


def test_bad_expression_is_a_clear_filter_error(report):
    with pytest.raises(AnsibleFilterError, match="bad JMESPath expression"):
        audit.audit_query(report, "hosts[?")


def test_report_refuses_a_non_list():
    with pytest.raises(AnsibleFilterError, match="expects a list"):
        audit.audit_report({"host": "a"})


def test_render_errors_are_filter_errors(report):
    with pytest.raises(AnsibleFilterError, match="audit_render"):
        audit.audit_render(report, "prometheus")


def test_every_jmespath_example_in_the_docs_runs_on_the_fixture_fleet(report):
    import re
    with open(os.path.join(os.path.dirname(FIXTURE), "..", "..", "..", "..", "docs", "audit.md")) as f:
        examples = re.findall(r"\| ``(.+?)`` \|", f.read())
    assert len(examples) >= 5
    for expression in examples:
        assert audit.audit_query(report, expression), expression


def test_record_keeps_unreachable_and_failed_hosts_with_their_error():
    unreachable = audit.audit_record("a", facts_result={"unreachable": True, "msg": "ssh: timed out"})
    assert (unreachable["status"], unreachable["error"]) == ("unreachable", "ssh: timed out")
    failed = audit.audit_record("b", facts_result={"failed": True, "msg": "boom"})
    assert (failed["status"], failed["error"]) == ("failed", "facts: boom")
    gone = audit.audit_record("c", active=["a", "b"])
    assert gone["status"] == "failed" and "left the play" in gone["error"]


def test_record_takes_gathered_or_cached_facts_and_the_recommendation():
    facts = {"available": True, "usage": {"count": 1}}
    got = audit.audit_record("a", facts_result={"ansible_facts": {"conntrack": facts}},
                             recommendation_result={"recommendation": {"settings": {}}})
    assert (got["status"], got["facts"], got["recommendation"]) == ("ok", facts, {"settings": {}})
    cached = audit.audit_record("a", facts_result={"skipped": True}, cached_facts=facts,
                                recommendation_result={"failed": True, "msg": "bad budget"}, gathered=False)
    assert cached["facts"] == facts and cached["recommendation_error"] == "bad budget"
    missing = audit.audit_record("a", cached_facts=None, gathered=False)
    assert missing["status"] == "failed" and "fact cache" in missing["error"]


def test_record_takes_the_results_not_a_hosts_vars():
    with pytest.raises(AnsibleFilterError, match="expects a host name"):
        audit.audit_record({"inventory_hostname": "a", "audit__facts": {}})


def _cached_fleet():
    """hostvars as the fact cache gives them: each host's conntrack facts under ansible_facts."""
    with open(FIXTURE) as f:
        hosts = json.load(f)
    return dict((h["host"], {"ansible_facts": {"conntrack": h["facts"]}} if h["facts"] else {}) for h in hosts)


def test_a_cache_audit_gives_each_host_the_recommend_modules_own_answer():
    hostvars = _cached_fleet()
    records = audit.audit_cached(sorted(hostvars), hostvars, profile="nat_gateway")
    by_host = dict((r["host"], r) for r in records)
    for host in ("gw-ok-1", "lb-warn-2", "k8s-crit-3"):
        facts = hostvars[host]["ansible_facts"]["conntrack"]
        assert by_host[host]["status"] == "ok"
        assert by_host[host]["recommendation"] == kubeproxy.recommend(facts, profile="nat_gateway", memory_budget="10%",
                                                                      force=True)
    assert by_host["db-down-4"]["status"] == "failed"
    assert "no conntrack facts in the fact cache" in by_host["db-down-4"]["error"]
    report = audit.audit_report(records)
    assert [h["host"] for h in report["hosts"]] == sorted(hostvars)


def test_a_hosts_own_inventory_variables_choose_its_recommendation():
    hostvars = _cached_fleet()
    hostvars["k8s-crit-3"]["conntrack_audit_profile"] = "kubernetes_node"
    hostvars["lb-warn-2"]["audit_peak_entries"] = 900000  # the name before 0.3.0 still counts
    by_host = dict((r["host"], r) for r in audit.audit_cached(sorted(hostvars), hostvars))
    assert by_host["k8s-crit-3"]["recommendation"]["profile"]["name"] == "kubernetes_node"
    assert by_host["gw-ok-1"]["recommendation"]["profile"]["name"] == "default"
    assert by_host["lb-warn-2"]["recommendation"]["entries"]["needed"] >= 900000


def test_a_host_the_recommendation_refuses_or_the_inventory_lacks_is_named_not_dropped():
    hostvars = _cached_fleet()
    hostvars["gw-ok-1"]["conntrack_audit_memory_budget"] = "lots"
    by_host = dict((r["host"], r) for r in audit.audit_cached(["gw-ok-1", "ghost"], hostvars))
    assert "memory_budget" in by_host["gw-ok-1"]["recommendation_error"]
    assert by_host["ghost"] == {"host": "ghost", "status": "failed", "error": "not a host of the inventory",
                                "facts": None, "recommendation": None}
    with pytest.raises(AnsibleFilterError, match="list of inventory host names"):
        audit.audit_cached("gw-ok-1", hostvars)
