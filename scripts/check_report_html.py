"""Open an audit report.html in real headless Chromium and check what it shows against the
report.json beside it (scripts/check-report-html runs this; standard library only).

Each view is a fresh Chromium run on the page with a URL fragment that the page's script
applies on load (#page=2, #q=..., #host=..., #sort=...); --dump-dom gives the DOM it built.
Checked: the summary's hosts per severity and per finding, the first page (hosts with findings,
worst first), the next page, the "every host" switch, the free-text, finding and host filters
(with the host's details drawn), a column sort, both charts with their 75%/90% lines, and a
screenshot that shows the table. Oracles are computed here from report.json, not by the page.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from html.parser import HTMLParser
from urllib.parse import quote

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
SEVERITIES = ("ok", "info", "warning", "critical")
WINDOW = (1400, 1600)
# Pixels the screenshot must show: the table's borders and the critical and warning badges.
BORDER, BADGES = (0xdd, 0xdd, 0xdd), ((0xc6, 0x28, 0x28), (0xef, 0x6c, 0x00))


class Dom(HTMLParser):
    """What the checks read from a dumped DOM."""

    def __init__(self):
        HTMLParser.__init__(self)
        self.ids, self.attrs, self.rows, self.details, self.lines = set(), {}, [], {}, []
        self.severity_rows, self.rule_rows = {}, {}
        self._cells, self._detail, self._nested, self._text = None, None, 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
            self.attrs[a["id"]] = a
        if tag == "tr" and "data-host" in a:
            self.rows.append(a["data-host"])
        if tag == "tr" and self._detail is not None:
            self._nested += 1
        if tag == "tr" and "data-detail" in a:
            self._detail = a["data-detail"]
            self.details[self._detail] = []
        if tag == "tr" and ("data-severity" in a or "data-rule" in a):
            self._cells = (a.get("data-severity"), a.get("data-rule"), [])
        if tag == "td" and self._cells is not None:
            self._text = []
        if tag == "line" and "threshold" in (a.get("class") or "").split():
            self.lines.append(a["class"].split("-")[-1])

    def handle_data(self, data):
        if self._cells is not None:
            self._text.append(data)
        if self._detail is not None:
            self.details[self._detail].append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cells is not None:
            self._cells[2].append("".join(self._text).strip())
        if tag == "tr" and self._cells is not None:
            severity, rule, cells = self._cells
            if severity:
                self.severity_rows[severity] = cells
            else:
                self.rule_rows[rule] = cells
            self._cells = None
        if tag == "tr" and self._detail is not None:
            if self._nested:
                self._nested -= 1
            else:
                self._detail = None


class Chromium(object):
    def __init__(self, page, tmp):
        self.url = "file://" + quote(page)
        self.tmp = tmp
        self.runs = 0
        self.seconds = {}

    def _run(self, args, what):
        self.runs += 1
        # A fresh profile per run: nothing cached, nothing shared with other runs.
        cmd = ["chromium"] + FLAGS + ["--user-data-dir=%s/profile-%d" % (self.tmp, self.runs)] + args
        start = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180, check=False)
        self.seconds[what] = round(time.monotonic() - start, 3)
        if proc.returncode != 0:
            sys.exit("chromium failed on %s:\n%s" % (what, proc.stderr.decode(errors="replace")[-3000:]))
        return proc.stdout

    def dom(self, fragment=""):
        what = fragment or "default view"
        dom = Dom()
        dom.feed(self._run(["--dump-dom", self.url + fragment], what).decode())
        return dom

    def screenshot(self, path):
        self._run(["--window-size=%d,%d" % WINDOW, "--screenshot=%s" % path, self.url], "screenshot")


def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG, as Chromium writes them."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s is not a PNG" % path)
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
    width, height, depth, color = header[:4]
    if depth != 8 or color not in (2, 6):
        raise ValueError("unexpected PNG format: depth %d, color type %d" % (depth, color))
    bpp = 3 if color == 2 else 4
    raw, stride, prev, rows = zlib.decompress(b"".join(idat)), width * bpp, bytearray(width * bpp), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xff
            elif kind == 2:
                line[i] = (line[i] + up) & 0xff
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xff
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xff
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def screenshot_figures(path):
    width, height, rows = png_pixels(path)
    counts = {}
    for row in rows:
        for px in row:
            counts[px] = counts.get(px, 0) + 1
    return {"bytes": os.path.getsize(path), "width": width, "height": height, "colors": len(counts),
            "background_share": round(max(counts.values()) / float(width * height), 3),
            "border_pixels": counts.get(BORDER, 0), "badge_pixels": sum(counts.get(c, 0) for c in BADGES)}


# --- the oracles, from report.json ----------------------------------------------------------

def rank(h):
    return SEVERITIES.index(h["severity"])


def usage(h):
    ratio = (h.get("metrics") or {}).get("usage_ratio")
    return -1 if ratio is None else ratio


def worst_first(hosts):
    return sorted(hosts, key=lambda h: (-rank(h), -usage(h), h["host"]))


def haystack(h):
    """What the page's filter box searches: the name, severity:, status:, rule: and the messages."""
    words = [h["host"], "severity:" + h["severity"], "status:" + h["status"]]
    words += ["rule:" + f["rule"] for f in h["findings"]] + [f["message"] for f in h["findings"]]
    if h["status"] != "ok":
        words.append(h.get("error") or "no details")
    return "\n".join(words).lower()


