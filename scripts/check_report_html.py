"""Open an audit report.html in real headless Chromium and check what it shows against the
report.json beside it (scripts/check-report-html runs this; standard library only).

One Chromium, driven over the DevTools protocol, loads the page afresh for each view: with a URL
fragment that the page's script applies on load (#page=2, #q=..., #host=..., #sort=...), and
with real clicks and typing (column headings both ways, next and previous page, the filter box,
the "only hosts with findings" switch). Checked: the summary's hosts per severity and per
finding, the first page (hosts with findings, worst first), paging, the filters, the sorts, a
host's details, both charts with their 75%/90% lines, no script errors and no script but the
page's own, the summary and first page with scripts off, and a screenshot that shows the table.
Measured: the time from navigation to the first page of rows drawn. Oracles are computed here
from report.json, not by the page.
"""
import argparse
import base64
import json
import os
import select
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
        self.severity_rows, self.rule_rows, self.scripts = {}, {}, 0
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
        if tag == "script":
            self.scripts += 1
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


class Browser(object):
    """One headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    Chromium reads commands on its fd 3 and answers on fd 4, each message JSON ended by a NUL), so
    that the checks can click, type and read the page's state without anything beyond the
    standard library."""

    def __init__(self, tmp, window):
        to_chromium, self._out = os.pipe()
        self._in, from_chromium = os.pipe()

        def fds():
            # Two steps, so that neither dup2 closes the other pipe's end.
            a, b = os.dup(to_chromium), os.dup(from_chromium)
            os.dup2(a, 3)
            os.dup2(b, 4)

        started = time.monotonic()
        # Pipes are not inherited (PEP 446); only fds 3 and 4, made by dup2, reach Chromium.
        self.proc = subprocess.Popen(  # pylint: disable=subprocess-popen-preexec-fn
            ["chromium"] + FLAGS + ["--remote-debugging-pipe", "--user-data-dir=%s/profile" % tmp, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=fds, close_fds=False)
        os.close(to_chromium)
        os.close(from_chromium)
        self._buf, self._ids, self.events, self.session = b"", 0, [], None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": window[0], "height": window[1], "deviceScaleFactor": 1, "mobile": False})
        self.start_seconds = round(time.monotonic() - started, 3)

    def call(self, method, params=None, timeout=180):
        self._ids += 1
        message = {"id": self._ids, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                answer = json.loads(raw.decode())
                if answer.get("id") == self._ids:
                    if "error" in answer:
                        raise RuntimeError("%s: %s" % (method, answer["error"]))
                    return answer.get("result", {})
                if "method" in answer:
                    self.events.append(answer)
            ready = select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))[0]
            chunk = os.read(self._in, 1 << 20) if ready else b""
            if not chunk:
                raise RuntimeError("chromium did not answer %s (%s)" % (method, "timeout" if not ready else "closed"))
            self._buf += chunk

    def js(self, expression):
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise RuntimeError("%s: %s" % (expression[:80], answer["exceptionDetails"].get("text")))
        return answer["result"].get("value")

    def wait(self, expression, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.02)

    def errors(self):
        """The page's uncaught exceptions and console errors, as text."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append("exception: %s %s" % (d.get("text"), (d.get("exception") or {}).get("description", "")))
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append("console.error: %s" % " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append("log: %s" % p["entry"]["text"])
        return out

    def close(self):
        for fd in (self._out, self._in):
            os.close(fd)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# The page is drawn: the table's script has run (or there is no script to run) and a frame is painted.
READY = ("new Promise(function(done){var t=document.getElementById('fleet');"
         "if(document.readyState==='loading'||(t&&!t.hasAttribute('data-ready'))){done(false);return;}"
         "requestAnimationFrame(function(){setTimeout(function(){done(true);},0);});})")


class Chromium(object):
    """The page in one Browser: views by URL fragment, clicks and typing, timings, screenshot."""

    def __init__(self, page, tmp):
        self.url = "file://" + quote(page)
        self.browser = Browser(tmp, WINDOW)
        self.seconds = {}
        self.scripts = True

    def open(self, fragment="", what=None):
        """Load the page afresh (about:blank in between, so a new fragment is a new load) and wait
        until it is drawn; the seconds from the navigation to that are kept under ``what``."""
        self.browser.call("Page.navigate", {"url": "about:blank"})
        self.browser.wait("document.readyState==='complete'&&location.href==='about:blank'")
        start = time.monotonic()
        self.browser.call("Page.navigate", {"url": self.url + fragment})
        self.browser.wait("location.href.indexOf('file:')===0")
        if not self.browser.wait(READY if self.scripts else "document.readyState==='complete'"):
            raise RuntimeError("the page did not finish drawing %s" % (fragment or "the default view"))
        self.seconds[what or fragment or "default view"] = round(time.monotonic() - start, 3)

    def current(self):
        dom = Dom()
        dom.feed(self.browser.js("document.documentElement.outerHTML"))
        return dom

    def dom(self, fragment=""):
        self.open(fragment)
        return self.current()

    def click(self, selector):
        """A real mouse click (press and release) at the middle of the element, as a reader's."""
        where = self.browser.js(
            "(function(){var e=document.querySelector(%s);if(!e){return null;}e.scrollIntoView({block:'center'});"
            "var r=e.getBoundingClientRect();return [r.left+r.width/2,r.top+r.height/2];})()" % json.dumps(selector))
        if where is None:
            raise RuntimeError("nothing to click at %s" % selector)
        for kind in ("mousePressed", "mouseReleased"):
            self.browser.call("Input.dispatchMouseEvent",
                              {"type": kind, "x": where[0], "y": where[1], "button": "left", "clickCount": 1})
        self.browser.wait(READY)

    def type(self, selector, text):
        """Types into the element and waits for the table to follow (the filter waits for a pause)."""
        before = self.state()
        self.click(selector)
        self.browser.call("Input.insertText", {"text": text})
        self.browser.wait("(function(){var t=document.getElementById('fleet');return t.getAttribute('data-matching')!==%s"
                          "||document.getElementById('fleet-status').textContent!==%s;})()"
                          % (json.dumps(before["matching"]), json.dumps(before["status"])), timeout=30)
        self.browser.wait(READY)

    def state(self):
        return self.browser.js(
            "(function(){var t=document.getElementById('fleet'),p=document.querySelector('nav.pager');"
            "return {rows:[].map.call(t.querySelectorAll('tbody tr[data-host]'),function(r){return r.getAttribute('data-host');}),"
            "matching:t.getAttribute('data-matching'),status:document.getElementById('fleet-status').textContent,"
            "page:p&&p.getAttribute('data-page'),pages:p&&p.getAttribute('data-pages'),"
            "label:p?p.querySelector('.label').textContent:'',"
            "sorted:[].map.call(t.querySelectorAll('th.sorted-asc,th.sorted-desc'),function(h){"
            "return h.getAttribute('data-col')+' '+h.className;})};})()")

    def timings(self):
        """The page's own clock: navigation start to the first contentful paint and to the table drawn."""
        return self.browser.js(
            "(function(){var p=performance.getEntriesByName('first-contentful-paint')[0];"
            "var t=document.getElementById('fleet');return {fcp_ms:p?Math.round(p.startTime):-1,"
            "ready_ms:t?+(t.getAttribute('data-ready-ms')||-1):-1};})()")

    def scripts_off(self):
        self.scripts = False
        self.browser.call("Emulation.setScriptExecutionDisabled", {"value": True})

    def screenshot(self, path):
        self.open(what="screenshot")
        shot = self.browser.call("Page.captureScreenshot", {"format": "png", "clip": {
            "x": 0, "y": 0, "width": WINDOW[0], "height": WINDOW[1], "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def close(self):
        self.browser.close()


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
        # The data and the code: a third would be markup from a host name or a message.
        self.expect("script elements", dom.scripts, 2)
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
        # The first view is the first opening: its seconds are the time to first render.
        self.chromium.open(what="first render")
        dom = self.chromium.current()
        timings = self.chromium.timings()
        if not dom.rows and self.hosts:
            self.problems.append("the fleet table has no rows")
        flagged = self.default_view(dom)
        size = self.size(dom)
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
            self.clicks(size)
        self.problems.extend("the page logged an error: " + e for e in self.chromium.browser.errors())
        return {"title": self.chromium.browser.js("document.title"), "hosts": len(self.hosts), "page_size": size, "first_page_rows": len(dom.rows),
                "every_host_rows": len(every.rows), "ready_ms": timings["ready_ms"], "fcp_ms": timings["fcp_ms"],
                "first_render_seconds": self.chromium.seconds["first render"],
                "chromium_start_seconds": self.chromium.browser.start_seconds,
                "chromium_seconds": self.chromium.seconds}

    @staticmethod
    def _names(hosts):
        return [h["host"] for h in hosts]

    def clicks(self, size):
        """What a reader does: click column headings, type in the filter box, page on, untick
        "only hosts with findings"; each time the rows, the count and the pager against report.json."""
        c = self.chromium
        flagged = [h for h in self.hosts if h["severity"] != "ok"] or self.hosts
        c.open()
        default = c.state()
        # Numbers start with the biggest; a second click reverses. Equal values keep the worst first.
        for clicks, wanted, order in ((1, sorted(flagged, key=lambda h: -usage(h)), "desc"),
                                      (2, sorted(flagged, key=usage), "asc")):
            c.click('#fleet th[data-col="usage_percent"]')
            seen = c.state()
            self.expect("rows after %d click(s) on Usage" % clicks, seen["rows"], self._names(wanted)[:size])
            self.expect("the heading marked after %d click(s) on Usage" % clicks, seen["sorted"],
                        ["usage_percent sorted-" + order])
        # Text starts with A.
        for clicks, reverse, order in ((1, False, "asc"), (2, True, "desc")):
            c.click('#fleet th[data-col="host"]')
            seen = c.state()
            self.expect("rows after %d click(s) on Host" % clicks, seen["rows"],
                        sorted(self._names(flagged), key=str.lower, reverse=reverse)[:size])
            self.expect("the heading marked after %d click(s) on Host" % clicks, seen["sorted"], ["host sorted-" + order])
        if len(flagged) > 1 and seen["rows"] == default["rows"]:
            self.problems.append("sorting by host did not change the order of the rows")
        c.click("#reset")
        self.expect("rows after 'Worst first, no filter'", c.state()["rows"], default["rows"])
        # Paging: a bounded page, the right total, next and back.
        pages = max(1, -(-len(flagged) // size))
        self.expect("page 1: rows, matching hosts, pager", (default["rows"], default["matching"], default["label"]),
                    (self._names(flagged)[:size], str(len(flagged)), "page 1 of %s" % "{:,}".format(pages)))
        if pages > 1:
            c.click('nav.pager button[data-go="next"]')
            seen = c.state()
            self.expect("page 2 after 'next'", (seen["rows"], seen["matching"], seen["label"]),
                        (self._names(flagged)[size:2 * size], str(len(flagged)), "page 2 of %s" % "{:,}".format(pages)))
            if "Hosts {:,}\u2013{:,} of {:,}".format(size + 1, min(2 * size, len(flagged)), len(flagged)) \
                    not in seen["status"]:
                self.problems.append("the status line on page 2 does not count the hosts: %r" % seen["status"])
            c.click('nav.pager button[data-go="prev"]')
            self.expect("page 1 after 'previous'", c.state()["rows"], self._names(flagged)[:size])
        # Every host, then a typed filter that narrows them. With no host with findings the
        # switch starts off: the first click shows the (no) hosts with findings.
        if not c.browser.js("document.getElementById('findings-only').checked"):
            c.click("#findings-only")
            seen = c.state()
            with_findings = [h["host"] for h in self.hosts if h["severity"] != "ok"]
            self.expect("hosts after ticking 'only hosts with findings'", (seen["rows"], seen["matching"]),
                        (with_findings[:size], str(len(with_findings))))
        c.click("#findings-only")
        seen = c.state()
        self.expect("every host after unticking 'only hosts with findings'", (seen["rows"], seen["matching"]),
                    (self._names(self.hosts)[:size], str(len(self.hosts))))
        # The last host's name less its last character: it matches that host and its neighbours.
        name = self.hosts[-1]["host"]
        query = (name[:-1] or name).lower()
        wanted = [h["host"] for h in self.hosts if query in haystack(h)]
        c.type("#filter", query)
        seen = c.state()
        self.expect("rows and count after typing %r in the filter" % query, (seen["rows"], seen["matching"]),
                    (wanted[:size], str(len(wanted))))
        if len(wanted) < len(self.hosts) and "matching the filter" not in seen["status"]:
            self.problems.append("the status line does not say the filter is on: %r" % seen["status"])

    def static(self):
        """The page with scripts off: the summary and the first page of rows are in the HTML itself."""
        self.chromium.scripts_off()
        dom = self.chromium.dom()
        summary = self.report["summary"]["by_severity"]
        self.expect("hosts per severity, scripts off", dict((s, number(c[1])) for s, c in dom.severity_rows.items()),
                    dict((s, summary[s]) for s in SEVERITIES))
        self.expect("hosts per finding, scripts off",
                    dict((r, [number(x) for x in cells[1:]]) for r, cells in dom.rule_rows.items()), by_rule(self.hosts))
        flagged = [h["host"] for h in self.hosts if h["severity"] != "ok"] or [h["host"] for h in self.hosts]
        self.expect("first page, scripts off", dom.rows, flagged[:self.size(dom)])

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("html")
    parser.add_argument("screenshot", nargs="?")
    parser.add_argument("--figures", help="write the timings and counts here, as JSON")
    args = parser.parse_args()
    page = os.path.realpath(args.html)
    with open(os.path.join(os.path.dirname(page), "report.json")) as f:
        report = json.load(f)
    tmp = tempfile.mkdtemp(prefix="check-report-html-")
    chromium = None
    try:
        chromium = Chromium(page, tmp)
        checker = Checker(chromium, report)
        figures = checker.run()
        if args.screenshot:
            shot = os.path.abspath(args.screenshot)
            chromium.screenshot(shot)
            figures["screenshot"] = shot_figures = screenshot_figures(shot)
            if (shot_figures["width"], shot_figures["height"]) != WINDOW or shot_figures["colors"] < 16 \
                    or shot_figures["background_share"] > 0.97 or shot_figures["border_pixels"] < 1000:
                checker.problems.append("the screenshot does not show the table: %s" % shot_figures)
        # Last: scripts stay off in this browser from here on.
        checker.static()
    except RuntimeError as e:
        # A page that never finishes drawing: say so, with what the page logged.
        print("report.html check FAILED: %s\n  %s" % (e, "\n  ".join(chromium.browser.errors() if chromium else [])),
              file=sys.stderr)
        return 1
    finally:
        if chromium:
            chromium.close()
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
