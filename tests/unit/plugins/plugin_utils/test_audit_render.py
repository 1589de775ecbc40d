"""The fleet report and its renderers on recorded facts of four hosts: ok, warning,
critical and unreachable. Every renderer must show every host, the unreachable one too."""
import copy
import csv
import io
import json
import os
import re
from html.parser import HTMLParser

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_render

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "audit", "fleet.json")
HOSTS = ("gw-ok-1", "lb-warn-2", "k8s-crit-3", "db-down-4")
STAMP = "2026-11-21T06:00:00+00:00"


@pytest.fixture
def fleet():
    with open(FIXTURE) as f:
        return json.load(f)


@pytest.fixture
def report(fleet):
    return _audit.build_report(fleet, generated_at=STAMP, fail_on="critical")


def by_host(report):
    return dict((h["host"], h) for h in report["hosts"])


def test_each_fixture_host_gets_its_severity(report):
    hosts = by_host(report)
    assert [hosts[h]["severity"] for h in HOSTS] == ["ok", "warning", "critical", "warning"]
    assert hosts["db-down-4"]["status"] == "unreachable"
    assert hosts["db-down-4"]["findings"][0]["rule"] == "unreachable"


def test_json_has_a_version_and_every_host_with_the_documented_keys(report):
    data = json.loads(_audit_render.render_json(report))
    assert data["version"] == _audit.REPORT_VERSION == 1
    assert set(data) == {"version", "kind", "generated_at", "thresholds", "summary", "gate", "hosts"}
    assert data["summary"]["hosts"] == 4
    assert data["summary"]["by_status"] == {"ok": 3, "failed": 0, "unreachable": 1}
    assert data["summary"]["by_severity"] == {"ok": 1, "info": 0, "warning": 2, "critical": 1}
    for h in data["hosts"]:
        assert set(h) == {"host", "status", "error", "severity", "findings", "counts", "metrics",
                          "recommendation", "facts"}
        assert set(h["counts"]) == {"info", "warning", "critical"}
        for f in h["findings"]:
            assert {"rule", "severity", "message", "value", "threshold"} <= set(f)
            assert f["severity"] in _audit.SEVERITIES
        if h["status"] == "ok":
            assert set(h["metrics"]) >= {"usage_ratio", "recommended_max", "memory_at_max_bytes"}
        else:
            assert h["metrics"] is None
    assert sorted(h["host"] for h in data["hosts"]) == sorted(HOSTS)


def test_csv_has_one_row_per_host_in_the_documented_columns(report):
    rows = list(csv.DictReader(io.StringIO(_audit_render.render_csv(report))))
    assert tuple(rows[0].keys()) == _audit_render.CSV_COLUMNS
    assert [r["host"] for r in rows] == [h["host"] for h in report["hosts"]]
    row = dict((r["host"], r) for r in rows)
    assert row["k8s-crit-3"]["severity"] == "critical"
    assert row["k8s-crit-3"]["usage_percent"] == "94.6"
    assert row["k8s-crit-3"]["recommended_max"] == "262144"
    assert row["db-down-4"]["status"] == "unreachable" and row["db-down-4"]["error"]
    assert row["db-down-4"]["count"] == ""


def test_markdown_names_every_host_in_the_table_and_in_a_section(report):
    text = _audit_render.render_markdown(report)
    for host in HOSTS:
        assert re.search(r"^\| %s \|" % re.escape(host), text, re.M), host
        assert "## %s" % host in text
    assert "Not audited: 1 unreachable" in text
    assert "FAILED by k8s-crit-3" in text


class _Page(HTMLParser):
    def __init__(self):
        HTMLParser.__init__(self)
        self.tags = []
        self.rows = []
        self.external = []
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr" and "data-host" in attrs:
            self.rows.append(attrs["data-host"])
        for key in ("src", "href"):
            if attrs.get(key) and not attrs[key].startswith("#"):
                self.external.append(attrs[key])
        if tag == "link":
            self.external.append(attrs.get("href"))


def test_html_is_self_contained_with_every_host_and_both_charts(report):
    page = _Page()
    page.feed(_audit_render.render_html(report))
    assert page.external == []
    assert sorted(page.rows) == sorted(HOSTS)
    ids = [t[1].get("id") for t in page.tags]
    assert "usage-chart" in ids and "memory-chart" in ids
    sections = [a["data-host"] for t, a in page.tags if t == "section"]
    assert sorted(sections) == sorted(HOSTS)
    thresholds = [a["class"] for t, a in page.tags if t == "line" and "threshold" in a.get("class", "")]
    assert thresholds == ["threshold threshold-warning", "threshold threshold-critical"]
    bars = [a["data-host"] for t, a in page.tags if t == "rect" and a.get("class") == "bar"]
    assert sorted(bars) == ["gw-ok-1", "k8s-crit-3", "lb-warn-2"]


def test_html_orders_the_fleet_table_worst_first(report):
    page = _Page()
    page.feed(_audit_render.render_html(report))
    assert page.rows[0] == "k8s-crit-3" and page.rows[-1] == "gw-ok-1"


def test_html_escapes_host_names_and_messages(fleet):
    fleet[0]["host"] = "<script>alert(1)</script>"
    text = _audit_render.render_html(_audit.build_report(fleet, generated_at=STAMP))
    assert "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_prometheus_textfile_per_host_uses_our_prefix(report):
    for host in HOSTS:
        text = _audit_render.render_prometheus(report, host)
        names = set(re.findall(r"^([a-z_]+)[{ ]", text, re.M))
        assert names and all(n.startswith("netfilter_conntrack_") for n in names)
        assert 'netfilter_conntrack_audit_findings{severity="critical"}' in text
    crit = _audit_render.render_prometheus(report, "k8s-crit-3")
    assert "netfilter_conntrack_usage_ratio 0.946044921875" in crit
    assert "netfilter_conntrack_recommended_max 262144" in crit
    assert "netfilter_conntrack_audit_severity 3" in crit
    down = _audit_render.render_prometheus(report, "db-down-4")
    assert "netfilter_conntrack_audit_up 0" in down
    assert "netfilter_conntrack_entries " not in down


def test_prometheus_refuses_a_host_not_in_the_report(report):
    with pytest.raises(ValueError, match="not in the audit report"):
        _audit_render.render_prometheus(report, "nope")


def test_unknown_format_is_refused(report):
    with pytest.raises(ValueError, match="unknown report format"):
        _audit_render.render(report, "xml")


def test_chart_limit_keeps_every_host_in_the_table(fleet):
    many = []
    for i in range(_audit_render.CHART_HOSTS_LIMIT + 5):
        h = copy.deepcopy(fleet[0])
        h["host"] = "h%03d" % i
        many.append(h)
    page = _Page()
    page.feed(_audit_render.render_html(_audit.build_report(many, generated_at=STAMP)))
    assert len(page.rows) == len(many)
    bars = [a for t, a in page.tags if t == "rect" and a.get("class") == "bar"]
    assert len(bars) == _audit_render.CHART_HOSTS_LIMIT