def by_rule(hosts):
    out = {}
    for h in hosts:
        for f in h["findings"]:
            out.setdefault(f["rule"], {}).setdefault(f["severity"], set()).add(h["host"])
    return dict((rule, [len(set().union(*sev.values()))] + [len(sev.get(s, ())) for s in ("critical", "warning", "info")])
                for rule, sev in out.items())


def worst(counts):
    """The rank of the worst severity in [hosts, critical, warning, info]."""
    return max([3 - i for i, n in enumerate(counts[1:]) if n] or [0])


def number(text):
    return int(text.replace(",", "")) if text else 0


class Checker(object):
    def __init__(self, chromium, report):
        self.chromium = chromium
        self.report = report
        self.hosts = worst_first(report["hosts"])
        self.problems = []

    def expect(self, what, seen, wanted):
        if seen != wanted:
            self.problems.append("%s: the page shows %s, report.json gives %s" % (what, _short(seen), _short(wanted)))

    def default_view(self, dom):
        for chart in ("fleet", "usage-chart", "memory-chart", "by-severity", "by-rule"):
            if chart not in dom.ids:
                self.problems.append("no #%s in the rendered page" % chart)
        if dom.attrs.get("fleet", {}).get("data-ready") != "1":
            self.problems.append("the fleet table's script did not run (no data-ready)")
        self.expect("threshold lines of the usage chart", dom.lines, ["warning", "critical"])
        summary = self.report["summary"]["by_severity"]
        self.expect("hosts per severity", dict((s, number(c[1])) for s, c in dom.severity_rows.items()),
                    dict((s, summary[s]) for s in SEVERITIES))
        rules = by_rule(self.hosts)
        self.expect("hosts per finding", dict((r, [number(c) for c in cells[1:]]) for r, cells in dom.rule_rows.items()),
                    rules)
        self.expect("the order of the findings summary (worst, then most hosts)", list(dom.rule_rows),
                    sorted(rules, key=lambda r: (-worst(rules[r]), -rules[r][0], r)))
        flagged = [h["host"] for h in self.hosts if h["severity"] != "ok"] or [h["host"] for h in self.hosts]
        self.expect("first page (hosts with findings, worst first)", dom.rows, flagged[:self.size(dom)])
        return flagged

    def size(self, dom):
        return int(dom.attrs["fleet"]["data-page-size"])

    def run(self):
        dom = self.chromium.dom()
        if not dom.rows and self.hosts:
            self.problems.append("the fleet table has no rows")
        flagged = self.default_view(dom)
        size = self.size(dom)
        ready_ms = int(dom.attrs.get("fleet", {}).get("data-ready-ms", -1))
        names = [h["host"] for h in self.hosts]
        every = self.chromium.dom("#all=1")
        self.expect("page 1 of every host", every.rows, names[:size])
        if len(flagged) > size:
            self.expect("page 2", self.chromium.dom("#page=2").rows, flagged[size:2 * size])
        if self.hosts:
            self.filters(size)
            ordered = sorted(self.hosts, key=lambda h: -usage(h))  # stable: worst first among equals
            self.expect("sorted by usage, descending", self.chromium.dom("#all=1&sort=-usage_percent").rows,
                        [h["host"] for h in ordered][:size])
            self.expect("sorted by host", self.chromium.dom("#all=1&sort=host").rows,
                        sorted(names, key=str.lower)[:size])
        return {"hosts": len(self.hosts), "page_size": size, "first_page_rows": len(dom.rows),
                "every_host_rows": len(every.rows), "ready_ms": ready_ms, "chromium_seconds": self.chromium.seconds}

    def filters(self, size):
        # The last host by name: on the last page, unless the fleet is small.
        host = max(self.hosts, key=lambda h: h["host"])
        view = self.chromium.dom("#host=" + quote(host["host"], safe=""))
        self.expect("#host= filter", view.rows, [host["host"]])
        # The host sections of earlier reports were #host-NAME; such links still find the host.
        anchor = "host-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in host["host"])
        self.expect("a link to an earlier report's host section", self.chromium.dom("#" + quote(anchor)).rows,
                    [host["host"]])
        text = " ".join(view.details.get(host["host"], []))
        missing = [f["message"] for f in host["findings"] if f["message"] not in text]
        if not view.details.get(host["host"]) or missing:
            self.problems.append("the details of %s are not drawn in full (missing %s)" % (host["host"], _short(missing)))
        if host["findings"]:
            rule = host["findings"][0]["rule"]
            wanted = [h["host"] for h in self.hosts if rule in [f["rule"] for f in h["findings"]]]
            view = self.chromium.dom("#all=1&rule=" + quote(rule, safe=""))
            self.expect("finding filter %s" % rule, (view.rows, view.attrs["fleet"].get("data-matching")),
                        (wanted[:size], str(len(wanted))))
        query = "severity:%s %s" % (self.hosts[0]["severity"], host["host"][:-1].lower())
        wanted = [h["host"] for h in self.hosts if all(w in haystack(h) for w in query.split())]
        view = self.chromium.dom("#all=1&q=" + quote(query, safe=""))
        self.expect("filter box %r" % query, (view.rows, view.attrs["fleet"].get("data-matching")),
                    (wanted[:size], str(len(wanted))))


