# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demand a saturated table hides: new flows per second from the counters, not the count.

When the table is full the count sits at max and TIME_WAIT closes run at max / lifetime,
so both say "max" whatever the load. What still moves with the load is what the kernel
did with each new flow over a sample window: ``insert`` (it got an entry) and ``drop``
(it was refused). Their sum is the rate at which new flows arrived. Pure: no I/O.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math


def _delta(deltas, key):
    value = deltas.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def saturated_demand(sample, lifetime_seconds):
    """Entries the offered load needs, from a stats sample taken while new flows were dropped.

    ``sample`` is the facts' ``stats.sample`` ({seconds, deltas}); ``lifetime_seconds`` is how
    long one flow holds its entry under the timeouts about to be applied (for short TCP
    connections: their duration plus time_wait). Returns None when the sample cannot tell:
    no sample, no drops in it (the table kept up, so the count already says the demand),
    or no ``insert`` counter. Otherwise a dict with the rates, the entries and ``how``, a
    sentence saying how the figure was obtained.

    A dropped SYN is retried by the client (1 s, 3 s, ... later), so ``drop`` counts some
    flows more than once: the figure errs high, the safe side for a table size.
    """
    if not isinstance(sample, dict) or not isinstance(sample.get("deltas"), dict):
        return None
    seconds = sample.get("seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
        return None
    if not isinstance(lifetime_seconds, (int, float)) or lifetime_seconds <= 0:
        return None
    inserts = _delta(sample["deltas"], "insert")
    drops = _delta(sample["deltas"], "drop")
    if inserts is None or not drops:
        return None
    inserts_per_second = inserts / float(seconds)
    drops_per_second = drops / float(seconds)
    new_per_second = inserts_per_second + drops_per_second
    entries = int(math.ceil(new_per_second * lifetime_seconds))
    how = ("%s new flows/s over the %s s sample (insert %s/s + drop %s/s: the table was full, so the"
           " count and the TIME_WAIT closes show only max) x %s s per entry = %d entries"
           % (_fmt(new_per_second), _fmt(seconds), _fmt(inserts_per_second), _fmt(drops_per_second),
              _fmt(lifetime_seconds), entries))
    return {"new_per_second": round(new_per_second, 3), "inserts_per_second": round(inserts_per_second, 3),
            "drops_per_second": round(drops_per_second, 3), "sample_seconds": seconds,
            "lifetime_seconds": lifetime_seconds, "entries": entries, "how": how}


def _fmt(num):
    num = round(float(num), 1)
    return str(int(num)) if num == int(num) else str(num)
