"""B2: facts at scale. Time and peak RSS of our facts against the case study's pipelines.

Median of at least 5 repeats per size, with the spread; ratios are taken within each repeat.

On the same live table (100k, then 1M UDP entries in one namespace):
- bare read        wc -l < /proc/net/nf_conntrack         (the kernel's own floor)
- pipelines        conntrack -L -o extended | wc -l
                   ... | awk per TCP state | sort | uniq -c
                   ... | per source address | sort | uniq -c | sort -rn | head
- facts summary    the facts gathering without the walk, in a subprocess of its own
- facts walk       the facts gathering with table=True, in a subprocess of its own
- facts (ansible)  `ansible localhost -m netfilter.conntrack.facts` with the walk, once per size
"""
import json
import os
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common
import table_lab
from support.ansible import run_module
from support.kernel import exclusive_kernel

PIPELINES = {
    "count": "conntrack -L -o extended 2>/dev/null | wc -l",
    "per_state": "conntrack -L -o extended 2>/dev/null | awk '$3 == \"tcp\" {print $6}' | sort | uniq -c",
    "per_source": ("conntrack -L -o extended 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^src=/) "
                   "{print $i; break}}' | sort | uniq -c | sort -rn | head"),
}
BARE_READ = "wc -l < /proc/net/nf_conntrack"
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "facts_probe.py")

GOALS = {"walk_over_bare_read_max": 1.5, "walk_vs_fastest_pipeline_speedup_min": 2.0,
         "walk_peak_rss_bytes_max": 100 * 1024 * 1024, "summary_seconds_max": 0.050}


def _sh(ns, script):
    res = common.measure(ns.argv(["sh", "-c", script]))
    return {"seconds": res["seconds"], "peak_rss_bytes": res["peak_rss_bytes"], "exit_code": res["exit_code"],
            "output_head": res["stdout"][:200]}


def _spread(runs):
    """Median and spread of repeated runs (the machine is shared: one run says little)."""
    ok = [r for r in runs if r.get("seconds") is not None]
    if not ok:
        return dict(runs[0], repeats=0)
    seconds = sorted(r["seconds"] for r in ok)
    out = dict(min(ok, key=lambda r: abs(r["seconds"] - common.median(seconds))))
    out.update(seconds=round(common.median(seconds), 4), min_seconds=seconds[0], max_seconds=seconds[-1],
               spread_seconds=round(seconds[-1] - seconds[0], 4), all_seconds=[r["seconds"] for r in ok],
               repeats=len(ok), peak_rss_bytes=max(r.get("peak_rss_bytes") or 0 for r in ok))
    return out


def _probe(ns, mode):
    res = common.measure(ns.argv([common.python_in_venv(), PROBE, common.collections_path().split(":")[0], mode]))
    if res["exit_code"] != 0:
        return {"error": res["stderr"].strip().splitlines()[-1:] or ["exit %s" % res["exit_code"]],
                "seconds": None, "process_seconds": res["seconds"], "peak_rss_bytes": res["peak_rss_bytes"]}
    out = json.loads(res["stdout"])
    out["process_seconds"] = res["seconds"]
    out["peak_rss_bytes"] = res["peak_rss_bytes"]
    return out


def _ansible(ns, table):
    start = time.monotonic()
    try:
        result = run_module("facts", {"table": table}, netns=ns, env=common.ansible_env())
    except RuntimeError as exc:
        return {"error": str(exc)[-500:], "seconds": None}
    seconds = round(time.monotonic() - start, 3)
    facts = (result.get("ansible_facts") or {}).get("conntrack") or {}
    result.pop("_stdout", None)
    return {"seconds": seconds, "failed": bool(result.get("failed")) or not facts, "msg": result.get("msg"),
            "entries_read": (facts.get("table") or {}).get("entries_read"),
            "result_json_bytes": len(json.dumps(result))}


