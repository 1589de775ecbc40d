# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Renderers of the fleet report (controller side, private): JSON, CSV, Markdown,
a self-contained HTML page and one Prometheus textfile per host. Pure: strings out."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import csv
import datetime
import html
import io
import json

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._audit import (
    CSV_COLUMNS, SEVERITIES, human_bytes, severity_rank,
)

FORMATS = ("json", "csv", "markdown", "html", "prometheus")

# The most hosts drawn in one chart; the table and the details always hold every host.
CHART_HOSTS_LIMIT = 60


def render(report, fmt, host=None):
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt in ("markdown", "md"):
        return render_markdown(report)
    if fmt == "html":
        return render_html(report)
    if fmt in ("prometheus", "prom"):
        if host is None:
            raise ValueError("the prometheus format is per host: pass host=NAME")
        return render_prometheus(report, host)
    raise ValueError("unknown report format %r (known: %s)" % (fmt, ", ".join(FORMATS)))


def render_json(report):
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ("%.6f" % value).rstrip("0").rstrip(".")
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def _plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def _fmt_pct(value):
    return "" if value is None else "%.1f%%" % value


def _fmt_depth(depth):
    if depth is None:
        return ""
    return "%.1f" % depth if depth >= 10 else "%.2f" % depth


def _fmt_int(value):
    return "" if value is None else "{:,}".format(int(value))


def _fmt_bytes(value):
    return "" if value is None else human_bytes(value)


def _fmt_text(value):
    return "" if value is None else str(value)


def _counts_text(h):
    return ", ".join("%d %s" % (h["counts"][k], k) for k in ("critical", "warning", "info") if h["counts"][k])


def _metric(name):
    return lambda h: (h.get("metrics") or {}).get(name)


def _field(name):
    return lambda h: h.get(name)


class Column(object):
    """One column of the report's tables: the CSV, and the fleet table of the Markdown and HTML.

    ``value`` reads it from a host entry (the CSV writes it raw); ``fmt`` turns it into the
    text of a numeric fleet cell (None: plain text, left aligned); ``sort`` is what the HTML
    table sorts on (the value, -1 when there is none, unless given).
    """

    def __init__(self, name, value, header=None, markdown=None, fmt=None, sort=None):
        self.name = name
        self.value = value
        self.header = header
        self.markdown = markdown or (header or "").lower()
        self.fmt = fmt
        self.numeric = fmt is not None
        self._sort = sort

    def text(self, h):
        return (self.fmt or _fmt_text)(self.value(h))

    def sort(self, h):
        if self._sort is not None:
            return self._sort(h)
        value = self.value(h)
        return -1 if value is None else value


COLUMNS = dict((c.name, c) for c in (
    Column("host", _field("host"), "Host"),
    Column("status", _field("status"), "Status"),
    Column("severity", _field("severity"), "Severity", sort=lambda h: severity_rank(h["severity"])),
    Column("findings_critical", lambda h: h["counts"].get("critical", 0)),
    Column("findings_warning", lambda h: h["counts"].get("warning", 0)),
    Column("findings_info", lambda h: h["counts"].get("info", 0)),
    Column("count", _metric("count"), "Count", fmt=_fmt_int),
    Column("max", _metric("max"), "nf_conntrack_max", "max", fmt=_fmt_int),
    Column("usage_percent", _metric("usage_percent"), "Usage", fmt=_fmt_pct,
           sort=lambda h: -1 if _metric("usage_ratio")(h) is None else _metric("usage_ratio")(h)),
    Column("buckets", _metric("buckets"), "Buckets", fmt=_fmt_int),
    Column("chain_depth_at_max", _metric("chain_depth_at_max"), "Chain depth at max", fmt=_fmt_depth),
    Column("recommended_max", _metric("recommended_max"), "Recommended max", fmt=_fmt_int),
    Column("recommended_buckets", _metric("recommended_buckets")),
    Column("memory_in_use_bytes", _metric("memory_in_use_bytes")),
    Column("memory_at_max_bytes", _metric("memory_at_max_bytes"), "Memory at max", fmt=_fmt_bytes),
    Column("recommended_memory_bytes", _metric("recommended_memory_bytes"), "Recommended memory", fmt=_fmt_bytes),
    Column("memory_budget_bytes", _metric("memory_budget_bytes")),
    Column("mem_total_bytes", _metric("mem_total_bytes")),
    Column("drop_total", _metric("drop_total")),
    Column("insert_failed_total", _metric("insert_failed_total")),
    Column("chaintoolong_total", _metric("chaintoolong_total")),
    Column("table_full_count", _metric("table_full_count")),
    Column("kube_proxy_running", _metric("kube_proxy_running")),
    Column("not_persisted", _metric("not_persisted")),
    Column("kernel_release", _metric("kernel_release")),
    Column("error", _field("error")),
    Column("reasons", lambda h: "; ".join("%s: %s" % (f["severity"], f["message"]) for f in h["findings"])),
    Column("findings", _counts_text, "Findings",
           sort=lambda h: h["counts"]["critical"] * 10000 + h["counts"]["warning"] * 100 + h["counts"]["info"]),
))

