"""The growth plot of B7 for docs/benchmarks.md: hosts against seconds, log-log, from b7.json.

``python bench/b7_plot.py [b7.json] [out.svg]`` writes the SVG and, where ``rsvg-convert``
(Debian's librsvg2-bin) is installed, the PNG beside it. Plain SVG: no plotting library is a
dependency of the collection or of the test venv.
"""
import json
import math
import os
import shutil
import subprocess
import sys

import _paths  # noqa: F401  pylint: disable=unused-import
import common

GOAL_SECONDS = 120
W, H, LEFT, RIGHT, TOP, BOTTOM = 780, 420, 80, 240, 40, 60
SERIES = (("seconds", "audit_cache, jsonfile, wall", "#c62828"),
          ("redis", "audit_cache, redis, wall", "#00838f"),
          ("per_host", "per-host role (baseline), wall", "#ef6c00"),
          ("aggregation_seconds", "the aggregation task", "#1565c0"),
          ("render_total", "rendering the 4 formats", "#2e7d32"),
          ("plugin_only", "Python side alone", "#6a1b9a"))


def _points(rows, key, result=None):
    if key in ("plugin_only", "per_host", "redis"):
        return [(r["hosts"], r["seconds"]) for r in (result or {}).get(key, [])]
    out = []
    for row in rows:
        value = sum(row["render_seconds"].values()) if key == "render_total" else row.get(key)
        if value:
            out.append((row["hosts"], value))
    return out


def svg(result):
    rows = result["sizes"]
    # Only a size that was not run has a projection to draw (a missing redis-server has none).
    result = dict(result, skipped=[s for s in result.get("skipped", []) if "projected_seconds" in s])
    hosts = [r["hosts"] for r in rows] + [s["hosts"] for s in result.get("skipped", [])]
    hosts += [r["hosts"] for r in result.get("plugin_only", []) + result.get("per_host", [])]
    values = [point[1] for series in SERIES for point in _points(rows, series[0], result)]
    values += [s["projected_seconds"] for s in result.get("skipped", [])] + [GOAL_SECONDS]
    x0, x1 = math.log10(min(hosts)) - 0.2, math.log10(max(hosts)) + 0.2
    y0, y1 = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))

    def px(x, y):
        return (LEFT + (math.log10(x) - x0) / (x1 - x0) * (W - LEFT - RIGHT),
                H - BOTTOM - (math.log10(y) - y0) / float(y1 - y0) * (H - TOP - BOTTOM))

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12"><rect width="100%%" height="100%%" fill="white"/>' % (W, H),
           '<text x="%d" y="24" font-size="14">B7: the fleet audit from a fact cache (log-log)</text>'
           % LEFT]
    for e in range(int(y0), int(y1) + 1):
        y = px(min(hosts), 10 ** e)[1]
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" '
                   'text-anchor="end">%g s</text>' % (LEFT, W - RIGHT, y, y, LEFT - 6, y + 4, 10 ** e))
    for n in sorted(set(hosts)):
        x = px(n, 10 ** y0)[0]
        out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" '
                   'text-anchor="middle">%s hosts</text>'
                   % (x, x, TOP, H - BOTTOM, x, H - BOTTOM + 18, "{:,}".format(n)))
    legend_y = TOP + 10
    for key, label, color in SERIES:
        pts = _points(rows, key, result)
        if not pts:
            continue
        path = " ".join("%.1f,%.1f" % px(x, y) for x, y in pts)
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>' % (path, color))
        out.extend('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>' % (px(x, y) + (color,)) for x, y in pts)
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s'
                   '</text>' % (W - RIGHT + 12, W - RIGHT + 32, legend_y, legend_y, color, W - RIGHT + 38,
                                legend_y + 4, label))
        legend_y += 20
    for s in result.get("skipped", []):
        base = result.get("per_host") if s.get("method") == "per_host" else rows
        if not base:
            continue
        last = base[-1]
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#c62828" stroke-dasharray="5,4"/>'
                   % (px(last["hosts"], last["seconds"]) + px(s["hosts"], s["projected_seconds"])))
        out.append('<text x="%.1f" y="%.1f" text-anchor="end">projected, not run</text>'
                   % (px(s["hosts"], s["projected_seconds"])[0] - 6, px(s["hosts"], s["projected_seconds"])[1] + 4))
    goal_x0, goal_y = px(min(hosts), GOAL_SECONDS)
    # The goal's label sits above its line, inside the plot, clear of the legend.
    goal = (goal_x0, W - RIGHT, goal_y, goal_y, goal_x0 + 6, goal_y - 5, GOAL_SECONDS)
    out.append('<line x1="%.1f" x2="%d" y1="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="2,3"/><text x="%.1f" '
               'y="%.1f" fill="#666">goal at 10,000 hosts: %d s</text>' % goal)
    out.append("</svg>\n")
    return "\n".join(out)


def main(argv):
    source = argv[1] if len(argv) > 1 else os.path.join(common.RESULTS, "b7.json")
    target = argv[2] if len(argv) > 2 else os.path.join(common.ROOT, "docs", "img", "b7-growth.svg")
    with open(source) as f:
        result = json.load(f)
    with open(target, "w") as f:
        f.write(svg(result))
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-o", target[:-4] + ".png", target], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
