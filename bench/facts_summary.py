"""Time netfilter.conntrack.facts summary mode (no table walk) at a large table.

    python bench/facts_summary.py [ENTRIES]      (root; from the test venv)

Fills a test namespace with ENTRIES UDP entries (support.traffic.udp_fill) under a
raised global max, then times, inside that namespace:
  - the facts gathering in summary mode (in-process, 20 runs),
  - the same with the table walk (and the process's peak RSS), and
    `wc -l < /proc/net/nf_conntrack` for scale,
  - one real `ansible -m netfilter.conntrack.facts` run (wall clock, mostly ansible itself).
Holds the kernel lock and restores the global max whatever happens.
"""
import importlib
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
# conftest makes ansible_collections.netfilter.conntrack importable from a plain checkout.
importlib.import_module("conftest")
COLLECTIONS_ROOT = sys.path[0]  # where conftest put the ansible_collections tree
from support import traffic  # noqa: E402
from support.kernel import Netns, exclusive_kernel, saved_sysctls, write_value  # noqa: E402

INNER = r'''
import json, resource, statistics, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, reading
def timed(n, **kw):
    out = []
    for _i in range(n):
        t = time.perf_counter(); facts, _w = gathering.FactsReader(reading.Reader(), gathering.ReadOptions(**kw)).gather(); out.append(time.perf_counter() - t)
    return facts, out
facts, summary = timed(20)
core_facts, core = timed(20, kernel_log=False, environment=False)
walk_facts, walk = timed(3, table=True)
wc = []
for _i in range(3):
    t = time.perf_counter()
    subprocess.run(["sh", "-c", "wc -l < /proc/net/nf_conntrack"], stdout=subprocess.DEVNULL, check=True)
    wc.append(time.perf_counter() - t)
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"peak_rss_mb": round(rss_mb, 1), "count": facts["usage"]["count"], "summary_s": summary, "core_s": core, "walk_s": walk,
                  "walk_entries": walk_facts["table"]["entries_read"], "wc_s": wc}))
'''


def main():
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else 250000
    collections_root = COLLECTIONS_ROOT
    with exclusive_kernel(), saved_sysctls():
        write_value("nf_conntrack_max", max(entries * 2, 262144))
        with Netns(ruleset=traffic.UDP_FILL_RULESET) as ns:
            t = time.perf_counter()
            traffic.udp_fill(ns, entries, udp_timeout=3600)
            fill_s = time.perf_counter() - t
            res = ns.exec([sys.executable, "-c", INNER, collections_root])
            data = json.loads(res.stdout)
            t = time.perf_counter()
            mod = ns.exec([os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
                           "-i", "localhost,", "-m", "netfilter.conntrack.facts"], check=False)
            data["ansible_run_s"] = time.perf_counter() - t
            data["ansible_ok"] = "SUCCESS" in mod.stdout
            data["fill_s"] = fill_s
            with open("/proc/loadavg") as f:
                data["loadavg_1min"] = float(f.read().split()[0])  # other test runs share this machine
    for key in ("summary_s", "core_s", "walk_s", "wc_s"):
        values = data[key]
        data[key] = {"median_ms": round(statistics.median(values) * 1000, 2), "max_ms": round(max(values) * 1000, 2)}
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
