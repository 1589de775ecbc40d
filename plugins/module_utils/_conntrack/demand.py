# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demand a saturated table hides: new flows per second from the counters, not the count.

When the table is full the count sits at max and TIME_WAIT closes run at max / lifetime,
so both say "max" whatever the load. What still moves with the load is what the kernel
did with each new flow over a sample window: it got an entry (``insert``, or where the
kernel no longer counts that, count / lifetime plus the growth) or it was refused
(``drop``). Their sum is the rate at which new flows arrived. Pure: no I/O.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.values import number


def _delta(deltas, key):
    value = deltas.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _admitted(deltas, seconds, count, lifetime_now_seconds):
    """New flows per second that got an entry, and how that was told."""
    inserts = _delta(deltas, "insert")
    if inserts:
        return inserts / float(seconds), "insert %s/s" % _fmt(inserts / float(seconds))
    # Linux 4.10 and later stopped counting `insert` on the packet path (it reads 0).
    # A table in steady state loses count / lifetime entries a second, and takes as many
    # new ones, plus what it grew by over the window.
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0 or not lifetime_now_seconds:
        return None, None
    growth = deltas.get("count") if isinstance(deltas.get("count"), int) else 0
    mean_count = count + growth / 2.0
    rate = max(0.0, mean_count / float(lifetime_now_seconds) + growth / float(seconds))
    return rate, "admitted %s/s (count %d / %s s per entry%s; the kernel does not count insert)" % (
        _fmt(rate), int(round(mean_count)), _fmt(lifetime_now_seconds),
        ", %+d over the window" % growth if growth else "")


def saturated_demand(sample, count, lifetime_now_seconds, lifetime_seconds):
    """Entries the offered load needs, from a stats sample taken while new flows were dropped.

    ``sample`` is the facts' ``stats.sample`` ({seconds, deltas}) and ``count`` the count when
    it started. ``lifetime_now_seconds`` is how long one flow holds its entry under the
    timeouts in force, ``lifetime_seconds`` under the timeouts about to be applied (for short
    TCP connections: their duration plus time_wait). Returns None when the sample cannot
    tell: no sample, no drops in it (the table kept up, so the count already says the
    demand), or neither an ``insert`` counter nor a count. Otherwise a dict with the rates,
    the entries and ``how``, a sentence saying how the figure was obtained.

    A dropped SYN that the client retransmits (1 s, 3 s, ... later) is counted again by
    ``drop``, so the figure errs high, the safe side for a table size.
    """
    if not isinstance(sample, dict) or not isinstance(sample.get("deltas"), dict):
        return None
    seconds = sample.get("seconds")
    if not _positive(seconds) or not _positive(lifetime_seconds):
        return None
    drops = _delta(sample["deltas"], "drop")
    if not drops:
        return None
    admitted, admitted_how = _admitted(sample["deltas"], seconds, count,
                                       lifetime_now_seconds if _positive(lifetime_now_seconds) else None)
    if admitted is None:
        return None
    drops_per_second = drops / float(seconds)
    new_per_second = admitted + drops_per_second
    entries = int(math.ceil(new_per_second * lifetime_seconds))
    how = ("%s new flows/s over the %s s sample (%s + drop %s/s; a full table holds the count and the"
           " TIME_WAIT closes at max) x %s s per entry = %d entries"
           % (_fmt(new_per_second), _fmt(seconds), admitted_how, _fmt(drops_per_second),
              _fmt(lifetime_seconds), entries))
    return {"new_per_second": round(new_per_second, 3), "admitted_per_second": round(admitted, 3),
            "drops_per_second": round(drops_per_second, 3), "sample_seconds": seconds,
            "lifetime_seconds": lifetime_seconds, "entries": entries, "how": how}


def _positive(num):
    return (number(num) or 0) > 0


def _fmt(num):
    num = round(float(num), 1)
    return str(int(num)) if num == int(num) else str(num)
