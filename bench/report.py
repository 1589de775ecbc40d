"""Print the figures table of docs/benchmarks.md from bench/results/*.json.

    bench/run report            (or: python bench/report.py [RESULTS_DIR])
"""
import json
import os
import sys

import _paths
import common


def _load(results_dir, name):
    path = os.path.join(results_dir, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _yes(value):
    if value is None:
        return "not measured"
    return "**met**" if value else "**missed**"


def _mb(value):
    return "%.1f MiB" % (value / 2.0 ** 20) if value is not None else "-"


def _s(value, digits=2):
    return ("%." + str(digits) + "f s") % value if value is not None else "-"


def _rounds_text(result, count):
    """How a median ratio was taken: its pair count and, where recorded, its interquartile range."""
    spread = result.get("tuned_over_ceiling_spread")
    if not spread:
        return "median of %d paired rounds" % count
    text = "median of %d paired rounds, IQR %s-%s" % (spread["rounds"], _r(spread["q1"]), _r(spread["q3"]))
    return text if spread["rounds"] >= common.GOAL_ROUNDS else text + "; under %d: not judged" % common.GOAL_ROUNDS


def _r(value):
    return "%.3f" % value if value is not None else "-"


def _pct(value):
    return "%+.1f %%" % (100 * value) if value is not None else "-"


def rows(results_dir):
    out = []
    b1 = _load(results_dir, "b1")
    if b1:
        g = b1["goals"]
        out += [
            ("B1", "(a) baseline, no conntrack", "%.0f req/s" % b1["baseline_rps"], "", ""),
            ("B1", "(b) broken, max 1000", "%.0f req/s, %d of %d completed, %d drops, %d table-full lines" % (
                b1["broken_rps"], b1["broken_completed"], b1["parameters"]["broken_requests"], b1["broken_drops"],
                b1["broken_table_full_messages"]), "ab stops near 1000 (apr_pollset_poll timeout)",
             "reproduced" if g["broken_reproduced"] else "**not reproduced**"),
            ("B1", "(c) tuned by the playbook", "%s req/s, %s drops, max %s, buckets %s" % (
                "%.0f" % b1["tuned_rps"] if b1["tuned_rps"] else "-", b1["tuned_drops"],
                (b1.get("tuned_values") or {}).get("nf_conntrack_max"),
                (b1.get("tuned_values") or {}).get("nf_conntrack_buckets")), "0 drops", _yes(g["tuned_zero_drops"])),
            ("B1", "(d) ceiling, oversized table", "%.0f req/s" % b1["ceiling_rps"], "", ""),
            ("B1", "(c) / (d)", "%s (%s; aggregate %s)" % (
                _r(b1["tuned_over_ceiling"]), _rounds_text(b1, len(b1["tuned_rps_rounds"])),
                _r(b1.get("tuned_over_ceiling_aggregate"))),
             ">= 0.97", _yes(g["tuned_over_ceiling_at_least_0_97"])),
            ("B1", "(c) / (a)", "%s (aggregate %s); (d) / (a) %s" % (
                _r(b1["tuned_over_baseline"]), _r(b1.get("tuned_over_baseline_aggregate")),
                _r(b1["ceiling_over_baseline"])),
             "case study: 0.960", "reported"),
        ]
    b2 = _load(results_dir, "b2")
    if b2:
        for size, t in sorted(b2["tables"].items(), key=lambda kv: int(kv[0])):
            walk, summ = t["facts_walk"], t["facts_summary"]
            label = "%dk entries" % (int(size) // 1000)
            out += [
                ("B2", "%s: bare read `wc -l`" % label, _s(t["bare_read"]["seconds"]), "1.0 s at 1M (issue)", ""),
                ("B2", "%s: 3 pipelines together" % label, "%s (%s)" % (_s(t["pipelines_total_seconds"]), ", ".join(
                    "%s %s" % (k, _s(v["seconds"])) for k, v in sorted(t["pipelines"].items()))),
                 "3 x 2.9 s at 1M (issue)", ""),
                ("B2", "%s: facts walk" % label, "%s, peak RSS %s; %sx faster than the fastest pipeline, %sx the bare read" % (
                    _s(walk.get("seconds")), _mb(walk.get("peak_rss_bytes")), t.get("walk_speedup_vs_fastest_pipeline"),
                    t["walk_over_bare_read"]), ">= 2x the fastest pipeline, <= 100 MB, <= 1.5x the bare read",
                 ", ".join("%s" % _yes(v) for k, v in sorted(t["goals"].items()) if k.startswith("walk"))),
                ("B2", "%s: facts summary" % label, "%s in gather() (%s for the whole process)" % (
                    _s(summ.get("seconds"), 3), _s(summ.get("process_seconds"), 3)), "<= 50 ms",
                 _yes(t["goals"].get("summary_at_most_50_ms"))),
                ("B2", "%s: facts walk through ansible" % label, _s((t.get("facts_walk_ansible") or {}).get("seconds")),
                 "", ""),
            ]
    b3 = _load(results_dir, "b3")
    if b3:
        n = b3["parameters"]["hosts"]
        for key, label in (("tune", "tune playbook, all hosts at once, no gate"), ("anchor", "anchor: sysctl loop + modprobe"),
                           ("tune_defaults", "tune playbook, defaults (canary + 25 % batches, health gate)")):
            m = b3.get(key)
            if not m:
                continue
            out.append(("B3", "%d hosts: %s" % (n, label), "first %s (%s per host, changed %d), second %s (changed %d)%s" % (
                _s(m["first"]["seconds"], 1), _s(m["seconds_per_host_first"]), m["first"]["changed"],
                _s(m["second"]["seconds"], 1), m["second"]["changed"],
                "" if not m["first"]["failed"] and not m["first"]["exit_code"] else ", **failed**"), "", ""))
        g = b3["goals"]
        speedup = "%sx (second run %sx)" % (b3["speedup_first_run"], b3["speedup_second_run"])
        verdict = "%s, %s" % (_yes(g["tune_3x_faster_than_anchor"]), _yes(g["tune_second_run_changed_0"]))
        out.append(("B3", "anchor / tune (first run)", speedup, ">= 3x, second run changed=0", verdict))
    b4 = _load(results_dir, "b4")
    if b4:
        for size, r in sorted(b4["memory"]["sizes"].items(), key=lambda kv: int(kv[0])):
            out.append(("B4", "memory, %dk entries" % (int(size) // 1000),
                        "predicted %s, slab +%s (%s), Slab: +%s (%s)" % (
                            _mb(r["predicted"].get("entries_bytes")), _mb(r["slab_growth_bytes"]),
                            _pct(r["error_vs_slab"]), _mb(r["meminfo_slab_growth_bytes"]), _pct(r["error_vs_meminfo"])),
                        "within 10 %",
                        "%s / %s" % (_yes(r["within_10_percent_of_slab"]), _yes(r["within_10_percent_of_meminfo"]))))
        li = b4["little"]
        out.append(("B4", "Little's law, %.0f conn/s, time_wait %d s" % (
            li["pacer"]["achieved_rate_per_second"], li["time_wait_seconds"]),
            "predicted %s, live entries %s (%s), kernel count %s (%s)" % (
                li["predicted"].get("entries"), li["observed_steady_entries"], _pct(li["error"]),
                li["observed_steady_kernel_count"], _pct(li["error_vs_kernel_count"])),
            "within 15 %", "%s (live) / %s (count)" % (_yes(li["within_15_percent"]),
                                                       _yes(li["kernel_count_within_15_percent"]))))
    out.extend(_b5_rows(_load(results_dir, "b5")))
    rounds = _load(results_dir, "b5_rounds")
    if rounds:
        out.append(("B5", "tuned / ceiling (wrk), `b5-rounds`", "%s (%s)" % (
            _r(rounds["tuned_over_ceiling"]), _rounds_text(rounds, len(rounds["tuned_over_ceiling_rounds"]))), ">= 0.97",
            _yes(rounds["goals"]["tuned_over_ceiling_at_least_0_97"])))
    return out


def _b5_rows(b5):
    if not b5:
        return []
    out = []
    g = b5["goals"]
    goal = {"default": ("drops > 0", g["default_reproduces_the_failure"]),
            "tuned": ("0 drops, 0 table-full", g["observed_tune_zero_drops_for_a_window"]),
            "declared": ("0 drops, 0 table-full", g["declared_zero_drops_for_a_window"]), "ceiling": ("", None)}
    for phase in ("default", "tuned", "declared", "ceiling"):
        ph = b5["phases"].get(phase)
        if not ph:
            continue
        out.append(("B5", "%s: %s offered/s, max %s" % (phase, ph["offered_per_second"], ph["max"]),
                    "%s drops (%s/s), %s table-full lines, failure rate %s, steady count %s%s" % (
                        ph["drops"], ph["drops_per_second"], ph["table_full_lines"], ph["failure_rate"],
                        ph["steady_state_count"], ", full after %s s" % ph["first_full_after_seconds"]
                        if ph["first_full_after_seconds"] is not None else ""),
                    goal[phase][0], _yes(goal[phase][1]) if goal[phase][0] else ""))
    for key, label in (("observed_sizing", "observed"), ("declared_sizing", "declared")):
        z = b5[key]
        mem = z.get("memory") or {}
        out.append(("B5", "%s: recommended max vs steady count" % label,
                    "%s vs %s (x%s); reserves %s at max, slab grew %s" % (
                        z["recommended_max"], z["steady_state_count"], z["max_over_steady_state"],
                        _mb(mem.get("reserved_at_max_bytes")), _mb(mem.get("slab_growth_bytes"))),
                    "<= 2x", _yes(g["%s_max_at_most_2x_steady_state" % label])))
    out.append(("B5", "tune runs from observation", b5["tune_runs_observed"], "<= 2", _yes(g["observed_tune_runs_at_most_2"])))
    out.append(("B5", "tuned / ceiling (wrk)", "%s (%s)" % (
        _r(b5["tuned_over_ceiling"]), _rounds_text(b5, len(b5["tuned_over_ceiling_rounds"]))), ">= 0.97",
        _yes(g["tuned_over_ceiling_at_least_0_97"])))
    return out


def table(results_dir):
    lines = ["| bench | what | measured | baseline / goal | goal |", "| --- | --- | --- | --- | --- |"]
    for row in rows(results_dir):
        lines.append("| %s |" % " | ".join(str(c) for c in row))
    machine = None
    for name in ("b1", "b2", "b3", "b4", "b5"):
        r = _load(results_dir, name)
        if r:
            machine = r["machine"]
            lines.append("")
            m = r["machine"]
            if "loadavg_at_end" in m:
                start = m.get("loadavg_at_start") or "not recorded"
                load = "load average at start %s, at the end %s" % (start, m["loadavg_at_end"])
            else:  # results written before the start was recorded: the figure is the end's
                load = "load average when written %s" % (m.get("loadavg_at_start"),)
            lines.append("`%s.json`: finished %s, %s." % (name, r["finished_at"], load))
    if machine:
        lines.insert(0, "Machine: %d cores (%s), %.1f GiB RAM, kernel %s, Python %s.\n" % (
            machine["cores"], machine["cpu_model"], machine["mem_total_bytes"] / 2.0 ** 30, machine["kernel"],
            machine["python"]))
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else _paths.RESULTS))
