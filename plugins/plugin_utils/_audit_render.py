# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Renderers of the fleet report (controller side, private): JSON, CSV, Markdown,
a self-contained HTML page and one Prometheus textfile per host. Pure: strings out.

The Markdown and the HTML page are Jinja2 templates (_audit_templates/ beside this file),
which users can replace; this module gives them the rows and cells (from the one column table) and the
SVG charts, whose geometry stays here."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import csv
import datetime
import html
import io
import json
import os

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._audit_rules import (
    SEVERITIES, human_bytes, severity_rank,
)

FORMATS = ("json", "csv", "markdown", "html", "prometheus")

# The most hosts drawn in one chart; the table and the details always hold every host.
CHART_HOSTS_LIMIT = 60

# Rows per page of the HTML fleet table: the page's script builds only the rows of one page and
# a host's details only when they are opened, so that a fleet of 10,000 stays a small DOM.
HTML_PAGE_SIZE = 100


def render(report, fmt, host=None, template=None):
    """``template``: the text of a Jinja2 template to use instead of the collection's own
    (Markdown and HTML only; _audit_templates/ beside this module holds the defaults to start from).
    None or empty: the collection's own."""
    if template and fmt not in ("markdown", "md", "html"):
        raise ValueError("only the markdown and html formats take a template, not %s" % fmt)
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt in ("markdown", "md"):
        return render_markdown(report, template)
    if fmt == "html":
        return render_html(report, template)
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


def _usage_sort(h):
    ratio = (h.get("metrics") or {}).get("usage_ratio")
    return -1 if ratio is None else ratio


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
    # Shown rounded to a percent, sorted on the exact ratio.
    Column("usage_percent", _metric("usage_percent"), "Usage", fmt=_fmt_pct, sort=_usage_sort),
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

# The columns of report.csv, in this order: a spreadsheet reads them by position, so a new
# column goes at the end.
CSV_COLUMNS = (
    "host", "status", "severity", "findings_critical", "findings_warning", "findings_info",
    "count", "max", "usage_percent", "buckets", "chain_depth_at_max",
    "recommended_max", "recommended_buckets", "memory_in_use_bytes", "memory_at_max_bytes",
    "recommended_memory_bytes", "memory_budget_bytes", "mem_total_bytes",
    "drop_total", "insert_failed_total", "chaintoolong_total", "table_full_count",
    "kube_proxy_running", "not_persisted", "kernel_release", "error", "reasons",
)


# The fleet table of the Markdown and HTML reports, in this order.
FLEET_COLUMNS = ("host", "status", "severity", "usage_percent", "count", "max", "recommended_max", "buckets",
                 "chain_depth_at_max", "memory_at_max_bytes", "recommended_memory_bytes", "findings")


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
        rows.append({"key": key, "current": cur, "recommended": settings[key], "change": bool(change),
                     "reason": reasons.get(key, "")})
    return rows


def _md(text):
    return str("" if text is None else text).replace("|", "\\|").replace("\n", " ")


# --- templates (Markdown, HTML) ------------------------------------------------------------

# The collection's own templates ship beside the renderer that fills them, so that the filter
# finds them wherever the collection is installed (an execution environment, a zip), and users
# copy them from there.
TEMPLATE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_audit_templates")


def _host_view(h, fleet):
    """One host for a template: its report entry, plus its fleet cells and recommendation rows."""
    view = dict(h)
    view["anchor"] = _anchor(h["host"])
    view["verdict"] = dict({"status": None, "reasons": []}, **((h.get("recommendation") or {}).get("verdict") or {}))
    view["recommendation_rows"] = _recommendation_rows(h)
    view["cells"] = [{"name": c.name, "text": c.text(h), "sort": c.sort(h), "numeric": c.numeric,
                      "html": _HTML_CELLS[c.name](h) if c.name in _HTML_CELLS else _e(c.text(h))} for c in fleet]
    return view


def _rule_summary(hosts):
    """Hosts per finding (rule), and per severity of that finding: worst rule first, then the
    most hosts. A host counts once per rule and severity, however often the rule fired on it."""
    seen = {}
    for h in hosts:
        for f in h["findings"]:
            seen.setdefault(f["rule"], {}).setdefault(f["severity"], set()).add(h["host"])
    rows = []
    for rule, by_sev in seen.items():
        row = {"rule": rule, "hosts": len(set().union(*by_sev.values()))}
        row.update((s, len(by_sev.get(s, ()))) for s in SEVERITIES[1:])
        row["worst"] = max(by_sev, key=severity_rank)
        rows.append(row)
    return sorted(rows, key=lambda r: (-severity_rank(r["worst"]), -r["hosts"], r["rule"]))


