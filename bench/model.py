"""The recommend model, as the benchmarks ask it: memory for N entries, steady-state entries for a rate.

Everything here calls the collection's own code (module_utils), so that B4 measures the
model users get. When that code is missing from the checkout, the answer says so
(``model_source: unavailable``) instead of substituting a formula of ours.
"""
import _paths  # noqa: F401  pylint: disable=unused-import

try:
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import reading
except ImportError:  # the facts work has not landed in this checkout
    reading = None
try:
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import sizing
except ImportError:  # the recommend work has not landed in this checkout
    sizing = None


def facts_memory():
    """The memory facts of this host (slab object size etc.), from our facts code."""
    if reading is None:
        return None
    facts, _ = reading.gather()
    return facts.get("memory")


def predicted_memory(entries, memory_facts):
    if sizing is None:
        return {"model_source": "unavailable", "entries_bytes": None}
    return sizing_memory(entries, memory_facts)


def predicted_steady_entries(rate_per_second, duration_seconds, time_wait_seconds):
    if sizing is None:
        return {"model_source": "unavailable", "entries": None}
    return sizing_steady_entries(rate_per_second, duration_seconds, time_wait_seconds)


def sizing_memory(entries, memory_facts):
    raise NotImplementedError("wired up once sizing lands")


def sizing_steady_entries(rate_per_second, duration_seconds, time_wait_seconds):
    raise NotImplementedError("wired up once sizing lands")
