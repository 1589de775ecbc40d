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
        self.scripts = []
        self._script = None

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
        if tag == "script":
            self._script = [attrs.get("type"), attrs.get("id"), ""]

    def handle_data(self, data):
        if self._script is not None:
            self._script[2] += data

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append(tuple(self._script))
            self._script = None

    def data(self):
        """The page's data, as its script reads it (JSON.parse of the element's text)."""
        blobs = [text for kind, ident, text in self.scripts if kind == "application/json" and ident == "report-data"]
        assert len(blobs) == 1
        return json.loads(blobs[0])


def _page(report):
    page = _Page()
    page.feed(_audit_render.render_html(report))
    return page


def test_html_is_self_contained_with_every_host_and_both_charts(report):
    page = _page(report)
    assert page.external == []
    assert all(script[0] in ("application/json", None) for script in page.scripts)
    assert sorted(h["h"] for h in page.data()["hosts"]) == sorted(HOSTS)
    ids = [t[1].get("id") for t in page.tags]
    assert "usage-chart" in ids and "memory-chart" in ids
    thresholds = [a["class"] for t, a in page.tags if t == "line" and "threshold" in a.get("class", "")]
    assert thresholds == ["threshold threshold-warning", "threshold threshold-critical"]
    bars = [a["data-host"] for t, a in page.tags if t == "rect" and a.get("class") == "bar"]
    assert sorted(bars) == ["gw-ok-1", "k8s-crit-3", "lb-warn-2"]


def test_html_orders_the_fleet_worst_first_and_shows_the_hosts_with_findings_first(report):
    page = _page(report)
    assert [h["h"] for h in page.data()["hosts"]] == ["k8s-crit-3", "lb-warn-2", "db-down-4", "gw-ok-1"]
    # Before the script runs (or where scripts are blocked): the default view, without gw-ok-1.
    assert page.rows == ["k8s-crit-3", "lb-warn-2", "db-down-4"]


def test_html_holds_no_host_section_but_the_details_to_build_on_demand(report):
    page = _page(report)
    assert not [a for t, a in page.tags if t == "section"]
    data = page.data()
    strings = data["strings"]
    crit = [h for h in data["hosts"] if h["h"] == "k8s-crit-3"][0]
    messages = [strings[f[2]] for f in crit["x"]["f"]] + [strings[g[2]] for f in crit["x"]["f"] for g in f[3]]
    assert sorted(messages) == sorted(f["message"] for f in by_host(report)["k8s-crit-3"]["findings"])
    assert [r[0] for r in crit["x"]["r"]] == sorted(by_host(report)["k8s-crit-3"]["recommendation"]["settings"])
    down = [h for h in data["hosts"] if h["h"] == "db-down-4"][0]
    assert down["x"]["e"][0] == "unreachable" and strings[down["x"]["e"][1]]
    assert down["c"][0] == "db-down-4" and down["k"][0] is None


def test_html_summary_counts_hosts_per_finding_and_per_severity(report):
    page = _page(report)
    by_rule = dict((a["data-rule"], a) for t, a in page.tags if t == "tr" and "data-rule" in a)
    expected = set(f["rule"] for h in report["hosts"] for f in h["findings"])
    assert set(by_rule) == expected
    rows = _audit_render.template_context(report)["rules"]
    assert [r["rule"] for r in rows] == list(by_rule)
    usage = [r for r in rows if r["rule"] == "usage"][0]
    assert (usage["hosts"], usage["critical"], usage["warning"]) == (2, 1, 1)
    assert rows[0]["worst"] == "critical" and rows[-1]["worst"] != "critical"
    severities = [a["data-severity"] for t, a in page.tags if t == "tr" and "data-severity" in a]
    assert severities == ["critical", "warning", "info", "ok"]


def test_html_escapes_host_names_and_messages(fleet):
    fleet[0]["host"] = "<script>alert(1)</script>"
    text = _audit_render.render_html(_audit.build_report(fleet, generated_at=STAMP))
    assert "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_html_data_cannot_close_its_script_element_or_open_a_comment(fleet):
    name = "</script><script>alert(1)</script><!--"
    fleet[0]["host"] = name
    report = _audit.build_report(fleet, generated_at=STAMP)
    by_host(report)["k8s-crit-3"]["findings"][0]["message"] = "</SCRIPT ><!-- & -->"
    text = _audit_render.render_html(report)
    data_start = text.index('<script type="application/json" id="report-data">')
    blob = text[data_start:text.index("</script>", data_start)]
    for bad in ("</", "<!--", "<script", "-->"):
        assert bad not in blob.split(">", 1)[1].lower()
    data = _page(report).data()
    assert name in [h["h"] for h in data["hosts"]]
    assert "</SCRIPT ><!-- & -->" in data["strings"]
    assert json.loads(_audit_render.json_for_script({"a": "</script>&<!--"})) == {"a": "</script>&<!--"}


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


def test_a_big_fleet_gives_one_page_of_rows_and_charts_its_worst_hosts(fleet):
    many = []
    for i in range(_audit_render.HTML_PAGE_SIZE + 50):
        h = copy.deepcopy(fleet[i % 3])
        h["host"] = "h%03d" % i
        many.append(h)
    report = _audit.build_report(many, generated_at=STAMP)
    page = _page(report)
    assert len(page.data()["hosts"]) == len(many)
    assert len(page.rows) == _audit_render.HTML_PAGE_SIZE
    bars = [a["data-host"] for t, a in page.tags if t == "rect" and a.get("class") == "bar"]
    assert len(bars) == _audit_render.CHART_HOSTS_LIMIT
    # Past the limit the charts show the worst hosts, the table's first ones.
    worst = [h["h"] for h in page.data()["hosts"]][:_audit_render.CHART_HOSTS_LIMIT]
    assert bars == worst
