"""Smoke version of bench/facts_summary.py: summary mode does not grow with the table."""
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
importlib.import_module("conftest")
COLLECTIONS_ROOT = sys.path[0]

from support import traffic  # noqa: E402
from support.kernel import Netns, exclusive_kernel, saved_sysctls, write_value  # noqa: E402

PROBE = r'''
import statistics, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, reading
runs = []
for _i in range(15):
    t = time.perf_counter(); gathering.FactsReader(reading.Reader()).gather(); runs.append(time.perf_counter() - t)
print(statistics.median(runs))
'''


def median_summary_seconds(ns):
    out = ns.exec([sys.executable, "-c", PROBE, COLLECTIONS_ROOT]).stdout
    return float(out.split()[-1])


def test_summary_mode_stays_well_under_100_ms_at_100k_entries():
    with exclusive_kernel(), saved_sysctls():
        write_value("nf_conntrack_max", 262144)
        with Netns(ruleset=traffic.UDP_FILL_RULESET) as ns:
            small = median_summary_seconds(ns)
            traffic.udp_fill(ns, 100000, udp_timeout=600)
            assert ns.count() > 90000
            big = median_summary_seconds(ns)
    assert big < 0.1, "summary mode took %.1f ms at 100k entries" % (big * 1000)
    # Nothing in it walks the table: 100k entries must not cost what a walk costs (~100+ ms).
    assert big < small + 0.05, (small, big)
