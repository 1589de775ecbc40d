"""verdict.py: the one judgement of a table's fullness and chain depth, shared by recommend and the audit."""
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import advisor, verdict
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.sizing import recommend
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_rules

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "facts")


def host_with(count, max_entries=262144):
    with open(os.path.join(FIXTURES, "quiet_host.json")) as f:
        facts = json.load(f)
    facts["usage"].update(count=count, max=max_entries)
    facts["settings"].update(nf_conntrack_count=count, nf_conntrack_max=max_entries)
    return facts


@pytest.mark.parametrize("ratio, level", [(None, None), (0.5, None), (0.75, ("warning", 0.75)),
                                          (0.899, ("warning", 0.75)), (0.9, ("critical", 0.9)),
                                          (1.0, ("critical", 0.9))])
def test_a_table_is_full_from_90_percent_and_worth_a_warning_from_75(ratio, level):
    assert verdict.usage_severity(ratio) == level


def test_chains_are_too_deep_above_four_and_critical_only_where_a_level_is_given():
    assert verdict.chain_depth_severity(4.0) is None
    assert verdict.chain_depth_severity(20.0) == ("warning", 4.0)
    assert verdict.chain_depth_severity(20.0, critical_depth=16.0) == ("critical", 16.0)
    assert verdict.chain_depth_severity(None) is None


@pytest.mark.parametrize("count, severity", [(100000, "ok"), (200000, "warning"), (240000, "critical")])
def test_recommend_the_audit_and_the_advisor_judge_the_same_table_alike(count, severity):
    facts = host_with(count)
    rec = recommend(facts, force=True)
    metrics = {"usage_ratio": count / 262144.0, "count": count, "max": 262144}
    findings = _audit_rules.rule_usage(facts, rec, metrics, _audit.merge_thresholds())
    assert (findings[0]["severity"] if findings else "ok") == severity
    usage = [r for r in rec["verdict"]["reasons"] if "% full" in r]
    assert (severity in usage[0] if usage else severity == "ok")
    # the advisor's "table full" cause fires where both call the table full
    full_cause = [c for c in advisor.causes(facts) if c["id"] == "table_full"]
    assert bool(full_cause) == (severity == "critical")
