"""Command line of the benchmarks: ``bench/run [--smoke] [--results-dir DIR] all|b1|b2|b3|b4|b5|b6 ...``."""
import argparse
import importlib
import sys
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common

# The small versions: seconds each, so that the test suite keeps the code honest.
SMOKE = {
    "b1": {"requests": 3000, "concurrency": 500, "rounds": 1, "broken_requests": 3000},
    "b2": {"sizes": (10000,), "repeats": 1},
    "b3": {"hosts": 1, "key_count": 2, "with_defaults": False},
    "b3-scale": {"hosts": (1, 2), "key_count": 2},
    "b4": {"sizes": (10000,), "rate_per_second": 100, "time_wait_seconds": 3, "periods": 3},
    # The table is made small (global max, saved and restored) and time_wait short (the
    # gateway namespace's own copy), so that every phase of B5 fits in seconds.
    "b5": {"clients": 4, "rate_per_second": 600, "time_wait_seconds": 5, "small_max": 2048, "rounds": 2,
           "round_seconds": 3, "wrk_connections": 64, "declared_lead_seconds": 2},
    "b6": {"sizes": (20,), "filled": 3, "repeats": 1},
    "b7": {"sizes": (10, 20), "per_host_sizes": (10,), "redis_sizes": (10,)},
    "b8": {"sizes": (20, 40), "fixed_serial": 10},
}


# name -> (module, function): imported on demand, so one benchmark's imports do not slow another.
RUNNERS = {
    "b1": ("b1_seed", "run"), "b2": ("b2_facts", "run"), "b3": ("b3_fleet", "run"), "b3-scale": ("b3_fleet", "scale"),
    "b4": ("b4_model", "run"), "b5": ("b5_sustained", "run"), "b5-default": ("b5_sustained", "default_phase"),
    "b5-rounds": ("b5_sustained", "rounds_phase"),
    "b6": ("b6_namespaces", "run"),
    "b7": ("b7_fleet_audit", "run"),
    "b8": ("b8_rollout_scale", "run"),
}


def runner(name):
    if name not in RUNNERS:
        raise SystemExit("unknown benchmark %r (known: %s all)" % (name, " ".join(sorted(RUNNERS))))
    module, function = RUNNERS[name]
    return getattr(importlib.import_module(module), function)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="+", help="b1 b2 b3 b3-scale b4 b5 b6 b7 b8, or all; or report (the figures table)")
    parser.add_argument("--smoke", action="store_true", help="the small versions")
    parser.add_argument("--results-dir", help="where the JSON summaries go (default bench/results)")
    args = parser.parse_args(argv)
    if args.names == ["report"]:
        import report
        print(report.table(args.results_dir or common.RESULTS))
        return 0
    names = ["b1", "b2", "b3", "b4", "b5", "b6"] if "all" in args.names else args.names
    failed = []
    for name in names:
        kwargs = dict(SMOKE.get(name, {})) if args.smoke else {}
        kwargs["results_dir"] = args.results_dir
        start = time.monotonic()
        common.log("%s starts%s" % (name, " (smoke)" if args.smoke else ""))
        common.mark_start()
        try:
            result = runner(name)(**kwargs)
        except Exception as exc:  # one benchmark's failure must not hide the others' figures
            common.log("%s FAILED: %r" % (name, exc))
            failed.append(name)
            continue
        if result.get("errors"):
            # Figures it could not measure (a tool that did not run, a client that never connected).
            common.log("%s FAILED: not measured: %s" % (name, "; ".join(result["errors"])))
            failed.append(name)
            continue
        common.log("%s done in %.0f s; goals: %s" % (name, time.monotonic() - start, result.get("goals")))
    if failed:
        common.log("failed: %s" % " ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
