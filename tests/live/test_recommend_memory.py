"""The recommend module's memory model against what the live kernel really allocates.

A namespace is filled with a known number of UDP entries; the predicted bytes must be
within 10% of the growth of the nf_conntrack slab and of ``Slab:`` in /proc/meminfo.
The hash table's 8 bytes per bucket are checked against ``VmallocUsed:``.
"""
import time

from support.ansible import run_module
from support.kernel import Netns, read_int, write_value
from support.traffic import UDP_FILL_RULESET, udp_fill

SLAB = "/sys/kernel/slab/nf_conntrack/"
# Enough entries (100+ MB) that other activity on the machine stays well inside the 10%.
ENTRIES = 400000
TOLERANCE = 0.10
# Above KMALLOC_MAX_SIZE, so both tables come from vmalloc and show in VmallocUsed.
BUCKETS_SMALL, BUCKETS_BIG = 4194304, 8388608


def slab_value(name):
    with open(SLAB + name) as f:
        return int(f.read().split()[0])


def slab_bytes():
    """Pages held by the nf_conntrack cache: slabs x (PAGE_SIZE << order)."""
    return slab_value("slabs") * (4096 << slab_value("order"))


def meminfo_bytes(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def settle(timeout_seconds=60):
    """Wait until entries of namespaces deleted earlier (freed asynchronously, RCU) are gone."""
    deadline = time.monotonic() + timeout_seconds
    last = slab_value("objects")
    while time.monotonic() < deadline:
        time.sleep(1)
        now = slab_value("objects")
        if abs(now - last) < ENTRIES // 1000:
            return
        last = now


def predicted_entry_bytes(count, extensions=None):
    """What the module predicts for ``count`` entries on this machine (entries part, no hash table)."""
    result = run_module("recommend", {"planning": True, "peak_entries": count, "headroom": 1,
                                      "entry_bytes": slab_value("slab_size"),
                                      "mem_total_bytes": str(meminfo_bytes("MemTotal")),
                                      "memory_budget": "100%", "extensions": extensions or {}})
    assert "recommendation" in result, result
    mem = result["recommendation"]["memory"]
    return mem["needed_bytes"] - mem["hash_table_bytes"], mem["extension_bytes"]


def fill_and_measure(ns_sysctls=()):
    """(count, slab growth, Slab: growth) for ENTRIES UDP entries in a fresh namespace."""
    settle()
    with Netns(ruleset=UDP_FILL_RULESET) as ns:
        for key in ns_sysctls:
            ns.sysctl(key, 1)
        slab_before, meminfo_before = slab_bytes(), meminfo_bytes("Slab")
        udp_fill(ns, ENTRIES)
        count = ns.count()  # conntrack -C is the oracle for how many entries exist
        return count, slab_bytes() - slab_before, meminfo_bytes("Slab") - meminfo_before


def within(measured, predicted):
    return abs(measured - predicted) <= TOLERANCE * predicted


def test_predicted_entry_memory_matches_slab_growth(global_sysctls):
    write_value("nf_conntrack_max", max(read_int("nf_conntrack_max"), 2 * ENTRIES))
    count, slab_grown, meminfo_grown = fill_and_measure()
    assert count >= ENTRIES * 0.99
    predicted, ext = predicted_entry_bytes(count)
    report = "count=%d predicted=%d slab=+%d Slab:=+%d" % (count, predicted, slab_grown, meminfo_grown)
    print(report)
    assert ext == 0
    assert within(slab_grown, predicted), report
    assert within(meminfo_grown, predicted), report


def test_accounting_extension_allowance_matches_slab_growth(global_sysctls):
    # nf_conntrack_acct is per namespace: the counters go into a separate nf_ct_ext block.
    write_value("nf_conntrack_max", max(read_int("nf_conntrack_max"), 2 * ENTRIES))
    count, slab_grown, meminfo_grown = fill_and_measure(["nf_conntrack_acct"])
    assert count >= ENTRIES * 0.99
    predicted, ext = predicted_entry_bytes(count, {"acct": True})
    report = "count=%d predicted=%d (ext %d B) slab=+%d Slab:=+%d" % (
        count, predicted, ext, slab_grown, meminfo_grown)
    print(report)
    assert ext == 128
    assert within(meminfo_grown, predicted), report
    # the nf_conntrack cache itself holds only the 256-byte objects
    assert within(slab_grown, count * slab_value("slab_size")), report


def test_predicted_hash_table_memory_matches_vmalloc_growth(global_sysctls):
    write_value("nf_conntrack_buckets", BUCKETS_SMALL)
    small = meminfo_bytes("VmallocUsed")
    write_value("nf_conntrack_buckets", BUCKETS_BIG)
    grown = meminfo_bytes("VmallocUsed") - small
    result = run_module("recommend", {"planning": True, "peak_entries": BUCKETS_BIG, "headroom": 1,
                                      "entry_bytes": 256, "memory_budget": "100%",
                                      "mem_total_bytes": str(meminfo_bytes("MemTotal"))})
    mem = result["recommendation"]["memory"]
    assert result["recommendation"]["settings"]["nf_conntrack_buckets"] == BUCKETS_BIG
    predicted = mem["hash_table_bytes"] - BUCKETS_SMALL * 8
    assert within(grown, predicted), "VmallocUsed +%d, predicted +%d" % (grown, predicted)


def test_written_buckets_read_back_as_the_module_rounds_them(global_sysctls):
    result = run_module("recommend", {"planning": True, "peak_entries": 100000, "headroom": 1,
                                      "memory_budget": "100%", "mem_total_bytes": "64MiB"})
    rounded = result["recommendation"]["settings"]["nf_conntrack_buckets"]
    write_value("nf_conntrack_buckets", 100000)
    assert read_int("nf_conntrack_buckets") == rounded == 100352


def test_recommend_explains_this_host(kernel_lock):
    result = run_module("recommend", {"table": True})
    assert "recommendation" in result, result
    rec = result["recommendation"]
    assert result["changed"] is False
    assert rec["planning"] is False and rec["verdict"]["judged"] is True
    assert rec["comparison"]["nf_conntrack_max"]["current"] == read_int("nf_conntrack_max")
    assert rec["memory"]["entry_bytes"] == slab_value("slab_size")
    assert set(rec["reasons"]) == set(rec["settings"])
    assert rec["summary"][0].startswith("state: ")
