"""The rendered reports of the recorded fleet, byte for byte: a refactor of the renderers (the
column table, the templates) must not change what users get. Rendered once from the code
before those refactors; regenerate only for a deliberate change of a report."""
import copy
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_render

HERE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "audit")
STAMP = "2026-11-21T06:00:00+00:00"


def fleet(variant):
    with open(os.path.join(HERE, "fleet.json")) as f:
        hosts = json.load(f)
    if variant == "plain":
        return _audit.build_report(hosts, generated_at=STAMP, fail_on="critical")
    hosts = copy.deepcopy(hosts)
    hosts[0]["host"] = "<b>&x|y"
    return _audit.build_report(hosts, thresholds={"usage_warning_ratio": 0.5}, generated_at=STAMP, fail_on="warning")


@pytest.mark.parametrize("variant", ["plain", "escaped"])
@pytest.mark.parametrize("fmt", ["csv", "markdown", "html"])
def test_the_rendered_report_is_unchanged(variant, fmt):
    with open(os.path.join(HERE, "rendered", "%s.%s.expected" % (variant, fmt))) as f:
        assert _audit_render.render(fleet(variant), fmt) == f.read()


def test_every_csv_column_and_fleet_column_is_in_the_one_column_table():
    assert set(_audit_render.CSV_COLUMNS) <= set(_audit_render.COLUMNS)
    assert set(_audit_render.FLEET_COLUMNS) <= set(_audit_render.COLUMNS)
    assert all(_audit_render.COLUMNS[name].header for name in _audit_render.FLEET_COLUMNS)


def test_memory_at_max_is_priced_like_the_recommendation_prices_its_max():
    # With max already at the recommended value, the two figures are one figure.
    report = fleet("plain")
    with open(os.path.join(HERE, "fleet.json")) as f:
        entry = copy.deepcopy(json.load(f)[0])
    rec = entry["recommendation"]
    usage = entry["facts"]["usage"]
    rec["memory"].update(entry_bytes=256, extension_bytes=128, per_entry_bytes=384, bucket_bytes=8)
    rec["memory"]["total_bytes"] = usage["max"] * 384 + usage["buckets"] * 8
    metrics = _audit.build_report([entry], generated_at=STAMP)["hosts"][0]["metrics"]
    assert metrics["memory_at_max_bytes"] == rec["memory"]["total_bytes"]
    assert report["hosts"][0]["metrics"]["memory_at_max_bytes"] == usage["max"] * 256 + usage["buckets"] * 8


def test_the_default_templates_are_the_shipped_files_and_a_users_template_replaces_them():
    report = fleet("plain")
    with open(os.path.join(_audit_render.TEMPLATE_DIR, "report.md.j2")) as f:
        assert _audit_render.render(report, "markdown", template=f.read()) == _audit_render.render(report, "markdown")
    ours = "{% for h in hosts %}{{ h.host }}={{ h.cells[3].text }};{% endfor %}"
    assert _audit_render.render(report, "html", template=ours) == \
        "k8s-crit-3=94.6%;lb-warn-2=80.1%;db-down-4=;gw-ok-1=0.5%;"


def test_a_template_cannot_reach_python_internals():
    from jinja2.exceptions import SecurityError
    with pytest.raises(SecurityError):
        _audit_render.render(fleet("plain"), "html", template="{{ ''.__class__.__mro__ }}")


def test_only_markdown_and_html_take_a_template():
    with pytest.raises(ValueError, match="take a template"):
        _audit_render.render(fleet("plain"), "csv", template="x")