# The fleet table of the Markdown and HTML reports, in this order; the CSV has CSV_COLUMNS.
FLEET_COLUMNS = ("host", "status", "severity", "usage_percent", "count", "max", "recommended_max", "buckets",
                 "chain_depth_at_max", "memory_at_max_bytes", "recommended_memory_bytes", "findings")


def csv_row(h):
    return dict((name, COLUMNS[name].value(h)) for name in CSV_COLUMNS)


def render_csv(report):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for h in report["hosts"]:
        writer.writerow([_cell(COLUMNS[name].value(h)) for name in CSV_COLUMNS])
    return out.getvalue()


def _ordered(report):
    """Worst first, then fullest first: the order every renderer shows hosts in."""
    def key(h):
        ratio = (h.get("metrics") or {}).get("usage_ratio")
        return (-severity_rank(h["severity"]), -(ratio if ratio is not None else -1), h["host"])
    return sorted(report["hosts"], key=key)


def _recommendation_rows(h):
    rec = h.get("recommendation") or {}
    settings = rec.get("settings") or {}
    comparison = rec.get("comparison") or {}
    reasons = rec.get("reasons") or {}
    current = ((h.get("facts") or {}).get("settings") or {})
    rows = []
    for key in sorted(settings):
        comp = comparison.get(key) or {}
        cur = comp.get("current", current.get(key))
        change = comp.get("change")
        if change is None:
            change = cur != settings[key]
        rows.append((key, cur, settings[key], bool(change), reasons.get(key, "")))
    return rows


def _md(text):
    return str("" if text is None else text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report):
    s = report["summary"]
    lines = [
        "# Conntrack audit",
        "",
        "Generated %s, report version %s. %s: %s." % (
            report["generated_at"], report["version"], _plural(s["hosts"], "host"),
            ", ".join("%d %s" % (s["by_severity"][k], k) for k in reversed(SEVERITIES))),
        "",
    ]
    unaudited = [k for k in ("unreachable", "failed") if s["by_status"].get(k)]
    if unaudited:
        lines += ["Not audited: %s." % ", ".join("%d %s" % (s["by_status"][k], k) for k in unaudited), ""]
    gate = report.get("gate") or {}
    if gate.get("fail_on") and gate["fail_on"] != "never":
        lines += ["Gate `audit_fail_on: %s`: %s." % (
            gate["fail_on"], "FAILED by %s" % ", ".join(gate["hosts"]) if gate.get("failed") else "passed"), ""]
    fleet = [COLUMNS[name] for name in FLEET_COLUMNS]
    lines += ["| %s |" % " | ".join(c.markdown for c in fleet),
              "| %s |" % " | ".join("---:" if c.numeric else "---" for c in fleet)]
    for h in _ordered(report):
        lines.append("| %s |" % " | ".join(_md(c.text(h)) for c in fleet))
    lines.append("")
    for h in _ordered(report):
        lines += ["## %s" % h["host"], "", "Status **%s**, severity **%s**." % (h["status"], h["severity"]), ""]
        if h.get("error"):
            lines += ["Error: %s" % _md(h["error"]), ""]
        if h["findings"]:
            lines += ["Findings:", ""]
            lines += ["- **%s** `%s`: %s" % (f["severity"], f["rule"], _md(f["message"])) for f in h["findings"]]
            lines.append("")
        rows = _recommendation_rows(h)
        if rows:
            verdict = (h["recommendation"] or {}).get("verdict") or {}
            lines += ["Recommendation (verdict: %s):" % (verdict.get("status") or "n/a"), "",
                      "| setting | current | recommended | reason |", "| --- | ---: | ---: | --- |"]
            for key, cur, rec, change, reason in rows:
                lines.append("| `%s` | %s | %s%s | %s |" % (key, _md(cur), _md(rec), " (change)" if change else "",
                                                            _md(reason)))
            lines.append("")
    return "\n".join(lines)