def template_context(report):
    """What a report template is given (docs/audit.md lists it)."""
    fleet = [COLUMNS[name] for name in FLEET_COLUMNS]
    summary = report["summary"]
    hosts = _ordered(report)
    # Up to the limit the charts go by name; past it they show the worst hosts, in table order,
    # since the first 60 names of a big fleet say nothing about it.
    charted = sorted(hosts, key=lambda h: h["host"]) if len(hosts) <= CHART_HOSTS_LIMIT else hosts[:CHART_HOSTS_LIMIT]
    return {
        "report": report,
        "severities": SEVERITIES,
        "gate": report.get("gate") or {},
        "unaudited": [(k, summary["by_status"][k]) for k in ("unreachable", "failed") if summary["by_status"].get(k)],
        "columns": [{"name": c.name, "header": c.header, "markdown": c.markdown, "numeric": c.numeric} for c in fleet],
        "hosts": [_host_view(h, fleet) for h in hosts],
        "rules": _rule_summary(hosts),
        "chart_hosts_limit": CHART_HOSTS_LIMIT,
        "usage_chart": _usage_chart(charted, report["thresholds"]),
        "memory_chart": _memory_chart(charted),
    }


def _environment():
    # No autoescape: the Markdown needs none, and the HTML cells and charts come escaped;
    # templates escape the rest with the h filter, as the default ones do.
    env = SandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                               undefined=StrictUndefined, autoescape=False)
    env.filters.update({"md": _md, "h": _e, "plural": _plural, "badge": _badge, "fmt_int": _fmt_int,
                        "fmt_bytes": _fmt_bytes, "fmt_pct": _fmt_pct, "fmt_depth": _fmt_depth})
    return env


def _render_template(report, name, template=None, extra=None):
    """``template`` is the text of a user's template; None or empty renders the collection's own ``name``.
    ``extra``: a function of the context that returns what only this format's templates are given."""
    if not template:
        with open(os.path.join(TEMPLATE_DIR, name)) as f:
            template = f.read()
    context = template_context(report)
    context.update(extra(context) if extra else {})
    return _environment().from_string(template).render(context)


def render_markdown(report, template=None):
    # The template writes each line with its newline; the report ends with exactly one.
    return _render_template(report, "report.md.j2", template).rstrip("\n") + "\n"


# --- HTML: the cells the template places, and the charts ---------------------------------

_COLORS = {"ok": "#2e7d32", "info": "#1565c0", "warning": "#ef6c00", "critical": "#c62828", "none": "#9e9e9e"}


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


def _status_html(h):
    if h["status"] == "ok":
        return _e(h["status"])
    return '<span class="badge st-%s">%s</span>' % (_e(h["status"]), _e(h["status"]))


# Fleet cells that are more than their escaped text. The host's button opens its details (the
# page's script builds them); the script draws its rows with the same markup.
_HTML_CELLS = {
    "host": lambda h: '<button type="button" class="toggle" aria-expanded="false">%s</button>' % _e(h["host"]),
    "status": _status_html,
    "severity": lambda h: _badge(h["severity"]),
}


def _details_data(h, text):
    """A host's details for the page's script, which builds them when the row is opened.
    ``text`` turns a string into its index in the page's string table."""
    out = {"f": [], "r": []}
    if h["status"] != "ok":
        out["e"] = [h["status"], text(h.get("error") or "no details")]
    else:
        m = h.get("metrics") or {}
        out["m"] = "%s of %s entries (%s), %s buckets, kernel %s" % (
            _fmt_int(m.get("count")), _fmt_int(m.get("max")), _fmt_pct(m.get("usage_percent")) or "n/a",
            _fmt_int(m.get("buckets")), m.get("kernel_release") or "unknown")
    for f in h["findings"]:
        if f.get("cause"):
            continue
        evidence = [[g["severity"], g["rule"], text(g["message"])] for g in h["findings"]
                    if f.get("explains") and g.get("cause") == f["rule"]]
        out["f"].append([f["severity"], f["rule"], text(f["message"]), evidence])
    if h["recommendation_rows"]:
        verdict = h["verdict"]
        out["d"] = [verdict["status"] or "n/a", text("; ".join(str(r) for r in verdict["reasons"] or ()))]
        out["r"] = [[r["key"], _fmt_text(r["current"]), _fmt_text(r["recommended"]), r["change"], text(r["reason"])]
                    for r in h["recommendation_rows"]]
    return out


def _page_data(hosts):
    """The page's data: per host its name, severity, status, the fleet cells' texts and sort keys
    (null where the key is the text itself) and its details. The messages and reasons, which
    repeat from host to host, are each stored once in ``strings`` and given by their index."""
    table = {}

    def text(value):
        return table.setdefault(value, len(table))

    data = [{"h": h["host"], "v": h["severity"], "s": h["status"],
             "c": [c["text"] for c in h["cells"]],
             "k": [None if c["sort"] == c["text"] else c["sort"] for c in h["cells"]],
             "x": _details_data(h, text)} for h in hosts]
    return {"hosts": data, "strings": sorted(table, key=table.get)}


def json_for_script(value):
    """JSON to embed in a <script type="application/json"> element: no '<' ends the element or
    opens a comment (``</script``, ``<!--``), no '&' or '>' is read as markup by anything else."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _html_context(context):
    hosts = context["hosts"]
    flagged = [h for h in hosts if h["severity"] != "ok"]
    return {
        "page_size": HTML_PAGE_SIZE,
        "hosts_with_findings": len(flagged),
        # What the page shows before its script runs (or where scripts are blocked): the
        # default view, the worst hosts with findings.
        "first_page": (flagged or hosts)[:HTML_PAGE_SIZE],
        "data_json": json_for_script(_page_data(hosts)),
    }


def render_html(report, template=None):
    return _render_template(report, "report.html.j2", template, _html_context)


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
