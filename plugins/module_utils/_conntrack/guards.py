# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What applying a recommendation would do to the host it was made for: the warnings, and the
refusals that only ``force`` overrides (a max that would drop new flows at once or at the
next peak). Planning calls have no host and are never refused here.

Private to this collection. Pure; standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.sizing_inputs import SizingError
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.units import fmt, human_bytes
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.values import dig as _get

# A max under this share of the kernel's own default for the RAM is not tuning but a typo
# (1MiB for 1GiB): the kernel would have done far better with no setting at all.
SMALL_TABLE_SHARE = 0.5

# The entries the host was seen to hold, by the need's source names.
_OBSERVED = (("current_count", "in the table now"), ("largest_namespace", "in the fullest namespace"),
             ("observed_rate", "from the TIME_WAIT entries at the new time_wait"))


def host_warnings(inputs, current, plan):
    """What the host's state means for applying the recommendation; a max below the count needs force."""
    warnings = []
    if current.planning:
        return warnings
    if _get(current.facts, "environment", "kube_proxy_running") and inputs["profile"] != "kubernetes_node":
        warnings.append("kube-proxy is running: on start it raises max and its timeouts to its own values; profile"
                        " kubernetes_node matches what it does")
    if current.facts.get("host_settable") is False:
        warnings.append("nf_conntrack_max, buckets and expect_max are global and read-only here"
                        " (not the initial namespace): apply them on the host")
    if current.max_entries == 0:
        warnings.append("nf_conntrack_max is 0: the table is unlimited and only RAM bounds it")
    count, new_max = current.count, plan.max_entries
    if count and new_max < count:
        # Applying it would drop new flows at once: only on purpose.
        if not inputs["force"]:
            raise SizingError(
                "the recommended nf_conntrack_max %d (%s) is below the %d entries in the table now: new flows"
                " would be dropped until the count falls under it. Pass force=true to accept it"
                % (new_max, _cause(inputs, plan), count), "force", inputs["force"])
        warnings.append("the recommended max %d is below the current count %d: new flows would be dropped"
                        " until the count falls under it (force=true)" % (new_max, count))
    return warnings


def _cause(inputs, plan):
    if plan.capped:
        return "capped by the memory budget of %s; raise memory_budget" % plan.budget_source
    return "the most the kernel can hold at chain depth %s" % fmt(inputs["target_chain_depth"])


def small_table_problems(inputs, steps):
    """Why the recommended max is too small for this host: far below the kernel's own default for
    its RAM, or below what it was seen to hold times the headroom. Empty when planning."""
    problems, machine, new_max = [], steps.machine, steps.plan.max_entries
    if steps.current.planning:
        return problems
    if machine.mem_total_bytes:
        default_max = kernel.kernel_default_max(machine.mem_total_bytes, machine.page_size_bytes,
                                                machine.bucket_bytes)
        if new_max < SMALL_TABLE_SHARE * default_max:
            problems.append("under %s of the kernel's own default of %d for %s of RAM"
                            % (fmt(SMALL_TABLE_SHARE * 100) + "%", default_max, human_bytes(machine.mem_total_bytes)))
    seen = [(steps.need.sources.get(key), where) for key, where in _OBSERVED if steps.need.sources.get(key)]
    if seen:
        peak, where = max(seen, key=lambda item: item[0])
        wanted = int(math.ceil(peak * inputs["headroom"]))
        if new_max < wanted:
            problems.append("below the %d entries seen %s x %s headroom = %d"
                            % (peak, where, fmt(inputs["headroom"]), wanted))
    return problems


def refuse_small_table(inputs, steps):
    """Raise the SizingError that says, with the arithmetic, why this max would starve the host;
    nothing when it is not too small or ``force`` accepts it."""
    problems = small_table_problems(inputs, steps)
    if not problems or inputs["force"]:
        return
    machine, plan = steps.machine, steps.plan
    buckets = steps.settings["nf_conntrack_buckets"]
    arithmetic = "%d entries x %d B + %d buckets x %d B = %s" % (
        plan.max_entries, machine.per_entry_bytes, buckets, machine.bucket_bytes,
        human_bytes(machine.table_bytes(plan.max_entries, buckets)))
    if plan.capped:
        head = "the memory budget of %s caps nf_conntrack_max at %d" % (plan.budget_source, plan.max_entries)
        remedy, option, value = "raise memory_budget, or pass force=true", "memory_budget", inputs["memory_budget"]
    else:
        head = "nf_conntrack_max would be %d, %s," % (plan.max_entries, _cause(inputs, plan))
        remedy, option, value = "pass force=true", "force", inputs["force"]
    raise SizingError("refusing a table this small: %s (%s), %s. New connections would be dropped at the next"
                      " peak: %s to accept it" % (head, arithmetic, " and ".join(problems), remedy), option, value)
