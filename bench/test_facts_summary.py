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
for _i in range(int(sys.argv[3])):
    t = time.perf_counter()
    gathering.FactsReader(reading.Reader(), gathering.ReadOptions(table=sys.argv[2] == "walk")).gather()
    runs.append(time.perf_counter() - t)
print(statistics.median(runs))
'''


def median_seconds(ns, mode="summary", runs=15):
    out = ns.exec([sys.executable, "-c", PROBE, COLLECTIONS_ROOT, mode, str(runs)]).stdout
    return float(out.split()[-1])


def test_summary_mode_does_not_grow_with_the_table_as_a_walk_does():
    with exclusive_kernel(), saved_sysctls():
        write_value("nf_conntrack_max", 262144)
        with Netns(ruleset=traffic.UDP_FILL_RULESET) as ns:
            small = median_seconds(ns)
            traffic.udp_fill(ns, 100000, udp_timeout=600)
            assert ns.count() > 90000
            big = median_seconds(ns)
            walk = median_seconds(ns, "walk", 3)
    # Judged against a walk of the same table at the same moment, not against a wall-clock
    # bound that a busy shared machine can break: nothing in summary mode reads the entries.
    assert big < walk / 3, "summary %.1f ms, walk %.1f ms at 100k entries" % (big * 1000, walk * 1000)
    assert big < max(2 * small, small + 0.05), (small, big)
