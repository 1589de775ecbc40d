"""What the benchmarks share: timing with peak RSS, machine facts, result files, statistics."""
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import _paths

RESULTS = _paths.RESULTS
GNU_TIME = "/usr/bin/time"  # Debian package `time`
ROOT = _paths.ROOT


class MeasurementError(RuntimeError):
    """A tool that did not run, or ran and left nothing to measure: the reason, never a 0."""


def measure(cmd, env=None, stdin=None, timeout_seconds=1800):
    """Run cmd (a list) and return wall seconds, the peak RSS of its biggest process and its output.

    The peak RSS comes from GNU time, not from our own wait4(): a child forked from this
    Python inherits its high-water mark across exec, so wait4() would never report less
    than our own RSS. time's children start from time's few hundred kB, and its %M is the
    largest RSS of any process it waited for (every stage of an ``sh -c 'a | b'``).
    """
    fd, rss_file = tempfile.mkstemp(prefix="nc-bench-time-")
    os.close(fd)
    try:
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-q", "-f", "%M %U %S", "-o", rss_file] + list(cmd),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin, env=env,
                              timeout=timeout_seconds, check=False)
        wall = time.perf_counter() - start
        with open(rss_file) as f:
            fields = f.read().split()
    finally:
        os.unlink(rss_file)
    if len(fields) < 3:
        raise MeasurementError("GNU time wrote no figures for %s (exit %s): %s" % (
            cmd[0], proc.returncode, proc.stderr.decode(errors="replace").strip()[-300:]))
    rss_kb, user, system = fields[-3:]
    return {"seconds": round(wall, 4), "peak_rss_bytes": int(rss_kb) * 1024,
            "user_seconds": float(user), "system_seconds": float(system),
            "exit_code": proc.returncode, "stdout": proc.stdout.decode(errors="replace"),
            "stderr": proc.stderr.decode(errors="replace")}


_STARTED_LOAD = None


def mark_start():
    """The load average as a benchmark starts (bench.py calls it); machine() reports it beside the end's."""
    global _STARTED_LOAD
    _STARTED_LOAD = [round(x, 2) for x in os.getloadavg()]


def machine():
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    cpu_model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cpu_model": cpu_model, "kernel": platform.release(),
            "mem_total_bytes": mem_kb * 1024, "python": platform.python_version(),
            "loadavg_at_start": _STARTED_LOAD, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# A goal judged on paired rounds needs this many pairs: one pair's ratio swings by a fifth on
# shared cores, the median of 11 alternated pairs by a few percent.
GOAL_ROUNDS = 11


def spread(values, digits=4):
    """The median of values with its interquartile range and count (None when there is none)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return {"median": None, "q1": None, "q3": None, "iqr": None, "rounds": 0}
    q1, q3 = (statistics.quantiles(values, n=4, method="inclusive")[0::2] if len(values) > 1
              else (values[0], values[0]))
    return {"median": round(statistics.median(values), digits), "q1": round(q1, digits), "q3": round(q3, digits),
            "iqr": round(q3 - q1, digits), "rounds": len(values)}


def judged(summary, at_least):
    """A goal on a median: None (not judged) with fewer than GOAL_ROUNDS rounds."""
    if summary["median"] is None or summary["rounds"] < GOAL_ROUNDS:
        return None
    return summary["median"] >= at_least


def ratio(a, b, digits=3):
    if a is None or not b:
        return None
    return round(float(a) / float(b), digits)


def write_result(name, data, results_dir=None):
    """Write bench/results/<name>.json (or into results_dir) and return its path."""
    results_dir = results_dir or RESULTS
    os.makedirs(results_dir, exist_ok=True)
    data = dict(data)
    data.setdefault("benchmark", name)
    data.setdefault("finished_at", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    data.setdefault("machine", machine())
    path = os.path.join(results_dir, "%s.json" % name)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def python_in_venv():
    return sys.executable


def ansible_env():
    """Environment for ansible runs from the bench: this checkout and the bench-only collections."""
    return {"ANSIBLE_COLLECTIONS_PATH": collections_path() + ":" + test_collections()}


_TEST_COLLECTIONS = []


def test_collections():
    """ansible.posix, community.general, containers.podman from the ansible wheel (scripts/test-collections)."""
    if not _TEST_COLLECTIONS:
        out = subprocess.run([os.path.join(ROOT, "scripts", "test-collections")], stdout=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout
        _TEST_COLLECTIONS.append(out.strip().splitlines()[-1])
    return _TEST_COLLECTIONS[0]


def collections_path():
    """The ANSIBLE_COLLECTIONS_PATH that holds this checkout as netfilter.conntrack."""
    path = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if path:
        return path.split(":")[0]
    # tests/conftest.py linked the checkout under /tmp/netfilter.conntrack-<hash>/linked
    for p in sys.path:
        if os.path.isdir(os.path.join(p, "ansible_collections", "netfilter", "conntrack")):
            return p
    raise RuntimeError("netfilter.conntrack is not on any collections path")
