"""The audit's report.html in real headless Chromium at 1, 100, 1,000 and 10,000 hosts, and a
fleet whose names and errors are made to break HTML.

The fleets are B7's generated hosts (bench/b7_fleet_audit.py: NAT gateways, Kubernetes nodes,
idle, dropping and failed hosts) judged by build_report and rendered by the renderer, without
Ansible. scripts/check-report-html drives one Chromium over the DevTools protocol and checks,
against report.json: the summary's counts, the first page worst first, clicks on column headings
(both directions), the next and previous page, typing in the filter box, the "only hosts with
findings" switch, links to views, a host's details, the charts, no script errors, the page with
scripts off, and a screenshot. The time to first render is measured and kept; the bound on it
is loose on purpose (the machine is shared). Set NC_REPORT_HTML_FIGURES=FILE to keep the figures.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = (1, 100, 1000, 10000)
# From navigation to the first page of rows drawn, at 10,000 hosts. It takes about 0.4 s on a
# quiet 2-core machine; the bound only catches a page that stopped scaling (the page with a row
# and a section per host took 15 s).
FIRST_RENDER_SECONDS_MAX = 30.0
# Names and errors that end elements, open comments, close the data's <script> or break quotes.
HOSTILE_NAMES = ('zz</script><script>document.title="pwned"</script>', '<b>&x|y "q" \'s\'', "a&amp;b<!--c")
HOSTILE_ERROR = 'ssh: </script><!-- <img src=x onerror="document.title=1"> & "quoted" \'single\''

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs chromium to open the HTML report (scripts/apt/test.txt)")


def fleet_records(count):
    """B7's hosts as the audit role hands them to build_report: facts from the generator, the
    fixture's recommendation for the same kind of host, failed where the cache has nothing."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import b7_fleet_audit as b7  # pylint: disable=import-outside-toplevel
    recorded, templates = b7._fixture(), b7._templates()  # pylint: disable=protected-access
    records = []
    for i in range(count):
        facts = b7.host_facts(i, templates)
        source = recorded[b7._SOURCES[b7.KINDS[i % len(b7.KINDS)]]] if facts else None  # pylint: disable=protected-access
        records.append({"host": "node%05d" % i, "status": "ok" if facts else "failed",
                        "error": None if facts else "no conntrack facts in the fact cache", "facts": facts,
                        "recommendation": source["recommendation"] if source else None})
    return records


def hostile_records():
    """Twelve of B7's hosts, three renamed, one of them unreachable with an error full of markup."""
    records = fleet_records(12)
    for record, name in zip(records, HOSTILE_NAMES):
        record["host"] = name
    records[0].update(status="unreachable", error=HOSTILE_ERROR, facts=None, recommendation=None)
    return records


def check(where, report):
    from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit_render
    for fmt, name in (("json", "report.json"), ("html", "report.html")):
        (where / name).write_text(_audit_render.render(report, fmt))
    figures = where / "figures.json"
    proc = subprocess.run([os.path.join(ROOT, "scripts", "check-report-html"), str(where / "report.html"),
                           str(where / "report.png"), "--figures", str(figures)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    return {"proc": proc, "figures": json.loads(figures.read_text()) if figures.exists() else None}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit
    out = {}
    for count in SIZES:
        out[count] = check(tmp_path_factory.mktemp("report-%d" % count), _audit.build_report(fleet_records(count)))
    summary = dict((count, page["figures"]) for count, page in out.items())
    print(json.dumps(summary, indent=1, sort_keys=True))
    if os.environ.get("NC_REPORT_HTML_FIGURES"):
        with open(os.environ["NC_REPORT_HTML_FIGURES"], "w") as f:
            json.dump(summary, f, indent=2, sort_keys=True)
    return out


@pytest.mark.parametrize("count", SIZES)
def test_the_page_sorts_filters_and_pages_in_chromium(pages, count):
    proc = pages[count]["proc"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = pages[count]["figures"]
    assert figures["hosts"] == count
    assert figures["every_host_rows"] == min(count, figures["page_size"])


@pytest.mark.parametrize("count", SIZES)
def test_the_screenshot_shows_the_table(pages, count):
    shot = pages[count]["figures"]["screenshot"]
    assert (shot["width"], shot["height"]) == (1400, 1600)
    # Not one flat colour: text, the table's borders and the severity badges are drawn.
    assert shot["colors"] > 100 and shot["background_share"] < 0.97
    assert shot["border_pixels"] > 5000 and shot["badge_pixels"] > 0


def test_the_10000_host_page_renders_in_seconds(pages):
    big = pages[10000]["figures"]
    assert big["first_render_seconds"] <= FIRST_RENDER_SECONDS_MAX, big["chromium_seconds"]
    # The page's own clock agrees that the first page of rows was drawn, a bounded page of them.
    assert 0 <= big["ready_ms"] <= FIRST_RENDER_SECONDS_MAX * 1000
    assert big["first_page_rows"] == big["page_size"] == 100


def test_hostile_names_and_errors_neither_break_the_page_nor_run(tmp_path):
    from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit
    page = check(tmp_path, _audit.build_report(hostile_records()))
    # The check finds each name as a row's data-host, the error in its host's details, no script
    # error and no script beyond the page's two.
    assert page["proc"].returncode == 0, page["proc"].stdout + page["proc"].stderr
    assert page["figures"]["title"].startswith("Conntrack audit")