def measure_table(ns, repeats=5, with_ansible=True):
    """Each repeat runs every contender once, in turn, so that a burst of load from elsewhere
    falls on all of them; ratios are taken within a repeat, then their median."""
    runs = {"bare_read": [], "walk": [], "summary": [], "ansible_walk": [], "ansible_summary": []}
    runs.update(("pipeline_" + name, []) for name in PIPELINES)
    for dummy in range(repeats):
        runs["bare_read"].append(_sh(ns, BARE_READ))
        runs["walk"].append(_probe(ns, "walk"))
        for name, script in PIPELINES.items():
            runs["pipeline_" + name].append(_sh(ns, script))
        runs["summary"].append(_probe(ns, "summary"))
    out = {"entries": table_lab.count(ns), "repeats": repeats, "loadavg": [round(x, 2) for x in os.getloadavg()]}
    out["bare_read"] = _spread(runs["bare_read"])
    out["pipelines"] = {name: _spread(runs["pipeline_" + name]) for name in PIPELINES}
    out["pipelines_total_seconds"] = round(sum(p["seconds"] for p in out["pipelines"].values()), 3)
    out["facts_summary"] = _spread(runs["summary"])
    out["facts_walk"] = _spread(runs["walk"])
    walks = [w.get("seconds") for w in runs["walk"]]
    fastest = [min(runs["pipeline_" + name][i]["seconds"] for name in PIPELINES) for i in range(repeats)]
    out["walk_over_bare_read"] = common.ratio(common.median(
        [common.ratio(w, b["seconds"], 4) for w, b in zip(walks, runs["bare_read"])]), 1, 2)
    out["walk_speedup_vs_fastest_pipeline"] = common.ratio(common.median(
        [common.ratio(f, w, 4) for f, w in zip(fastest, walks)]), 1, 2)
    out["walk_speedup_vs_pipelines"] = common.ratio(out["pipelines_total_seconds"], out["facts_walk"].get("seconds"), 2)
    if with_ansible:
        # The module's round trip, with and without the walk: what Ansible adds beyond the walk.
        for dummy in range(min(repeats, 3)):
            runs["ansible_walk"].append(_ansible(ns, True))
            runs["ansible_summary"].append(_ansible(ns, False))
        out["facts_walk_ansible"] = _spread(runs["ansible_walk"])
        out["facts_summary_ansible"] = _spread(runs["ansible_summary"])
        out["ansible_overhead_seconds"] = (
            None if out["facts_walk_ansible"].get("seconds") is None or out["facts_walk"].get("seconds") is None
            else round(out["facts_walk_ansible"]["seconds"] - out["facts_walk"]["seconds"], 3))
    return out


def goals(m):
    walk, summary = m["facts_walk"], m["facts_summary"]
    if walk.get("seconds") is None:
        return {"facts_available": False}
    return {
        "walk_within_1_5x_of_bare_read": m["walk_over_bare_read"] <= GOALS["walk_over_bare_read_max"],
        "walk_2x_faster_than_fastest_pipeline":
            m["walk_speedup_vs_fastest_pipeline"] >= GOALS["walk_vs_fastest_pipeline_speedup_min"],
        "walk_peak_rss_at_most_100_mb": walk["peak_rss_bytes"] <= GOALS["walk_peak_rss_bytes_max"],
        "summary_at_most_50_ms": summary.get("seconds") is not None
        and summary["seconds"] <= GOALS["summary_seconds_max"],
    }


def run(sizes=(100000, 1000000), repeats=5, with_ansible=True, results_dir=None, name="b2"):
    result = {"parameters": {"sizes": list(sizes), "repeats": repeats}, "goals_definition": GOALS,
              "pipelines": PIPELINES, "bare_read": BARE_READ, "tables": {}}
    with exclusive_kernel(), table_lab.table_namespace(int(max(sizes) * 1.1) + 1024) as ns:
        for size in sorted(sizes):
            have, fill_seconds = table_lab.fill_to(ns, size)
            common.log("table holds %d entries (fill %.1f s); measuring" % (have, fill_seconds))
            m = measure_table(ns, repeats=repeats, with_ansible=with_ansible)
            m["fill_seconds"] = fill_seconds
            m["goals"] = goals(m)
            result["tables"][str(size)] = m
            common.log("%d: bare %.2fs walk %s s (%sx bare, %sx faster than the fastest pipeline, rss %.0f MB)"
                       " summary %s s  %s" % (
                           m["entries"], m["bare_read"]["seconds"], m["facts_walk"].get("seconds"),
                           m["walk_over_bare_read"], m["walk_speedup_vs_fastest_pipeline"],
                           m["facts_walk"]["peak_rss_bytes"] / 2.0 ** 20, m["facts_summary"].get("seconds"), m["goals"]))
    largest = result["tables"][str(max(sizes))]
    result["goals"] = largest["goals"]
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s" % path)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
