# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Is this table full, too deep, oversized or fine: the one judgement of a table's state.

recommend's ``verdict`` and the fleet audit's usage and chain-depth findings both ask
``usage_severity()`` and ``chain_depth_severity()``, so that a host cannot be "ok" in one
and "critical" in the other for the same figures. The audit passes its own thresholds.
Private to this collection. Pure; standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.units import fmt, human_bytes

# 75% is where node-mixin's conntrack alert fires; at 90% a table counts as full.
WARNING_RATIO = 0.75
FULL_RATIO = 0.90
# The current max is "oversized" when it could cost more than the budget and is
# this many times what the load needs.
OVERSIZED_FACTOR = 4.0

_RANK = {"critical": 2, "warning": 1}
_ORDER = {"undersized": 3, "chains_too_deep": 2, "oversized": 1}


def usage_severity(ratio, warning_ratio=WARNING_RATIO, full_ratio=FULL_RATIO):
    """(severity, threshold) for a table ``ratio`` full (count / max): critical from ``full_ratio``,
    warning from ``warning_ratio``; None below both or when the ratio is unknown."""
    if ratio is None:
        return None
    if ratio >= full_ratio:
        return "critical", full_ratio
    if ratio >= warning_ratio:
        return "warning", warning_ratio
    return None


def chain_depth_severity(depth, warning_depth=kernel.DEEP_CHAIN_DEPTH, critical_depth=None):
    """(severity, threshold) for max / buckets above ``critical_depth`` (None: no critical level)
    or ``warning_depth``; None at or below them or when the depth is unknown."""
    if depth is None:
        return None
    if critical_depth is not None and depth > critical_depth:
        return "critical", critical_depth
    if depth > warning_depth:
        return "warning", warning_depth
    return None


def judge(current, need, plan, machine, headroom):
    """recommend's verdict: every finding, the most severe one as status and severity."""
    if current.planning:
        return {"status": "ok", "severity": "ok", "judged": False,
                "reasons": ["planning: no current state to judge"], "usage_ratio": None}
    ratio = (current.count or 0) / float(current.max_entries) if current.max_entries else None
    usage = _usage_findings(current, need, ratio, headroom)
    found = usage + _chain_findings(current) + _oversized_findings(current, need, plan, machine, bool(usage))
    if not found:
        reasons = ["usage %s of max %s, below the 75%% warning threshold; the load fits with headroom"
                   % (current.count, current.max_entries)]
        return {"status": "ok", "severity": "ok", "judged": True, "reasons": reasons, "usage_ratio": ratio}
    worst = max(found, key=lambda f: (_RANK[f[1]], _ORDER[f[0]]))
    return {"status": worst[0], "severity": worst[1], "judged": True, "reasons": [f[2] for f in found],
            "usage_ratio": ratio}


def _usage_findings(current, need, ratio, headroom):
    """(status, severity, reason) for a full table, drops and a load above max."""
    found, needed, current_max = [], need.load_needed, current.max_entries
    if not current_max:
        return found
    level = usage_severity(ratio)
    if level:
        found.append(("undersized", level[0], "the table is %.1f%% full (%s at %d%%)"
                      % (ratio * 100, level[0], level[1] * 100)))
    if need.pressure_seen:
        # Drops since boot may predate a raised max: critical only when happening now or the table is full.
        severe = need.pressure_live or ratio >= WARNING_RATIO
        found.append(("undersized", "critical" if severe else "warning",
                      "packets were dropped because the table was full (%s)" % ", ".join(need.pressure_seen)))
    if needed > current_max:
        found.append(("undersized", "critical", "the load needs %d entries, above the current max %d"
                      % (needed, current_max)))
    elif needed * headroom > current_max:
        found.append(("undersized", "warning", "the load needs %d entries: under the current max %d but"
                      " without %s headroom" % (needed, current_max, fmt(headroom))))
    return found


def _chain_findings(current):
    found = []
    if (current.stats_totals.get("chaintoolong") or 0) > 0:
        found.append(("chains_too_deep", "critical", "the kernel dropped packets on over-long hash chains"
                      " (chaintoolong=%d)" % current.stats_totals["chaintoolong"]))
    if current.max_entries and current.buckets:
        depth = current.max_entries / float(current.buckets)
        level = chain_depth_severity(depth)
        if level:
            found.append(("chains_too_deep", level[0], "max / buckets = %.1f: a full table averages %.1f"
                          " entries per chain (above %s)" % (depth, 2 * depth, fmt(2 * level[1]))))
    return found


def _oversized_findings(current, need, plan, machine, undersized):
    """A max whose full table would cost more than the budget, for a load far below it (never when undersized)."""
    found, current_max = [], current.max_entries
    if current_max and plan.budget_bytes is not None and not undersized:
        at_max = machine.table_bytes(current_max, current.buckets or 0)
        if at_max > plan.budget_bytes and current_max > OVERSIZED_FACTOR * max(plan.max_entries, 1):
            found.append(("oversized", "warning", "a full table at the current max %d would take %s, above the"
                          " budget %s, for a load that needs %d" % (
                              current_max, human_bytes(at_max), human_bytes(plan.budget_bytes), need.load_needed)))
    if current_max == 0:
        found.append(("oversized", "warning", "nf_conntrack_max is 0 (unlimited)"))
    return found
