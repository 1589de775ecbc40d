"""B1: the case study's seed replay, in four phases in one run.

(a) baseline  client -> backend through the gateway, no ruleset there: conntrack is not active
(b) broken    through the DNAT with the global nf_conntrack_max at 1000
(c) tuned     after `ansible-playbook netfilter.conntrack.tune` against localhost, with the
              values the recommendation derives from the facts and the declared rate
(d) ceiling   through the DNAT with a generously oversized table

ab runs with a new connection per request, concurrency 500 and `-s 2`. Phases (a), (c) and
(d) are measured in interleaved rounds so that noise from the shared machine hits all three
alike; the figures are medians over rounds and the goals are ratios within this run, judged
on the median of at least common.GOAL_ROUNDS rounds (with its interquartile range).
"""
import json
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common
import tuning
from lab import KernelLogCounter, Lab, run_ab, stat_delta
from support.kernel import exclusive_kernel, read_int, saved_sysctls, write_value

CASE_STUDY_TUNED_OVER_BASELINE = 0.960
BROKEN_MAX = 1000
CEILING = {"nf_conntrack_max": 4194304, "nf_conntrack_buckets": 1048576}
SETTLE_SECONDS = 3


def _set_globals(values):
    # Buckets first: the hash is resized while the table is still small.
    for key in ("nf_conntrack_buckets", "nf_conntrack_max"):
        if key in values:
            write_value(key, values[key])


def _phase(lab, name, url, requests, concurrency, timeout_seconds):
    lab.flush_table()
    stats_before = lab.gateway_stats()
    log_counter = KernelLogCounter().start()
    res = run_ab(lab.client, url, requests, concurrency, timeout_seconds)
    res["phase"] = name
    res["gateway_count_after"] = lab.gateway_count()
    res["stat_delta"] = stat_delta(stats_before, lab.gateway_stats())
    res["drops"] = res["stat_delta"]["drop"]
    res["insert_failed"] = res["stat_delta"]["insert_failed"]
    res["table_full_messages"] = log_counter.count()
    res["global_max"] = read_int("nf_conntrack_max")
    res["global_buckets"] = read_int("nf_conntrack_buckets")
    common.log("%-8s %8.0f req/s  completed=%d failed=%d connect=%sms drops=%d table_full=%d%s" % (
        name, res["requests_per_second"], res["complete_requests"], res["failed_requests"],
        res.get("connect_mean_ms"), res["drops"], res["table_full_messages"],
        "  (ab: %s)" % res["error"] if res.get("error") else ""))
    return res


def _summary(rounds, key):
    return common.median([r[key] for r in rounds if r.get(key) is not None])


def run(requests=15000, concurrency=500, rounds=common.GOAL_ROUNDS, broken_requests=20000, timeout_seconds=2,
        tune=True, profile="nat_gateway", results_dir=None, name="b1"):
    result = {"parameters": {"requests": requests, "concurrency": concurrency, "rounds": rounds,
                             "broken_requests": broken_requests, "ab_timeout_seconds": timeout_seconds,
                             "broken_max": BROKEN_MAX, "ceiling": CEILING, "profile": profile},
              "case_study_tuned_over_baseline": CASE_STUDY_TUNED_OVER_BASELINE}
    phases = {"baseline": [], "broken": [], "tuned": [], "ceiling": []}
    with exclusive_kernel(), saved_sysctls(*tuning.writable_keys()) as saved, tuning.FileGuard() as files, Lab() as lab:
        result["machine_values_before"] = {k: int(v) for k, v in saved.items() if k in tuning.GLOBALS}
        try:
            # Warm-up: the first connections into fresh namespaces are slower.
            run_ab(lab.client, lab.direct_url, min(requests, 5000), concurrency, timeout_seconds)

            lab.no_ruleset()
            phases["baseline"].append(_phase(lab, "baseline", lab.direct_url, requests, concurrency, timeout_seconds))
            baseline_rps = phases["baseline"][0]["requests_per_second"]

            lab.dnat()
            write_value("nf_conntrack_max", BROKEN_MAX)
            phases["broken"].append(_phase(lab, "broken", lab.nat_url, broken_requests, concurrency, timeout_seconds))

            tuned_values = None
            if tune:
                # From the broken state, as an operator would: the declared rate is what the
                # backend served without NAT, the most the gateway can ever see here.
                tuned = tuning.tune_localhost(tcp_new_per_second=int(round(baseline_rps)), profile=profile,
                                              gateway=lab.gateway)
                result["tune"] = tuned
                tuned_values = tuned["applied_globals"]
                # Let the controller's processes finish exiting before timing anything.
                time.sleep(SETTLE_SECONDS)
            order = ["baseline", "tuned", "ceiling"] if tuned_values else ["baseline", "ceiling"]
            try:
                _rounds(lab, phases, order, tuned_values, rounds, requests, concurrency, timeout_seconds)
            except common.MeasurementError as exc:
                # The reason goes into the result; the ratios cover the rounds measured before it.
                common.log("rounds stopped: %s" % exc)
                result["errors"] = ["round %d not measured: %s" % (len(phases["ceiling"]) + 1, exc)]
        finally:
            lab.no_ruleset()
            if tune:
                result["cleanup"] = tuning.rollback_localhost()
    _summarize(result, phases)
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s" % path)
    return result


