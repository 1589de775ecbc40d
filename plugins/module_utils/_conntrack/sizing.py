# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure sizing of the conntrack table: no I/O, no ansible imports, stdlib only.

``recommend(facts, **inputs)`` turns a facts dict (CONTRIBUTING.md, may be None
for capacity planning) and explicit load figures into the recommendation dict
that the settings module accepts. docs/sizing.md explains the model.

Each step is a function that takes what it needs and returns its figures (the
namedtuples below), so ``recommend()`` reads as the data flow: the current state,
the machine, the timeouts, the entries needed, the floor, the max, the buckets, the
memory. The inputs are checked in sizing_inputs.py, the words are sizing_text.py's,
and the verdict is verdict.py's, shared with the audit.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import math

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import advisor, demand, guards, kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import sizing_text, verdict
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.profiles import PROFILES
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.sizing_inputs import (
    INPUTS, SizingError, parse_budget, parse_size, unwrap_facts, validate)
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.units import fmt, human_bytes, human_count
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.values import dig as _get

__all__ = ("PROFILES", "INPUTS", "SizingError", "FALLBACK_ENTRY_BYTES", "buckets_for", "extension_bytes",
           "human_bytes", "max_within_budget", "memory_bytes", "parse_budget", "parse_size", "rate_entries",
           "recommend", "unwrap_facts", "validate_inputs")

# A 6.x nf_conn is 248 bytes in a 256-byte slab; older or debug kernels are bigger.
FALLBACK_ENTRY_BYTES = 320

# The table as it is now, read from the facts (planning: no facts, all None or empty).
Current = collections.namedtuple("Current", "planning facts settings max_entries buckets expect_max count "
                                            "stats_totals tcp_states")
Timeouts = collections.namedtuple("Timeouts", "current effective settings")
Need = collections.namedtuple("Need", "sources rates rate_parts driver needed load_needed spaces largest "
                                      "fullest_other pressure_seen pressure_live")
Floor = collections.namedtuple("Floor", "entries reason")
MaxPlan = collections.namedtuple("MaxPlan", "with_headroom max_entries bucket_granularity budget_bytes "
                                            "budget_source capped fits limited")
# Every step's result, for the words (reasons, summary) that draw on all of them.
Steps = collections.namedtuple("Steps", "current machine timeouts need floor plan settings")


class Machine(collections.namedtuple("Machine", "mem_total_bytes page_size_bytes bucket_bytes bucket_granularity "
                                                "entry_bytes entry_source cpu_count extensions_on "
                                                "extension_bytes per_entry_bytes target_chain_depth")):
    """The table's geometry on this machine: RAM, page, bucket and entry size, the chain depth aimed at."""
    __slots__ = ()

    def table_bytes(self, entries, buckets):
        """Kernel memory of ``entries`` entries and ``buckets`` buckets on this machine."""
        return memory_bytes(entries, buckets, self.entry_bytes, self.bucket_bytes, self.extension_bytes)

    def buckets_for(self, max_entries):
        return buckets_for(max_entries, self.target_chain_depth, self.page_size_bytes, self.bucket_bytes)


# ------------------------------------------------------------------ the arithmetic
def buckets_for(max_entries, target_chain_depth=1.0, page_size_bytes=kernel.PAGE_SIZE,
                bucket_bytes=kernel.BUCKET_BYTES):
    """Buckets so that max / buckets <= target_chain_depth, rounded like the kernel."""
    granularity = kernel.bucket_granularity(page_size_bytes, bucket_bytes)
    return min(kernel.round_buckets(max(1, max_entries) / float(target_chain_depth), granularity),
               kernel.largest_buckets(granularity, bucket_bytes))


