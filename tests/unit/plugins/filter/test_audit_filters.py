"""The audit filters: report, render and the JMESPath query on the jmespath library."""
import json
import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.filter import audit

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "audit", "fleet.json")


@pytest.fixture
def report():
    with open(FIXTURE) as f:
        return audit.audit_report(json.load(f), fail_on="warning", generated_at="2026-11-21T06:00:00+00:00")


def test_filters_are_registered():
    assert set(audit.FilterModule().filters()) == {
        "audit_record", "audit_report", "audit_merge", "audit_render", "audit_query"}


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