def _rounds(lab, phases, order, tuned_values, rounds, requests, concurrency, timeout_seconds):
    """Every phase once per round, the order reversed every other round (ABBA)."""
    for i in range(rounds):
        # Alternate the order so that neither phase always follows the other.
        for phase in (order if i % 2 == 0 else list(reversed(order))):
            if phase == "baseline":
                if i == 0:
                    continue  # measured before the broken phase
                lab.no_ruleset()
                phases["baseline"].append(_phase(lab, "baseline", lab.direct_url, requests, concurrency,
                                                 timeout_seconds))
                continue
            lab.dnat()
            # Round 1's tuned phase runs right after the playbook; later rounds put the same values back.
            _set_globals(tuned_values if phase == "tuned" else CEILING)
            phases[phase].append(_phase(lab, phase, lab.nat_url, requests, concurrency, timeout_seconds))


def _summarize(result, phases):
    result["machine_values_after"] = {k: read_int(k) for k in tuning.GLOBALS}
    result["phases"] = phases
    broken = phases["broken"][0]
    result.update({
        "baseline_rps": _summary(phases["baseline"], "requests_per_second"),
        "broken_rps": broken["requests_per_second"],
        "broken_completed": broken["complete_requests"],
        "broken_failed": broken["failed_requests"],
        "broken_drops": broken["drops"],
        "broken_timed_out": broken["timed_out"],
        "broken_table_full_messages": broken["table_full_messages"],
        "tuned_rps": _summary(phases["tuned"], "requests_per_second"),
        "tuned_drops": sum(r["drops"] for r in phases["tuned"]) if phases["tuned"] else None,
        "tuned_insert_failed": sum(r["insert_failed"] for r in phases["tuned"]) if phases["tuned"] else None,
        "tuned_failed": sum(r["failed_requests"] for r in phases["tuned"]) if phases["tuned"] else None,
        "tuned_values": (result.get("tune") or {}).get("applied"),
        "ceiling_rps": _summary(phases["ceiling"], "requests_per_second"),
        "ceiling_drops": sum(r["drops"] for r in phases["ceiling"]),
    })
    for phase in ("baseline", "tuned", "ceiling"):
        result["%s_connect_mean_ms" % phase] = _summary(phases[phase], "connect_mean_ms")
        result["%s_rps_rounds" % phase] = [r["requests_per_second"] for r in phases[phase]]
    # Per-round ratios first (same moment, same noise), then their median, IQR and count.
    pairs = list(zip(phases["tuned"], phases["ceiling"], phases["baseline"]))
    result["tuned_over_ceiling_spread"] = common.spread(
        [common.ratio(t["requests_per_second"], c["requests_per_second"], 4) for t, c, dummy in pairs])
    result["tuned_over_ceiling"] = result["tuned_over_ceiling_spread"]["median"]
    result["tuned_over_baseline_spread"] = common.spread(
        [common.ratio(t["requests_per_second"], b["requests_per_second"], 4) for t, dummy, b in pairs])
    result["tuned_over_baseline"] = result["tuned_over_baseline_spread"]["median"]
    # Throughput over all rounds of a phase: total requests / total time.
    for phase in ("baseline", "tuned", "ceiling"):
        seconds = sum(r.get("time_taken_seconds") or 0 for r in phases[phase])
        result["%s_aggregate_rps" % phase] = round(sum(r["complete_requests"] for r in phases[phase]) / seconds, 1) \
            if seconds else None
    result["tuned_over_ceiling_aggregate"] = common.ratio(result["tuned_aggregate_rps"], result["ceiling_aggregate_rps"], 4)
    result["tuned_over_baseline_aggregate"] = common.ratio(result["tuned_aggregate_rps"],
                                                           result["baseline_aggregate_rps"], 4)
    result["ceiling_over_baseline"] = common.median(
        [common.ratio(c["requests_per_second"], b["requests_per_second"], 4)
         for c, b in zip(phases["ceiling"], phases["baseline"])])
    result["goals"] = {
        # On the median of at least common.GOAL_ROUNDS alternated rounds; None below that.
        "tuned_over_ceiling_at_least_0_97": common.judged(result["tuned_over_ceiling_spread"], 0.97),
        "tuned_zero_drops": result["tuned_drops"] == 0 if result["tuned_drops"] is not None else None,
        "broken_reproduced": bool(broken["aborted"] or broken["failed_requests"]) and broken["drops"] > 0,
        "machine_values_restored": result["machine_values_after"] == result["machine_values_before"],
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