def extension_bytes(nat=False, acct=False, timestamp=False, events=False, labels=False, helper=False):
    """Bytes of the per-entry nf_ct_ext block for the extensions that are on (0 if none)."""
    on = dict(nat=nat, acct=acct, timestamp=timestamp, events=events, labels=labels, helper=helper)
    used = [k for k, v in on.items() if v]
    if not used:
        return 0
    total = kernel.EXT_HEADER_BYTES
    for key in ("helper", "nat", "acct", "events", "timestamp", "labels"):
        if on[key]:
            total = kernel.round_up(total, 8) + kernel.EXTENSION_BYTES[key]
    total = max(total, kernel.EXT_PREALLOC_BYTES)
    for size in kernel.KMALLOC_SIZES:
        if total <= size:
            return size
    return total


def memory_bytes(entries, buckets, entry_bytes=256, bucket_bytes=kernel.BUCKET_BYTES, ext_bytes=0):
    """Kernel memory of a table: entries x (slab object + extension block) + buckets x bucket size."""
    return int(entries) * (int(entry_bytes) + int(ext_bytes)) + int(buckets) * int(bucket_bytes)


def max_within_budget(budget_bytes, per_entry_bytes, target_chain_depth, page_size_bytes=kernel.PAGE_SIZE,
                      bucket_bytes=kernel.BUCKET_BYTES):
    """The largest max (a multiple of the bucket granularity) whose table fits the budget."""
    granularity = kernel.bucket_granularity(page_size_bytes, bucket_bytes)
    guess = int(budget_bytes / (per_entry_bytes + bucket_bytes / float(target_chain_depth)))
    guess = (guess // granularity) * granularity
    while guess > 0:
        buckets = buckets_for(guess, target_chain_depth, page_size_bytes, bucket_bytes)
        if guess * per_entry_bytes + buckets * bucket_bytes <= budget_bytes:
            return guess
        guess -= granularity
    return 0


def _tcp_lifetime(timeouts, duration_seconds):
    # A short connection lives its duration, then sits in TIME_WAIT.
    return duration_seconds + timeouts["nf_conntrack_tcp_timeout_time_wait"]


def _udp_lifetime(timeouts, duration_seconds, stream_share):
    # An unreplied flow lives udp_timeout after its last packet, an assured one udp_timeout_stream.
    tail = (stream_share * timeouts["nf_conntrack_udp_timeout_stream"]
            + (1 - stream_share) * timeouts["nf_conntrack_udp_timeout"])
    return duration_seconds + tail


def rate_entries(load, timeouts):
    """Little's law per traffic kind: new flows per second x seconds in the table."""
    parts = {}
    if load["tcp_new_per_second"] is not None:
        life = _tcp_lifetime(timeouts, load["tcp_duration_seconds"])
        parts["tcp"] = {"new_per_second": load["tcp_new_per_second"], "lifetime_seconds": life,
                        "entries": int(math.ceil(load["tcp_new_per_second"] * life))}
    if load["udp_new_per_second"] is not None:
        life = _udp_lifetime(timeouts, load["udp_duration_seconds"], load["udp_stream_share"])
        parts["udp"] = {"new_per_second": load["udp_new_per_second"], "lifetime_seconds": life,
                        "entries": int(math.ceil(load["udp_new_per_second"] * life))}
    if load["other_new_per_second"] is not None:
        life = timeouts["nf_conntrack_generic_timeout"]
        parts["other"] = {"new_per_second": load["other_new_per_second"], "lifetime_seconds": life,
                          "entries": int(math.ceil(load["other_new_per_second"] * life))}
    if not parts:
        return None, parts
    return sum(p["entries"] for p in parts.values()), parts


def _udp_key(stream_share):
    """The UDP timeout that dominates: the stream one when most flows get a reply."""
    return "nf_conntrack_udp_timeout_stream" if stream_share >= 0.5 else "nf_conntrack_udp_timeout"


# ------------------------------------------------------------------ the steps
def current_state(facts):
    """What the facts say about the table now; planning when there are no usable facts."""
    planning = not (isinstance(facts, dict) and facts.get("available", True) is not False)
    facts = facts or {}
    settings = facts.get("settings") or {}
    usage = facts.get("usage") or {}
    return Current(planning, facts, settings, usage.get("max", settings.get("nf_conntrack_max")),
                   usage.get("buckets", settings.get("nf_conntrack_buckets")),
                   usage.get("expect_max", settings.get("nf_conntrack_expect_max")),
                   usage.get("count", settings.get("nf_conntrack_count")),
                   _get(facts, "stats", "totals") or {}, _get(facts, "table", "tcp_states") or {})


def machine_figures(inputs, current):
    """(Machine, warnings): explicit inputs win over facts, then fallbacks."""
    warnings, memory_facts, settings = [], current.facts.get("memory") or {}, current.settings
    mem_total_bytes = inputs["mem_total_bytes"] if inputs["mem_total_bytes"] is not None \
        else memory_facts.get("mem_total_bytes")
    page_size_bytes = inputs["page_size_bytes"] or memory_facts.get("page_size_bytes") or kernel.PAGE_SIZE
    bucket_bytes = memory_facts.get("bucket_size_bytes") or kernel.BUCKET_BYTES
    if inputs["entry_bytes"] is not None:
        entry_bytes, entry_source = inputs["entry_bytes"], "input entry_bytes"
    elif memory_facts.get("slab_size_bytes"):
        entry_bytes, entry_source = int(memory_facts["slab_size_bytes"]), "slab_size of the nf_conntrack slab"
    else:
        entry_bytes, entry_source = FALLBACK_ENTRY_BYTES, "fallback (no slab size known)"
        warnings.append("the nf_conntrack slab size is unknown; memory uses a conservative %d bytes per"
                        " entry" % FALLBACK_ENTRY_BYTES)
    cpu_count = inputs["cpu_count"] or memory_facts.get("cpu_count") or _get(current.facts, "stats", "cpus")
    # Which extensions the entries carry.
    extensions_on = {
        "nat": bool(_get(current.facts, "environment", "nat_rules_present")),
        "acct": bool(settings.get("nf_conntrack_acct")),
        "timestamp": bool(settings.get("nf_conntrack_timestamp")),
        "events": settings.get("nf_conntrack_events") == 1,
    }
    extensions_on.update(inputs["extensions"])
    ext_bytes = extension_bytes(**extensions_on)
    return Machine(mem_total_bytes, page_size_bytes, bucket_bytes,
                   kernel.bucket_granularity(page_size_bytes, bucket_bytes), entry_bytes, entry_source, cpu_count,
                   extensions_on, ext_bytes, entry_bytes + ext_bytes, inputs["target_chain_depth"]), warnings


def effective_timeouts(current_settings, profile, overrides):
    """The timeouts now, in force after applying (override > profile > current > kernel default), and set."""
    now = dict((k, current_settings[k]) for k in kernel.KERNEL_TIMEOUTS if isinstance(current_settings.get(k), int))
    effective = dict(kernel.KERNEL_TIMEOUTS)
    effective.update(now)
    effective.update(profile["timeouts"])
    effective.update(overrides)
    to_set = dict(profile["timeouts"])
    to_set.update(overrides)
    return Timeouts(now, effective, to_set)


def entries_needed(inputs, current, timeouts):
    """Every source of a need (declared, Little's law, count, namespaces, observed rate, pressure); the largest drives."""
    sources = {"peak_entries": inputs["peak_entries"], "rate_model": None, "current_count": None,
               "largest_namespace": None, "observed_rate": None, "pressure": None}
    rates = {}
    sources["rate_model"], rate_parts = rate_entries(inputs, timeouts.effective)
    if not current.planning and current.count is not None:
        sources["current_count"] = int(current.count)
    spaces, largest, fullest_other = _namespaces(current.facts)
    if not current.planning and fullest_other is not None:
        sources["largest_namespace"] = fullest_other["entries"]
    observed = _observed_rate(current, timeouts)
    if observed:
        rates["tcp_closes_per_second"], sources["observed_rate"] = observed
    seen, live = _pressure(inputs["pressure_since_boot"], current, spaces)
    if not current.planning and seen and current.max_entries:
        sources["pressure"] = int(current.max_entries) + 1
        saturated = _saturated_demand(inputs["tcp_duration_seconds"], current, timeouts) if live else None
        if saturated and saturated["entries"] > sources["pressure"]:
            sources["pressure"] = saturated["entries"]
            rates["saturated_demand"] = saturated
    candidates = dict((k, val) for k, val in sources.items() if val is not None)
    if candidates:
        driver = max(sorted(candidates), key=lambda k: candidates[k])
        needed = candidates[driver]
    else:
        driver, needed = "none", 0
    # What the load itself needs, without the pressure source (which is the max of the time + 1).
    load_needed = max([val for key, val in candidates.items() if key != "pressure"] or [0])
    return Need(sources, rates, rate_parts, driver, needed, load_needed, spaces, largest, fullest_other, seen, live)


def _namespaces(facts):
    """(counted namespaces, the fullest, the fullest but ours). Each namespace is held to the one global
    max on its own, so the fullest one is a need of its own (a container can fill the table the host
    barely uses); the module's own namespace is current_count already."""
    spaces = advisor.counted_namespaces(facts)
    largest = max(spaces, key=lambda ns: ns["entries"]) if spaces else None
    others = [ns for ns in spaces if not ns.get("current")]
    return spaces, largest, max(others, key=lambda ns: ns["entries"]) if others else None


def _observed_rate(current, timeouts):
    """(TCP closes per second, entries at the new time_wait) from the walked TIME_WAIT entries, or None."""
    tcp_states, facts = current.tcp_states, current.facts
    if current.planning or not _get(facts, "table", "walked") or _get(facts, "table", "truncated") \
            or not tcp_states.get("TIME_WAIT"):
        return None
    key = "nf_conntrack_tcp_timeout_time_wait"
    time_wait_now = timeouts.current.get(key, kernel.KERNEL_TIMEOUTS[key])
    closes_per_second = round(tcp_states["TIME_WAIT"] / float(time_wait_now), 3)
    # Steady state: the TIME_WAIT share scales with the time_wait timeout we will set.
    projected = ((current.count or 0) - tcp_states["TIME_WAIT"] + tcp_states["TIME_WAIT"]
                 * timeouts.effective[key] / float(time_wait_now))
    return closes_per_second, int(math.ceil(max(projected, 0)))


def _pressure(since_boot, current, spaces):
    """(what was seen, whether it happens now): drops in a stats sample, or since boot in the counters
    and the kernel log. Either says the max of the time was too small."""
    seen, live, facts = [], False, current.facts
    sample_rates = _get(facts, "stats", "sample", "rates_per_second") or {}
    for key in ("drop", "early_drop", "insert_failed"):
        if (sample_rates.get(key) or 0) > 0:
            seen.append("%s %s/s now" % (key, fmt(sample_rates[key])))
            live = True
    if since_boot:
        for key in ("drop", "early_drop", "insert_failed"):
            if (current.stats_totals.get(key) or 0) > 0:
                seen.append("%s=%d since boot" % (key, current.stats_totals[key]))
        for ns in spaces:
            dropped = _get(ns, "stats", "totals", "drop") or 0
            if dropped and not ns.get("current"):
                seen.append("drop=%d since boot in %s" % (dropped, advisor.namespace_label(ns)))
        table_full = _get(facts, "kernel_log", "table_full_count") or 0
        if table_full:
            netns = _get(facts, "kernel_log", "netns") or []
            shown = ", ".join(str(n) for n in netns[:3]) + (" and %d more" % (len(netns) - 3) if len(netns) > 3 else "")
            seen.append("'table full' logged %d times since boot%s" % (table_full, " (netns %s)" % shown if netns else ""))
    return seen, live


def _saturated_demand(tcp_duration_seconds, current, timeouts):
    """Drops now: the count is capped at max, so the demand comes from admitted + dropped flows/s."""
    now_timeouts = dict(kernel.KERNEL_TIMEOUTS, **timeouts.current)
    return demand.saturated_demand(_get(current.facts, "stats", "sample"), current.count,
                                   _tcp_lifetime(now_timeouts, tcp_duration_seconds),
                                   _tcp_lifetime(timeouts.effective, tcp_duration_seconds))


def floor_entries(machine, profile_name):
    """The kernel's own default for the RAM, or the profile's floor when higher."""
    entries, reason = 0, None
    if machine.mem_total_bytes:
        entries = kernel.kernel_default_max(machine.mem_total_bytes, machine.page_size_bytes, machine.bucket_bytes)
        reason = "the kernel's own default for %s of RAM" % human_bytes(machine.mem_total_bytes)
    profile = PROFILES[profile_name]
    profile_floor = profile["floor_entries"]
    if profile.get("floor_entries_per_cpu") and machine.cpu_count:
        profile_floor = max(profile_floor, profile["floor_entries_per_cpu"] * int(machine.cpu_count))
    if profile_floor > entries:
        entries, reason = profile_floor, "the %s profile's floor" % profile_name
    return Floor(entries, reason)


def size_max(inputs, machine, need, floor, effective):
    """(MaxPlan, warnings): need x headroom, floored, rounded like the buckets, capped by the budget and the kernel."""
    granularity, warnings = machine.bucket_granularity, []
    with_headroom = int(math.ceil(need.needed * inputs["headroom"]))
    max_entries = kernel.round_up(max(with_headroom, floor.entries, granularity), granularity)
    budget_bytes, budget_source = None, None
    if inputs["memory_budget"] is not None or machine.mem_total_bytes:
        budget_bytes, budget_source = parse_budget(inputs["memory_budget"], machine.mem_total_bytes)
    else:
        warnings.append("RAM unknown: no memory budget applied (pass mem_total_bytes or memory_budget)")
    capped, fits = False, []
    if budget_bytes is not None:
        full_bytes = machine.table_bytes(max_entries, machine.buckets_for(max_entries))
        if full_bytes > budget_bytes:
            capped, uncapped = True, max_entries
            max_entries = max(granularity, max_within_budget(budget_bytes, machine.per_entry_bytes,
                                                             machine.target_chain_depth, machine.page_size_bytes,
                                                             machine.bucket_bytes))
            fits = timeouts_that_fit(inputs, need.rate_parts, effective, max_entries)
            warnings.extend(_cap_warnings(uncapped, full_bytes, (budget_bytes, budget_source), max_entries,
                                          fits, need, floor))
    limit = min(kernel.INT_MAX, int(kernel.largest_buckets(granularity, machine.bucket_bytes)
                                    * machine.target_chain_depth)) // granularity * granularity
    limited = max_entries > limit
    if limited:
        # The kernel's own ceilings: an int max and a hash table under INT_MAX bytes.
        warnings.append("nf_conntrack_max %d is above what the kernel can hold at chain depth %s; limited to %d"
                        % (max_entries, fmt(machine.target_chain_depth), limit))
        max_entries = limit
    return MaxPlan(with_headroom, max_entries, granularity, budget_bytes, budget_source, capped, fits,
                   limited), warnings


def _cap_warnings(uncapped, full_bytes, budget, max_entries, fits, need, floor):
    """What capping at the budget costs: the cut, the timeouts that would fit, a need or floor left above it."""
    budget_bytes, budget_source = budget
    warnings = ["%s entries would need %s, above the memory budget of %s (%s); nf_conntrack_max is capped at %d"
                % (human_count(uncapped), human_bytes(full_bytes), human_bytes(budget_bytes), budget_source,
                   max_entries)]
    for fit in fits:
        warnings.append("to fit the budget: %s=%d (now %d) would bring the need under %d entries"
                        % (fit["key"], fit["timeout_seconds"], fit["current_seconds"], max_entries))
    if need.needed > max_entries:
        warnings.append("the capped max (%d) is below the entries needed (%d): expect drops at peak;"
                        " raise memory_budget or cut timeouts" % (max_entries, need.needed))
    if max_entries < floor.entries:
        warnings.append("the capped max (%d) is below %s (%d)" % (max_entries, floor.reason, floor.entries))
    return warnings


def timeouts_that_fit(inputs, rate_parts, effective, max_entries):
    """For each timeout the rate model depends on, the value that would make the need fit under the cap."""
    out = []
    budget_entries = max_entries / inputs["headroom"]
    for kind in ("tcp", "udp"):
        if kind not in rate_parts:
            continue
        rate = rate_parts[kind]["new_per_second"]
        room = budget_entries - sum(p["entries"] for k, p in rate_parts.items() if k != kind)
        if rate <= 0 or room <= 0:
            continue
        key, seconds = _fitting_timeout(inputs, effective, kind, room / rate)
        if seconds is not None and kernel.SAFE_FLOOR_SECONDS[key] <= seconds < effective[key]:
            out.append({"key": key, "timeout_seconds": int(math.floor(seconds)), "current_seconds": effective[key]})
    return out


def _fitting_timeout(inputs, effective, kind, lifetime_seconds):
    """(key, seconds): the timeout that gives flows of ``kind`` this lifetime in the table."""
    if kind == "tcp":
        return "nf_conntrack_tcp_timeout_time_wait", lifetime_seconds - inputs["tcp_duration_seconds"]
    key = _udp_key(inputs["udp_stream_share"])
    weight = inputs["udp_stream_share"] if key.endswith("stream") else 1 - inputs["udp_stream_share"]
    other_key = "nf_conntrack_udp_timeout" if key.endswith("stream") else "nf_conntrack_udp_timeout_stream"
    rest = inputs["udp_duration_seconds"] + (1 - weight) * effective[other_key]
    if weight <= 0:
        return key, None
    return key, (lifetime_seconds - rest) / weight


def table_settings(machine, max_entries, timeout_settings):
    """The settings: max, its buckets and expect_max, then the timeouts to set."""
    buckets = machine.buckets_for(max_entries)
    settings = {"nf_conntrack_max": max_entries, "nf_conntrack_buckets": buckets,
                "nf_conntrack_expect_max": kernel.kernel_expect_max(buckets)}
    settings.update(timeout_settings)
    return settings


def memory(inputs, machine, plan, buckets, need):
    """(recommend's ``memory``, warnings): the table at the recommended max, at the need, in every namespace."""
    total, max_entries, warnings = machine.table_bytes(plan.max_entries, buckets), plan.max_entries, []
    mem_total_bytes = machine.mem_total_bytes
    out = {
        "entry_bytes": machine.entry_bytes,
        "entry_bytes_source": machine.entry_source,
        "extension_bytes": machine.extension_bytes,
        "extensions": sorted(k for k, on in machine.extensions_on.items() if on),
        "per_entry_bytes": machine.per_entry_bytes,
        "bucket_bytes": machine.bucket_bytes,
        "entries": max_entries,
        "entries_bytes": max_entries * machine.per_entry_bytes,
        "hash_table_bytes": buckets * machine.bucket_bytes,
        "total_bytes": total,
        "total_human": human_bytes(total),
        "needed_bytes": machine.table_bytes(need.needed, buckets),
        "mem_total_bytes": mem_total_bytes,
        "share_of_ram": round(total / float(mem_total_bytes), 6) if mem_total_bytes else None,
        "budget_bytes": plan.budget_bytes,
        "budget_human": human_bytes(plan.budget_bytes),
        "budget_source": plan.budget_source,
        "within_budget": None if plan.budget_bytes is None else total <= plan.budget_bytes,
        "capped": plan.capped,
        "limited_by_kernel": plan.limited,
        "namespaces": inputs["namespaces"],
        "all_namespaces_full_bytes": machine.table_bytes(max_entries * inputs["namespaces"], buckets),
    }
    if need.spaces:
        # The real counts of every namespace: what the table holds now, beside the worst case.
        counted = sum(ns["entries"] for ns in need.spaces)
        out["namespaces_counted"] = len(need.spaces)
        out["at_namespace_counts_bytes"] = machine.table_bytes(counted, buckets)
        warnings.append("%d namespaces hold %d entries in all (%s with the hash table); the fullest, %s, holds %d"
                        % (len(need.spaces), counted, human_bytes(out["at_namespace_counts_bytes"]),
                           advisor.namespace_label(need.largest), need.largest["entries"]))
    if inputs["namespaces"] > 1 or inputs["profile"] in ("container_host", "kubernetes_node"):
        warnings.append("each network namespace (container, pod) can hold up to nf_conntrack_max entries"
                        " of its own: %d namespaces full would take %s" % (
                            inputs["namespaces"], human_bytes(out["all_namespaces_full_bytes"])))
    return out, warnings


def namespace_summary(facts, need, max_entries, memory_dict):
    """recommend's ``namespaces``: None without the facts' namespace list. Each namespace is held to
    the one global max on its own, so the largest drives the max and the sum the memory, which
    ``memory.at_namespace_counts_bytes`` prices (the one figure for it)."""
    spaces = [ns for ns in (facts or {}).get("namespaces") or [] if isinstance(ns, dict)]
    if not spaces:
        return None
    out = {"namespaces": len(spaces), "readable": len(need.spaces),
           "entries_total": sum(ns["entries"] for ns in need.spaces),
           "memory_bytes_at_counts": memory_dict.get("at_namespace_counts_bytes"), "largest": None}
    largest = need.largest
    if largest is not None:
        out["largest"] = {"inode": largest.get("inode"), "label": advisor.namespace_label(largest),
                          "entries": largest["entries"],
                          "share_of_max": round(largest["entries"] / float(max_entries), 4) if max_entries else None}
    return out


def comparison(current, timeouts, settings):
    """Per key of the settings: the value now (None in planning), the recommended one, whether it changes."""
    now = {"nf_conntrack_max": current.max_entries, "nf_conntrack_buckets": current.buckets,
           "nf_conntrack_expect_max": current.expect_max}
    for key in timeouts.settings:
        now[key] = timeouts.current.get(key)
    out = {}
    for key, value in settings.items():
        value_now = None if current.planning else now.get(key)
        out[key] = {"current": value_now, "recommended": value, "change": value_now != value}
    return out


def tradeoffs(inputs, steps):
    """Memory at a few timeout values, for the rates given (or observed)."""
    rows, need, effective = [], steps.need, steps.timeouts.effective
    key = "nf_conntrack_tcp_timeout_time_wait"
    values = sorted(set([30, 60, 120, effective[key]]))
    if "tcp" in need.rate_parts:
        rows.extend(_tradeoff(inputs, steps, key, seconds, _rate_total(inputs, effective, key, seconds))
                    for seconds in values)
    elif need.rates.get("tcp_closes_per_second") is not None:
        base = (steps.current.count or 0) - steps.current.tcp_states.get("TIME_WAIT", 0)
        rows.extend(_tradeoff(inputs, steps, key, seconds, int(math.ceil(
            max(0, base + need.rates["tcp_closes_per_second"] * seconds)))) for seconds in values)
    if "udp" in need.rate_parts:
        key = _udp_key(inputs["udp_stream_share"])
        for seconds in sorted(set([30, 60, 120, 180, effective[key]])):
            if seconds >= kernel.SAFE_FLOOR_SECONDS[key]:
                rows.append(_tradeoff(inputs, steps, key, seconds, _rate_total(inputs, effective, key, seconds)))
    return rows


def _rate_total(inputs, effective, key, seconds):
    trial = dict(effective)
    trial[key] = seconds
    return rate_entries(inputs, trial)[0]


def _tradeoff(inputs, steps, key, seconds, entries):
    machine, granularity = steps.machine, steps.machine.bucket_granularity
    target = max(int(math.ceil(entries * inputs["headroom"])), steps.floor.entries, granularity)
    max_entries = kernel.round_up(target, granularity)
    mem = machine.table_bytes(max_entries, machine.buckets_for(max_entries))
    budget_bytes = steps.plan.budget_bytes
    return {"key": key, "timeout_seconds": seconds, "entries_needed": entries, "nf_conntrack_max": max_entries,
            "memory_bytes": mem, "memory_human": human_bytes(mem),
            "share_of_ram": round(mem / float(machine.mem_total_bytes), 6) if machine.mem_total_bytes else None,
            "within_budget": None if budget_bytes is None else mem <= budget_bytes}


def validate_inputs(**inputs):
    """Check recommend's inputs without facts (no RAM known): the role's pre-flight check.

    Raises the SizingError that recommend() would raise for the same values.
    """
    validate(inputs)


def recommend(facts=None, **inputs):
    """The recommendation dict (CONTRIBUTING.md) for ``facts`` (or None: planning) and the load inputs."""
    validated = validate(inputs)
    if isinstance(facts, dict) and facts.get("available") is False:
        raise SizingError("nf_conntrack is not available on this host (facts.available is false): nothing to size")
    current = current_state(facts)
    have_load = any(validated[k] is not None for k in ("peak_entries", "tcp_new_per_second", "udp_new_per_second",
                                                       "other_new_per_second"))
    if current.planning and not have_load:
        raise SizingError("a planning call (no facts) needs the load: peak_entries, tcp_new_per_second,"
                          " udp_new_per_second or other_new_per_second")
    profile = PROFILES[validated["profile"]]
    machine, warnings = machine_figures(validated, current)
    timeouts = effective_timeouts(current.settings, profile, validated["timeouts"])
    need = entries_needed(validated, current, timeouts)
    floor = floor_entries(machine, validated["profile"])
    plan, plan_warnings = size_max(validated, machine, need, floor, timeouts.effective)
    settings = table_settings(machine, plan.max_entries, timeouts.settings)
    memory_dict, memory_warnings = memory(validated, machine, plan, settings["nf_conntrack_buckets"], need)
    steps = Steps(current, machine, timeouts, need, floor, plan, settings)
    state = verdict.judge(current, need, plan, machine, validated["headroom"])
    state["causes"] = [] if current.planning else advisor.causes(current.facts)  # why packets drop (advisor.py)
    result = {
        "settings": settings,
        "reasons": sizing_text.reasons(validated, profile, steps),
        "entries": {"needed": need.needed, "driver": need.driver, "sources": need.sources,
                    "with_headroom": plan.with_headroom, "headroom": validated["headroom"],
                    "floor": floor.entries, "floor_source": floor.reason,
                    "rate_model": need.rate_parts, "rates": need.rates},
        "memory": memory_dict,
        "verdict": state,
        "comparison": comparison(current, timeouts, settings),
        "tradeoffs": tradeoffs(validated, steps),
        "timeouts_fitting_budget": plan.fits,
        "profile": {"name": validated["profile"], "description": profile["description"],
                    "sources": profile["sources"]},
        "planning": current.planning,
        "namespaces": namespace_summary(current.facts, need, plan.max_entries, memory_dict),
    }
    result["summary"] = sizing_text.summary(state, memory_dict, steps)
    result["warnings"] = warnings + plan_warnings + memory_warnings + guards.host_warnings(validated, current, plan)
    guards.refuse_small_table(validated, steps)
    return result