def _short(value):
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html")
    parser.add_argument("screenshot", nargs="?")
    parser.add_argument("--figures", help="write the timings and counts here, as JSON")
    args = parser.parse_args()
    page = os.path.realpath(args.html)
    with open(os.path.join(os.path.dirname(page), "report.json")) as f:
        report = json.load(f)
    tmp = tempfile.mkdtemp(prefix="check-report-html-")
    try:
        checker = Checker(Chromium(page, tmp), report)
        figures = checker.run()
        if args.screenshot:
            shot = os.path.abspath(args.screenshot)
            checker.chromium.screenshot(shot)
            if not os.path.exists(shot) or not os.path.getsize(shot):
                checker.problems.append("chromium wrote no screenshot")
            else:
                figures["screenshot"] = shot_figures = screenshot_figures(shot)
                if (shot_figures["width"], shot_figures["height"]) != WINDOW or shot_figures["colors"] < 16 \
                        or shot_figures["background_share"] > 0.97 or shot_figures["border_pixels"] < 1000:
                    checker.problems.append("the screenshot does not show the table: %s" % shot_figures)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures["html_bytes"] = os.path.getsize(page)
    if args.figures:
        with open(args.figures, "w") as f:
            json.dump(figures, f, indent=2, sort_keys=True)
    if checker.problems:
        print("report.html check FAILED:\n  " + "\n  ".join(checker.problems), file=sys.stderr)
        return 1
    print("report.html rendered in chromium: %d hosts, %d table rows on page 1 of every host, first page of %d"
          " worst first, summary, paging, filters, sort and details checked; ready in %d ms%s"
          % (figures["hosts"], figures["every_host_rows"], figures["first_page_rows"], figures["ready_ms"],
             ", screenshot %(width)dx%(height)d, %(colors)d colours" % figures["screenshot"]
             if "screenshot" in figures else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
