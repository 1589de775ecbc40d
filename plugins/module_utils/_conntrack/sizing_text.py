# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The words of a recommendation: the reason per key and the summary.

Private to this collection. Pure: it formats what sizing.py computed and computes nothing
of its own. Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import advisor, kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.units import (
    fmt, human_count, percent)


def rate_part_lines(rate_parts, tail):
    """"tcp: 6500 new/s x 120 s <tail>" per traffic kind, sorted."""
    return ["%s: %s new/s x %s s %s" % (kind, fmt(part["new_per_second"]), fmt(round(part["lifetime_seconds"], 3)),
                                        tail % human_count(part["entries"]))
            for kind, part in sorted(rate_parts.items())]


def driver_reason(need, current_max):
    """Which source set the entries needed, with its figures."""
    if need.driver == "rate_model":
        return "Little's law (%s)" % "; ".join(rate_part_lines(need.rate_parts, "in the table = %s entries"))
    if need.driver == "largest_namespace":
        return ("the fullest namespace, %s (%d entries; every namespace is held to nf_conntrack_max on its own)"
                % (advisor.namespace_label(need.fullest_other), need.needed))
    if need.driver == "pressure":
        return "pressure (%s): the current max %s was too small%s%s" % (
            ", ".join(need.pressure_seen), current_max,
            "" if need.pressure_live else " (if max was raised since, pass pressure_since_boot=false)",
            "; demand %s" % need.rates["saturated_demand"]["how"] if "saturated_demand" in need.rates else "")
    return {
        "peak_entries": "the declared peak_entries (%s)" % human_count(need.needed),
        "current_count": "the current count (%d entries)" % need.needed,
        "observed_rate": "the observed rate (%s closes/s from TIME_WAIT entries, %s entries at the new"
                         " time_wait)" % (need.rates.get("tcp_closes_per_second"), human_count(need.needed)),
        "none": "no load figure",
    }[need.driver]


def max_reason(headroom, need, floor, plan, current_max):
    """How nf_conntrack_max follows from the need: headroom, floor, budget, rounding."""
    text = "%s entries needed from %s; x %s headroom = %s" % (
        human_count(need.needed), driver_reason(need, current_max), fmt(headroom), human_count(plan.with_headroom))
    if floor.entries and floor.entries >= plan.with_headroom:
        text += "; raised to %d, %s" % (floor.entries, floor.reason)
    if plan.capped:
        text += "; capped at %d by the memory budget (%s)" % (plan.max_entries, plan.budget_source)
    elif plan.max_entries != max(plan.with_headroom, floor.entries):
        text += "; rounded up to %d (a multiple of %d)" % (plan.max_entries, plan.bucket_granularity)
    return text + "."


def buckets_reason(settings, depth, bucket_granularity):
    max_entries, buckets = settings["nf_conntrack_max"], settings["nf_conntrack_buckets"]
    return ("max %d / target chain depth %s = %d buckets, rounded up to a multiple of %d as the kernel does"
            " (each entry sits in two chains, so chains average %s entries at max)."
            % (max_entries, fmt(depth), int(math.ceil(max_entries / depth)), bucket_granularity,
               fmt(round(2 * max_entries / float(buckets), 2))))


def timeout_reason(key, seconds, overrides, profile_name, profile):
    """Why a timeout is in the settings: the user's override, or the profile's reason for that value."""
    if key in overrides:
        return "your override: %d s (kernel default %d s)." % (seconds, kernel.KERNEL_TIMEOUTS[key])
    return "%s profile: %d s (kernel default %d s); %s." % (
        profile_name, seconds, kernel.KERNEL_TIMEOUTS[key], profile["reasons"][key])


def reasons(inputs, profile, steps):
    """One sentence per key of the settings."""
    settings = steps.settings
    out = {"nf_conntrack_max": max_reason(inputs["headroom"], steps.need, steps.floor, steps.plan,
                                          steps.current.max_entries)}
    out["nf_conntrack_buckets"] = buckets_reason(settings, inputs["target_chain_depth"],
                                                 steps.machine.bucket_granularity)
    out["nf_conntrack_expect_max"] = ("4 expectations per expect-hash slot, buckets / 256 slots, as"
                                      " nf_conntrack_expect_init() does at boot.")
    for key in sorted(steps.timeouts.settings):
        out[key] = timeout_reason(key, steps.timeouts.settings[key], inputs["timeouts"], inputs["profile"], profile)
    return out


def summary(verdict, memory, steps):
    """A few lines: the state, the rate model, the need and the settings, the memory at max."""
    lines = []
    if not steps.current.planning:
        lines.append("state: %s (%s): %s" % (verdict["status"], verdict["severity"], "; ".join(verdict["reasons"])))
    lines.extend("%s (Little's law)" % line for line in rate_part_lines(steps.need.rate_parts, "= %s entries"))
    settings = steps.settings
    lines.append("need %s entries (driver: %s); recommend nf_conntrack_max=%d, nf_conntrack_buckets=%d,"
                 " nf_conntrack_expect_max=%d" % (
                     human_count(steps.need.needed), steps.need.driver, settings["nf_conntrack_max"],
                     settings["nf_conntrack_buckets"], settings["nf_conntrack_expect_max"]))
    share = memory["share_of_ram"]
    lines.append("memory at max: %s (%s entries x %d B + %d buckets x %d B)%s" % (
        memory["total_human"], human_count(memory["entries"]), memory["per_entry_bytes"],
        settings["nf_conntrack_buckets"], memory["bucket_bytes"],
        "" if share is None else ", %s of RAM" % percent(share)))
    return lines
