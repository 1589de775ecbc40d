"""Property tests of the sizing core: invariants that must hold for any load."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel, sizing
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.sizing import recommend

GIB = 1 << 30
RATE = st.one_of(st.none(), st.floats(min_value=0, max_value=200000, allow_nan=False))
LOAD = st.fixed_dictionaries({
    "peak_entries": st.one_of(st.none(), st.integers(min_value=0, max_value=20000000)),
    "tcp_new_per_second": RATE,
    "udp_new_per_second": RATE,
    "tcp_duration_seconds": st.floats(min_value=0, max_value=3600),
    "udp_stream_share": st.floats(min_value=0, max_value=1),
}).filter(lambda d: d["peak_entries"] is not None or d["tcp_new_per_second"] is not None
          or d["udp_new_per_second"] is not None)
MACHINE = st.fixed_dictionaries({
    "mem_total_bytes": st.integers(min_value=256 << 20, max_value=1024 * GIB),
    "entry_bytes": st.sampled_from([192, 256, 320, 384]),
    "headroom": st.floats(min_value=1, max_value=4),
    "target_chain_depth": st.sampled_from([0.5, 1, 2, 4, 8]),
    "profile": st.sampled_from(sorted(sizing.PROFILES)),
    "cpu_count": st.integers(min_value=1, max_value=256),
    "memory_budget": st.sampled_from(["5%", "10%", "25%", "50%", "100%"]),
})
FACTOR = st.floats(min_value=1, max_value=10)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def _more(load, factor):
    bigger = dict(load)
    for key in ("tcp_new_per_second", "udp_new_per_second"):
        if bigger[key] is not None:
            bigger[key] *= factor
    if bigger["peak_entries"] is not None:
        bigger["peak_entries"] = int(bigger["peak_entries"] * factor)
    return bigger


@SETTINGS
@given(LOAD, MACHINE, FACTOR)
def test_more_load_never_yields_a_smaller_max(load, machine, factor):
    small = recommend(None, **dict(load, **machine))
    big = recommend(None, **dict(_more(load, factor), **machine))
    assert big["settings"]["nf_conntrack_max"] >= small["settings"]["nf_conntrack_max"]
    assert big["entries"]["needed"] >= small["entries"]["needed"]


@SETTINGS
@given(LOAD, MACHINE)
def test_buckets_are_always_a_multiple_of_512(load, machine):
    rec = recommend(None, **dict(load, **machine))
    assert rec["settings"]["nf_conntrack_buckets"] % 512 == 0
    assert rec["settings"]["nf_conntrack_buckets"] == kernel.round_buckets(rec["settings"]["nf_conntrack_buckets"])
    assert rec["settings"]["nf_conntrack_max"] / rec["settings"]["nf_conntrack_buckets"] \
        <= machine["target_chain_depth"]


@SETTINGS
@given(st.integers(min_value=0, max_value=5000000), st.integers(min_value=0, max_value=5000000),
       st.sampled_from([16, 65536, 262144, 4194304]), st.booleans())
def test_a_fuller_host_never_gets_a_smaller_max(count, more, current_max, dropped):
    def host(n):
        facts = {"schema_version": 1, "available": True, "settings": {"nf_conntrack_tcp_timeout_time_wait": 120},
                 "usage": {"count": n, "max": current_max, "buckets": 262144, "expect_max": 4096},
                 "stats": {"totals": {"drop": 5 if dropped else 0}},
                 "memory": {"slab_size_bytes": 256, "mem_total_bytes": 16 * GIB, "page_size_bytes": 4096},
                 "table": {"walked": True, "truncated": False, "tcp_states": {"TIME_WAIT": n // 2}}}
        # force: a count above what the budget allows is recommended (capped) rather than refused.
        return recommend(facts, force=True)
    small, big = host(count), host(count + more)
    assert big["settings"]["nf_conntrack_max"] >= small["settings"]["nf_conntrack_max"]
    if dropped and not big["memory"]["capped"]:
        assert big["settings"]["nf_conntrack_max"] > current_max


@given(st.integers(min_value=1, max_value=kernel.BUCKETS_MAX))
def test_rounding_is_idempotent_and_never_rounds_down(buckets):
    once = kernel.round_buckets(buckets)
    assert once >= buckets
    assert once - buckets < 512
    assert kernel.round_buckets(once) == once


@SETTINGS
@given(LOAD, MACHINE, st.booleans(), st.booleans())
def test_memory_equals_the_formula(load, machine, nat, acct):
    rec = recommend(None, extensions={"nat": nat, "acct": acct}, **dict(load, **machine))
    mem, s = rec["memory"], rec["settings"]
    ext = 128 if (nat or acct) else 0
    assert mem["extension_bytes"] == ext
    assert mem["total_bytes"] == s["nf_conntrack_max"] * (machine["entry_bytes"] + ext) \
        + s["nf_conntrack_buckets"] * 8
    assert mem["share_of_ram"] == round(mem["total_bytes"] / float(machine["mem_total_bytes"]), 6)


@SETTINGS
@given(LOAD, MACHINE, st.integers(min_value=8 << 20, max_value=64 * GIB))
def test_the_budget_cap_holds(load, machine, budget_bytes):
    machine = dict(machine, memory_budget=str(min(budget_bytes, machine["mem_total_bytes"])))
    rec = recommend(None, **dict(load, **machine))
    assert rec["memory"]["total_bytes"] <= rec["memory"]["budget_bytes"]
    assert rec["memory"]["within_budget"] is True


@SETTINGS
@given(LOAD, MACHINE)
def test_profile_floors_hold_when_the_budget_allows(load, machine):
    machine = dict(machine, memory_budget="100%")
    rec = recommend(None, **dict(load, **machine))
    profile = sizing.PROFILES[machine["profile"]]
    floor = max(profile["floor_entries"], profile.get("floor_entries_per_cpu", 0) * machine["cpu_count"],
                kernel.kernel_default_max(machine["mem_total_bytes"]))
    if not (rec["memory"]["capped"] or rec["memory"]["limited_by_kernel"]):
        assert rec["settings"]["nf_conntrack_max"] >= floor
        assert rec["settings"]["nf_conntrack_max"] >= rec["entries"]["needed"] * machine["headroom"] - 1e-6
    for key, seconds in rec["settings"].items():
        if key in kernel.SAFE_FLOOR_SECONDS:
            assert seconds >= kernel.SAFE_FLOOR_SECONDS[key]


@SETTINGS
@given(st.dictionaries(st.sampled_from(sorted(kernel.KERNEL_TIMEOUTS)),
                       st.integers(min_value=-10, max_value=3000000), max_size=4))
def test_timeouts_are_either_refused_or_within_the_kernel_range(timeouts):
    try:
        rec = recommend(None, peak_entries=1000, timeouts=timeouts)
    except sizing.SizingError as exc:
        assert "range" in str(exc) or "floor" in str(exc) or ">= 0" in str(exc)
        return
    for key, seconds in timeouts.items():
        assert rec["settings"][key] == seconds
        assert max(1, kernel.SAFE_FLOOR_SECONDS.get(key, 1)) <= seconds <= kernel.TIMEOUT_MAX_SECONDS
