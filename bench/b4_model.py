"""B4: is the recommend model right on this kernel?

Memory: the bytes the recommend sizing predicts for 100k and 1M entries, against the
measured growth of the nf_conntrack slab (/proc/slabinfo) and of `Slab:` in /proc/meminfo
while a namespace's table grows from empty to that size.

Little's law: constant-rate short TCP connections through the lab's DNAT for several
time_wait periods, time_wait lowered in the gateway namespace. The model's steady-state
entries (rate x (duration + time_wait)) against the count the gateway holds.
"""
import json
import os
import sys
import threading
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common
import model
import table_lab
from lab import GATEWAY_CLIENT_SIDE, PORT, Lab
from support.kernel import exclusive_kernel

PACER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pacer.py")
MEMORY_TOLERANCE = 0.10
LITTLE_TOLERANCE = 0.15


def slab_bytes(name="nf_conntrack"):
    """Bytes held by the slab cache `name` (num_slabs x pages per slab x page size), and its objects."""
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/slabinfo") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == name:
                # name active_objs num_objs objsize objperslab pagesperslab : tunables ... : slabdata active num shared
                num_objs, objsize, pages_per_slab = int(fields[2]), int(fields[3]), int(fields[5])
                num_slabs = int(fields[fields.index("slabdata") + 2])
                return {"bytes": num_slabs * pages_per_slab * page, "objects": num_objs, "object_size": objsize,
                        "active_objects": int(fields[1])}
    return None


def meminfo_slab_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1]) * 1024
    return None


def _within(measured, predicted, tolerance):
    if not measured or predicted is None:
        return None
    return abs(predicted - measured) / float(measured) <= tolerance


def memory(sizes=(100000, 1000000)):
    out = {"sizes": {}, "tolerance": MEMORY_TOLERANCE}
    with table_lab.table_namespace(int(max(sizes) * 1.1) + 1024) as ns:
        time.sleep(0.5)
        slab0, meminfo0, count0 = slab_bytes(), meminfo_slab_bytes(), table_lab.count(ns)
        for size in sorted(sizes):
            have = table_lab.fill_to(ns, size)[0]
            time.sleep(0.5)
            slab1, meminfo1 = slab_bytes(), meminfo_slab_bytes()
            entries = have - count0
            predicted = model.predicted_memory(ns, entries)
            slab_growth = slab1["bytes"] - slab0["bytes"]
            meminfo_growth = meminfo1 - meminfo0
            row = {"entries": entries, "predicted": predicted,
                   "slab_growth_bytes": slab_growth, "meminfo_slab_growth_bytes": meminfo_growth,
                   "slab_objects_growth": slab1["objects"] - slab0["objects"],
                   "slab_object_size": slab1["object_size"]}
            p = predicted.get("entries_bytes")
            row["error_vs_slab"] = common.ratio(p - slab_growth, slab_growth, 4) if p is not None else None
            row["error_vs_meminfo"] = common.ratio(p - meminfo_growth, meminfo_growth, 4) if p is not None else None
            row["within_10_percent_of_slab"] = _within(slab_growth, p, MEMORY_TOLERANCE)
            row["within_10_percent_of_meminfo"] = _within(meminfo_growth, p, MEMORY_TOLERANCE)
            out["sizes"][str(size)] = row
            common.log("memory %d entries: predicted %s B, slab +%d B, Slab: +%d B" % (
                entries, p, slab_growth, meminfo_growth))
    return out


def _sample_counts(ns, stop, samples, errors, interval=0.5):
    # (seconds, kernel count, live entries). The count still includes entries that have
    # expired but that the kernel's GC worker has not reaped yet; the /proc listing skips
    # those (and, unlike a netlink dump, does not reap them itself).
    t0 = time.monotonic()
    while not stop.is_set():
        try:
            res = ns.exec(["sh", "-c", "cat /proc/sys/net/netfilter/nf_conntrack_count; wc -l < /proc/net/nf_conntrack"])
            count, live = (int(x) for x in res.stdout.split())
        except (RuntimeError, ValueError) as exc:
            errors.append(repr(exc)[-300:])  # a thread's exception would vanish; the window says why
        else:
            samples.append((round(time.monotonic() - t0, 2), count, live))
        stop.wait(interval)


def _pacer_result(proc):
    """The pacer's JSON line; MeasurementError when it printed none or completed no connection."""
    lines = proc.stdout.strip().splitlines()
    try:
        pacer = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise common.MeasurementError("pacer printed no result (exit %s): %s" % (
            proc.returncode, (proc.stderr or proc.stdout or "no output").strip()[-300:]))
    if not pacer.get("completed"):
        raise common.MeasurementError("pacer completed no connection of %s started" % pacer.get("started"))
    return pacer


