# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side checks of the tune role: verify and the health gate."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel

# kube-proxy writes these itself with its default configuration (the settings module skips them).
KUBE_PROXY_KEYS = kernel.kube_proxy_keys(by_default_only=True)
# Signs of a full table: packets dropped, entries evicted early, clashes lost.
HEALTH_RATES = ("drop", "early_drop", "insert_failed")


def _int(value, what):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleFilterError("%s must be an integer, got %r" % (what, value))


def bucket_granularity(facts):
    """The kernel rounds buckets up to a whole page of list heads: PAGE_SIZE / 8 on 64-bit."""
    memory = (facts or {}).get("memory") or {}
    page = memory.get("page_size_bytes") or 4096
    head = memory.get("bucket_size_bytes") or 8
    return kernel.bucket_granularity(page, head)


def settings_mismatches(desired, facts, skipped=None, kube_proxy="respect"):
    """Keys whose runtime value (from the facts) differs from the desired one.

    Keys the settings module skipped, global keys outside the initial namespace and,
    with kube_proxy=respect, the keys kube-proxy owns are not expected to change.
    """
    if not isinstance(desired, dict):
        raise AnsibleFilterError("settings_mismatches: desired must be a dict of kernel keys")
    if not isinstance(facts, dict):
        raise AnsibleFilterError("settings_mismatches: facts must be the conntrack facts dict")
    ignore = set(skipped or ())
    if facts.get("host_settable") is False or facts.get("initial_netns") is False:
        # Global in the kernel: read-only outside the initial network namespace.
        ignore.update(kernel.GLOBAL_KEYS)
    if kube_proxy == "respect" and (facts.get("environment") or {}).get("kube_proxy_running"):
        ignore.update(KUBE_PROXY_KEYS)
    runtime = facts.get("settings") or {}
    granularity = bucket_granularity(facts)
    mismatches = {}
    for key in sorted(desired):
        if key in ignore:
            continue
        want = _int(desired[key], key)
        if key == "nf_conntrack_buckets":
            want = kernel.round_buckets(want, granularity)
        have = runtime.get(key)
        if have is None or int(have) != want:
            mismatches[key] = {"desired": want, "runtime": have}
    return mismatches


def _rates(facts):
    sample = ((facts or {}).get("stats") or {}).get("sample") or {}
    return sample.get("rates_per_second") or {}


def _table_full(facts):
    return int(((facts or {}).get("kernel_log") or {}).get("table_full_count") or 0)


def _new_table_full(start, end):
    """Table-full messages logged between two reads of the facts.

    The count alone can stand still while messages arrive: a ring buffer full of them
    drops one old line per new one. The time of the last message moving on tells.
    """
    new = max(0, _table_full(end) - _table_full(start))
    seen_start = ((start or {}).get("kernel_log") or {}).get("last_seen_seconds_since_boot")
    seen_end = ((end or {}).get("kernel_log") or {}).get("last_seen_seconds_since_boot")
    if seen_end is not None and (seen_start is None or float(seen_end) > float(seen_start)):
        new = max(new, 1)
    return new


def health_regressions(after, before, after_start=None, before_start=None,
                       tolerance_per_second=0.0, table_full_tolerance=0):
    """Reasons why a host looks worse after tuning than before; empty when healthy.

    ``before``/``after`` are facts with a sample window; ``*_start`` are facts read just
    before each window, so that table-full messages are counted inside the windows only.
    """
    reasons = []
    rates_before, rates_after = _rates(before), _rates(after)
    tolerance = float(tolerance_per_second)
    # No rates without a stats source on this host: nothing to judge them by.
    for name in HEALTH_RATES if rates_after else ():
        was = float(rates_before.get(name) or 0.0)
        now = float(rates_after.get(name) or 0.0)
        if now > was + tolerance:
            reasons.append("%s rate rose from %.2f/s to %.2f/s (tolerance %.2f/s)" % (name, was, now, tolerance))
    if after_start is not None:
        new_after = _new_table_full(after_start, after)
        new_before = 0
        if before_start is not None and before is not None:
            new_before = _new_table_full(before_start, before)
        if new_after > new_before + int(table_full_tolerance):
            reasons.append("%d 'table full' kernel messages in the window after tuning, %d before"
                           % (new_after, new_before))
    return reasons


class FilterModule(object):
    def filters(self):
        return {
            "settings_mismatches": settings_mismatches,
            "health_regressions": health_regressions,
        }