# --- HTML -------------------------------------------------------------------------------

_COLORS = {"ok": "#2e7d32", "info": "#1565c0", "warning": "#ef6c00", "critical": "#c62828", "none": "#9e9e9e"}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5rem;color:#212121}
h1{margin:0 0 .3rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}h3{margin-bottom:.3rem}
.muted{color:#666}.badge{display:inline-block;padding:.1rem .5rem;border-radius:.7rem;color:#fff;font-size:.85rem}
.sev-ok{background:#2e7d32}.sev-info{background:#1565c0}.sev-warning{background:#ef6c00}.sev-critical{background:#c62828}
.st-unreachable,.st-failed{background:#616161}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
#fleet th{background:#f5f5f5;cursor:pointer;user-select:none}#fleet th.sorted-asc::after{content:" \\25B2"}
#fleet th.sorted-desc::after{content:" \\25BC"}
.charts{display:flex;flex-wrap:wrap;gap:2rem}.charts figure{margin:0}
.host{margin-top:1.5rem}.finding-critical{color:#c62828}.finding-warning{color:#ef6c00}.finding-info{color:#1565c0}
tr.change td{background:#fff8e1}
#fleet td:first-child,#fleet td:nth-child(2),#fleet td:nth-child(3){white-space:nowrap}
"""

_JS = """
(function(){
  var table=document.getElementById('fleet');
  if(!table){return;}
  var heads=table.tHead.rows[0].cells;
  function val(row,i){var c=row.cells[i];var v=c.getAttribute('data-sort');
    if(v===null){v=c.textContent;}var f=parseFloat(v);return (v!==''&&!isNaN(f)&&isFinite(v))?f:v.toLowerCase();}
  for(var i=0;i<heads.length;i++){(function(i){heads[i].addEventListener('click',function(){
    var asc=!heads[i].classList.contains('sorted-asc');
    for(var j=0;j<heads.length;j++){heads[j].classList.remove('sorted-asc','sorted-desc');}
    heads[i].classList.add(asc?'sorted-asc':'sorted-desc');
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=val(a,i),y=val(b,i);if(x===y){return 0;}
      if(typeof x!==typeof y){x=String(x);y=String(y);}return (x<y?-1:1)*(asc?1:-1);});
    rows.forEach(function(r){body.appendChild(r);});});})(i);}
  table.setAttribute('data-sortable','ready');
})();
"""


def _e(value):
    return html.escape("" if value is None else str(value), quote=True)


def _anchor(host):
    return "host-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in host)


def _usage_chart(hosts, t):
    hosts = hosts[:CHART_HOSTS_LIMIT]
    label_w, bar_w, row_h, top = 190, 460, 22, 28
    height = top + row_h * max(len(hosts), 1) + 30
    width = label_w + bar_w + 70
    out = ['<svg id="usage-chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'role="img" aria-label="Conntrack table usage per host">' % (width, height, width, height),
           '<title>Conntrack table usage per host, with the warning and critical lines</title>',
           '<text x="0" y="16" font-size="13" font-weight="bold">Table usage (count / nf_conntrack_max)</text>']
    for i, h in enumerate(hosts):
        y = top + i * row_h
        m = h.get("metrics") or {}
        ratio = m.get("usage_ratio")
        out.append('<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>' % (
            label_w - 6, y + 14, _e(h["host"][:28])))
        if ratio is None:
            out.append('<text class="bar-missing" x="%d" y="%d" font-size="12" fill="#757575">%s</text>' % (
                label_w + 4, y + 14, _e(h["status"] if h["status"] != "ok" else "no data")))
            continue
        w = max(1.0, min(ratio, 1.0) * bar_w)
        out.append('<rect class="track" x="%d" y="%d" width="%d" height="%d" fill="#eeeeee"/>' % (
            label_w, y + 3, bar_w, row_h - 6))
        out.append('<rect class="bar" data-host="%s" x="%d" y="%d" width="%.1f" height="%d" fill="%s">'
                   '<title>%s: %.1f%%</title></rect>' % (
                       _e(h["host"]), label_w, y + 3, w, row_h - 6, _COLORS.get(h["severity"], "#9e9e9e"),
                       _e(h["host"]), ratio * 100))
        out.append('<text x="%.1f" y="%d" font-size="11">%.1f%%</text>' % (label_w + w + 4, y + 14, ratio * 100))
    bottom = top + row_h * max(len(hosts), 1)
    for ratio, color, name in ((t["usage_warning_ratio"], "#ef6c00", "warning"),
                               (t["usage_critical_ratio"], "#c62828", "critical")):
        x = label_w + ratio * bar_w
        out.append('<line class="threshold threshold-%s" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" '
                   'stroke-width="1.5" stroke-dasharray="5,3"/>' % (name, x, top - 4, x, bottom, color))
        out.append('<text x="%.1f" y="%d" font-size="11" fill="%s" text-anchor="middle">%d%%</text>' % (
            x, bottom + 14, color, round(ratio * 100)))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#424242"/>' % (label_w, top - 4, label_w, bottom))
    for ratio in (0.0, 1.0):
        out.append('<text x="%.1f" y="%d" font-size="11" fill="#616161" text-anchor="middle">%d%%</text>' % (
            label_w + ratio * bar_w, bottom + 14, ratio * 100))
    out.append('</svg>')
    return "\n".join(out)


def _memory_chart(hosts):
    hosts = hosts[:CHART_HOSTS_LIMIT]
    label_w, bar_w, row_h, top = 190, 380, 30, 44
    values, budgets = [], []
    for h in hosts:
        m = h.get("metrics") or {}
        values += [v for v in (m.get("memory_at_max_bytes"), m.get("recommended_memory_bytes")) if v]
        budgets += [m["memory_budget_bytes"]] if m.get("memory_budget_bytes") else []
    # The budget (10% of RAM) often dwarfs the table: keep the bars readable and mark a
    # budget that falls off the scale with a label instead of a line.
    scale = max(values) if values else 1
    if budgets and max(budgets) <= 2 * scale:
        scale = max(budgets)
    scale = float(scale or 1)
    height = top + row_h * max(len(hosts), 1) + 10
    width = label_w + bar_w + 200
    out = ['<svg id="memory-chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'role="img" aria-label="Conntrack memory per host">' % (width, height, width, height),
           '<title>Memory of a full table at the current and the recommended size, per host</title>',
           '<text x="0" y="16" font-size="13" font-weight="bold">Memory of a full table</text>',
           '<rect x="0" y="24" width="10" height="10" fill="#5c6bc0"/>'
           '<text x="14" y="33" font-size="11">current nf_conntrack_max</text>',
           '<rect x="170" y="24" width="10" height="10" fill="#26a69a"/>'
           '<text x="184" y="33" font-size="11">recommended</text>',
           '<line x1="280" y1="29" x2="296" y2="29" stroke="#c62828" stroke-width="2"/>'
           '<text x="300" y="33" font-size="11">budget</text>']
    for i, h in enumerate(hosts):
        y = top + i * row_h
        m = h.get("metrics") or {}
        out.append('<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>' % (
            label_w - 6, y + 17, _e(h["host"][:28])))
        cur, rec, budget = m.get("memory_at_max_bytes"), m.get("recommended_memory_bytes"), m.get("memory_budget_bytes")
        if not cur and not rec:
            out.append('<text x="%d" y="%d" font-size="12" fill="#757575">%s</text>' % (
                label_w + 4, y + 17, _e(h["status"] if h["status"] != "ok" else "no data")))
            continue
        for j, (value, color, what) in enumerate(((cur, "#5c6bc0", "current"), (rec, "#26a69a", "recommended"))):
            if not value:
                continue
            w = max(1.0, value / scale * bar_w)
            out.append('<rect class="bar mem-%s" data-host="%s" x="%d" y="%d" width="%.1f" height="11" fill="%s">'
                       '<title>%s %s: %s</title></rect>' % (
                           what, _e(h["host"]), label_w, y + 3 + j * 12, w, color,
                           _e(h["host"]), what, _e(human_bytes(value))))
            out.append('<text x="%.1f" y="%d" font-size="10">%s</text>' % (
                label_w + w + 4, y + 12 + j * 12, _e(human_bytes(value))))
        if budget and budget <= scale:
            x = label_w + budget / scale * bar_w
            out.append('<line class="budget" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c62828" stroke-width="2">'
                       '<title>budget %s</title></line>' % (x, y + 1, x, y + 27, _e(human_bytes(budget))))
        elif budget:
            out.append('<text class="budget" x="%d" y="%d" font-size="10" fill="#c62828" text-anchor="end">'
                       'budget %s &#8594;</text>' % (width - 4, y + 17, _e(human_bytes(budget))))
    out.append('</svg>')
    return "\n".join(out)


def _badge(sev):
    return '<span class="badge sev-%s">%s</span>' % (_e(sev), _e(sev))


def _html_head(report):
    s = report["summary"]
    parts = [
        '<!DOCTYPE html>',
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="netfilter.conntrack.audit report v%s">' % _e(report["version"]),
        '<title>Conntrack audit: %s, worst %s</title>' % (_plural(s["hosts"], "host"), _e(s["worst_severity"])),
        '<style>%s</style></head><body>' % _CSS,
        '<h1>Conntrack audit</h1>',
        '<p class="muted">Generated %s &middot; report version %s &middot; %s &middot; %s</p>' % (
            _e(report["generated_at"]), _e(report["version"]), _plural(s["hosts"], "host"),
            " ".join('%s&nbsp;%d' % (_badge(k), s["by_severity"][k]) for k in reversed(SEVERITIES))),
    ]
    unaudited = [k for k in ("unreachable", "failed") if s["by_status"].get(k)]
    if unaudited:
        parts.append('<p id="not-audited"><strong>Not audited:</strong> %s</p>' % ", ".join(
            "%d %s" % (s["by_status"][k], k) for k in unaudited))
    gate = report.get("gate") or {}
    if gate.get("fail_on") and gate["fail_on"] != "never":
        parts.append('<p id="gate">Gate <code>audit_fail_on: %s</code>: <strong>%s</strong></p>' % (
            _e(gate["fail_on"]), _e("FAILED by " + ", ".join(gate["hosts"]) if gate.get("failed") else "passed")))
    return parts


def _status_html(h):
    if h["status"] == "ok":
        return _e(h["status"])
    return '<span class="badge st-%s">%s</span>' % (_e(h["status"]), _e(h["status"]))


# Fleet cells that are more than their escaped text.
_HTML_CELLS = {
    "host": lambda h: '<a href="#%s">%s</a>' % (_anchor(h["host"]), _e(h["host"])),
    "status": _status_html,
    "severity": lambda h: _badge(h["severity"]),
}


def _html_fleet(hosts):
    fleet = [COLUMNS[name] for name in FLEET_COLUMNS]
    parts = ['<h2>Fleet</h2>',
             '<p class="muted">Worst first. Click a column heading to sort.</p>',
             '<table id="fleet"><thead><tr>',
             "".join("<th>%s</th>" % _e(c.header) for c in fleet),
             '</tr></thead><tbody>']
    for h in hosts:
        parts.append('<tr class="sev-row-%s" data-host="%s">%s</tr>' % (_e(h["severity"]), _e(h["host"]), "".join(
            '<td%s data-sort="%s">%s</td>' % (' class="n"' if c.numeric else "", _e(c.sort(h)),
                                              _HTML_CELLS[c.name](h) if c.name in _HTML_CELLS else _e(c.text(h)))
            for c in fleet)))
    parts.append('</tbody></table>')
    return parts


def _html_host(h):
    parts = ['<section class="host" id="%s" data-host="%s">' % (_anchor(h["host"]), _e(h["host"])),
             '<h3>%s %s</h3>' % (_e(h["host"]), _badge(h["severity"]))]
    m = h.get("metrics") or {}
    if h["status"] != "ok":
        parts.append('<p><strong>%s</strong>: %s</p>' % (_e(h["status"]), _e(h.get("error") or "no details")))
    else:
        parts.append('<p class="muted">%s of %s entries (%s), %s buckets, kernel %s</p>' % (
            _e(_fmt_int(m.get("count"))), _e(_fmt_int(m.get("max"))), _e(_fmt_pct(m.get("usage_percent")) or "n/a"),
            _e(_fmt_int(m.get("buckets"))), _e(m.get("kernel_release") or "unknown")))
    if h["findings"]:
        parts.append('<ul class="findings">')
        parts += ['<li class="finding-%s"><strong>%s</strong> <code>%s</code>: %s</li>' % (
            _e(f["severity"]), _e(f["severity"]), _e(f["rule"]), _e(f["message"])) for f in h["findings"]]
        parts.append('</ul>')
    elif h["status"] == "ok":
        parts.append('<p>No findings.</p>')
    rows = _recommendation_rows(h)
    if rows:
        verdict = (h["recommendation"] or {}).get("verdict") or {}
        parts.append('<p>Recommendation, verdict <strong>%s</strong>%s</p>' % (
            _e(verdict.get("status") or "n/a"),
            (": " + _e("; ".join(str(r) for r in verdict.get("reasons") or []))) if verdict.get("reasons") else ""))
        parts.append('<table class="recommendation"><thead><tr><th>Setting</th><th>Current</th>'
                     '<th>Recommended</th><th>Reason</th></tr></thead><tbody>')
        for key, cur, rec, change, reason in rows:
            parts.append('<tr%s><td><code>%s</code></td><td class="n">%s</td><td class="n">%s</td><td>%s</td></tr>'
                         % (' class="change"' if change else "", _e(key), _e(cur), _e(rec), _e(reason)))
        parts.append('</tbody></table>')
    parts.append('</section>')
    return parts


def render_html(report):
    hosts = _ordered(report)
    parts = _html_head(report) + _html_fleet(hosts)
    parts += ['<h2>Charts</h2>', '<div class="charts">',
              '<figure>%s</figure>' % _usage_chart(sorted(hosts, key=lambda h: h["host"]), report["thresholds"]),
              '<figure>%s</figure>' % _memory_chart(sorted(hosts, key=lambda h: h["host"])),
              '</div>']
    if len(hosts) > CHART_HOSTS_LIMIT:
        parts.append('<p class="muted">The charts show the first %d hosts by name; the table has all %d.</p>' % (
            CHART_HOSTS_LIMIT, len(hosts)))
    parts.append('<h2>Hosts</h2>')
    for h in hosts:
        parts += _html_host(h)
    parts.append('<script>%s</script>' % _JS)
    parts.append('</body></html>')
    return "\n".join(parts) + "\n"


# --- Prometheus textfile ----------------------------------------------------------------

PROM_PREFIX = "netfilter_conntrack_"

_GAUGES = (
    ("entries", "count", "Conntrack entries in use when the audit ran (like node_nf_conntrack_entries)."),
    ("entries_limit", "max", "nf_conntrack_max when the audit ran (like node_nf_conntrack_entries_limit)."),
    ("buckets", "buckets", "nf_conntrack_buckets, the hash table size."),
    ("usage_ratio", "usage_ratio", "Conntrack entries in use divided by nf_conntrack_max."),
    ("chain_depth_at_max", "chain_depth_at_max", "Average hash chain length of a full table (max / buckets)."),
    ("recommended_max", "recommended_max", "nf_conntrack_max recommended by netfilter.conntrack.recommend."),
    ("recommended_buckets", "recommended_buckets", "nf_conntrack_buckets recommended by netfilter.conntrack.recommend."),
    ("memory_in_use_bytes", "memory_in_use_bytes", "Memory held by conntrack entries and the hash table now."),
    ("memory_at_max_bytes", "memory_at_max_bytes", "Memory a full table would take at the current nf_conntrack_max."),
    ("recommended_memory_bytes", "recommended_memory_bytes", "Memory a full table would take at the recommended size."),
    ("memory_budget_bytes", "memory_budget_bytes", "Memory budget the audit checks a full table against."),
    ("kernel_table_full_messages", "table_full_count", "Table-full messages found in the kernel log."),
)


def _prom_value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _epoch(iso):
    try:
        stamp = datetime.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return int(stamp.timestamp())


def render_prometheus(report, host):
    entry = None
    for h in report["hosts"]:
        if h["host"] == host:
            entry = h
            break
    if entry is None:
        raise ValueError("host %r is not in the audit report" % (host,))
    lines = []

    def metric(name, help_text, samples):
        lines.append("# HELP %s%s %s" % (PROM_PREFIX, name, help_text))
        lines.append("# TYPE %s%s gauge" % (PROM_PREFIX, name))
        for labels, value in samples:
            lines.append("%s%s%s %s" % (PROM_PREFIX, name, labels, _prom_value(value)))

    metric("audit_up", "1 when the host was audited, 0 when it was unreachable or failed.",
           [("", 1 if entry["status"] == "ok" else 0)])
    metric("audit_severity", "Worst finding of the host: 0 ok, 1 info, 2 warning, 3 critical.",
           [("", severity_rank(entry["severity"]))])
    metric("audit_findings", "Findings of the audit by severity.",
           [('{severity="%s"}' % s, entry["counts"].get(s, 0)) for s in ("info", "warning", "critical")])
    stamp = _epoch(report.get("generated_at"))
    if stamp is not None:
        metric("audit_timestamp_seconds", "When the audit report was generated, in seconds since the epoch.",
               [("", stamp)])
    metrics = entry.get("metrics") or {}
    for name, key, help_text in _GAUGES:
        value = metrics.get(key)
        if value is None or isinstance(value, (list, str)):
            continue
        metric(name, help_text, [("", value)])
    return "\n".join(lines) + "\n"