def little(rate_per_second=200, time_wait_seconds=30, periods=3):
    seconds = time_wait_seconds * periods
    out = {"rate_per_second": rate_per_second, "time_wait_seconds": time_wait_seconds, "periods": periods,
           "run_seconds": seconds, "tolerance": LITTLE_TOLERANCE}
    with Lab(nginx_workers=1) as lab:
        lab.dnat()
        lab.flush_table()
        lab.gateway.sysctl("nf_conntrack_tcp_timeout_time_wait", time_wait_seconds)
        samples, sample_errors, stop = [], [], threading.Event()
        sampler = threading.Thread(target=_sample_counts, args=(lab.gateway, stop, samples, sample_errors))
        sampler.start()
        try:
            proc = lab.client.exec([sys.executable, PACER, GATEWAY_CLIENT_SIDE, str(PORT), str(rate_per_second),
                                    str(seconds)], timeout=seconds + 60)
        finally:
            stop.set()
            sampler.join()
        pacer = _pacer_result(proc)
        out["pacer"] = pacer
        out["gateway_timeouts"] = {k: int(lab.gateway.sysctl(k)) for k in (
            "nf_conntrack_tcp_timeout_time_wait", "nf_conntrack_tcp_timeout_fin_wait",
            "nf_conntrack_tcp_timeout_last_ack", "nf_conntrack_tcp_timeout_close_wait")}
        # The model gets the rate the pacer achieved and the mean duration it measured.
        rate = pacer["achieved_rate_per_second"]
        duration = pacer["mean_duration_seconds"] or 0.0
        predicted = model.predicted_steady_entries(lab.gateway, rate, duration, time_wait_seconds)
    # Steady state: once the first connections have left TIME_WAIT, plus a margin for GC.
    settle = time_wait_seconds + 5
    steady = [(c, live) for t, c, live in samples if settle <= t <= seconds]
    out["samples"] = samples
    if not steady:
        raise common.MeasurementError("no count sampled in the steady state (%d samples; errors: %s)" % (
            len(samples), sample_errors[-1:] or "none"))
    live = [x[1] for x in steady]
    counts = [x[0] for x in steady]
    out["observed_steady_entries"] = round(sum(live) / float(len(live)), 1) if live else None
    out["observed_steady_min_max"] = [min(live), max(live)] if live else None
    out["observed_steady_kernel_count"] = round(sum(counts) / float(len(counts)), 1) if counts else None
    out["observed_kernel_count_min_max"] = [min(counts), max(counts)] if counts else None
    out["predicted"] = predicted
    p = predicted.get("entries")
    out["error"] = common.ratio(p - out["observed_steady_entries"], out["observed_steady_entries"], 4) \
        if p is not None and out["observed_steady_entries"] else None
    out["within_15_percent"] = _within(out["observed_steady_entries"], p, LITTLE_TOLERANCE)
    out["error_vs_kernel_count"] = common.ratio(p - out["observed_steady_kernel_count"],
                                                out["observed_steady_kernel_count"], 4) \
        if p is not None and out["observed_steady_kernel_count"] else None
    out["kernel_count_within_15_percent"] = _within(out["observed_steady_kernel_count"], p, LITTLE_TOLERANCE)
    common.log("little: rate %.1f/s, tw %d s: predicted %s, live %s, kernel count %s" % (
        rate, time_wait_seconds, p, out["observed_steady_entries"], out["observed_steady_kernel_count"]))
    return out


def run(sizes=(100000, 1000000), rate_per_second=200, time_wait_seconds=30, periods=3,
        results_dir=None, name="b4"):
    result = {"parameters": {"sizes": list(sizes), "rate_per_second": rate_per_second,
                             "time_wait_seconds": time_wait_seconds, "periods": periods}}
    with exclusive_kernel():
        result["memory"] = memory(sizes)
        result["little"] = little(rate_per_second, time_wait_seconds, periods)
    largest = result["memory"]["sizes"][str(max(sizes))]
    result["goals"] = {
        "memory_within_10_percent_of_slab": all(r["within_10_percent_of_slab"]
                                                for r in result["memory"]["sizes"].values()),
        "memory_within_10_percent_of_meminfo": all(r["within_10_percent_of_meminfo"]
                                                   for r in result["memory"]["sizes"].values()),
        "little_within_15_percent": result["little"]["within_15_percent"],
    }
    result["memory_error_at_largest"] = largest["error_vs_slab"]
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s" % path)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
