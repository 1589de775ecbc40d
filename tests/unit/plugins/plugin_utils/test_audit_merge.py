"""Merging the reports of sliced runs: the merged report is the one a single run over the whole
fleet would have written, and inputs that cannot make one fleet report are refused by name."""
import copy
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.filter.audit import audit_merge
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_merge, _audit_render
from ansible.errors import AnsibleFilterError

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "audit")
STAMP = "2026-11-21T06:00:00+00:00"


def records():
    with open(os.path.join(HERE, "fleet.json")) as f:
        return json.load(f)


def sliced(parts, **kwargs):
    hosts = records()
    size = -(-len(hosts) // parts)
    return [_audit.build_report(hosts[i:i + size], generated_at=STAMP, **kwargs) for i in range(0, len(hosts), size)]


@pytest.mark.parametrize("parts", [1, 2, 4])
def test_merged_slices_render_byte_for_byte_like_one_run(parts):
    whole = _audit.build_report(records(), generated_at=STAMP, fail_on="critical")
    merged = _audit_merge.merge_reports(json.loads(json.dumps(sliced(parts))), fail_on="critical",
                                        generated_at=STAMP)
    assert merged == whole
    for fmt in ("json", "csv", "markdown", "html"):
        assert _audit_render.render(merged, fmt) == _audit_render.render(whole, fmt)


def test_a_failed_recommendation_survives_the_merge():
    hosts = records()
    hosts[0]["recommendation"] = None
    hosts[0]["recommendation_error"] = "facts too old"
    whole = _audit.build_report(hosts, generated_at=STAMP)
    merged = _audit_merge.merge_reports([_audit.build_report(hosts[:2], generated_at=STAMP),
                                         _audit.build_report(hosts[2:], generated_at=STAMP)], generated_at=STAMP)
    assert merged == whole
    assert any(f["message"] == "no recommendation: facts too old" for h in merged["hosts"] for f in h["findings"])


def test_a_host_in_two_reports_is_refused_by_name():
    report = sliced(1)[0]
    with pytest.raises(AnsibleFilterError, match="host gw-ok-1 is in reports 0 and 1"):
        audit_merge([report, copy.deepcopy(report)])


def test_slices_judged_with_different_thresholds_need_one_set_chosen():
    first, second = sliced(2)
    second = _audit_merge.merge_reports([second], thresholds={"usage_warning_ratio": 0.5})
    with pytest.raises(ValueError, match="different thresholds"):
        _audit_merge.merge_reports([first, second])
    merged = _audit_merge.merge_reports([first, second], thresholds={"usage_warning_ratio": 0.5})
    assert merged["thresholds"]["usage_warning_ratio"] == 0.5


@pytest.mark.parametrize("bad", [[], "report.json", [{"hosts": []}], [{"kind": "other", "hosts": []}]])
def test_what_is_not_a_list_of_reports_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="audit_merge: .*(non-empty list|not an audit report)"):
        audit_merge(bad)
