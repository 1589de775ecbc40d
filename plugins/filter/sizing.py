# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side filters over the pure sizing core (module_utils/_conntrack/sizing.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel, sizing
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.sizing_inputs import checked_number


def _count(name, value, minimum=0):
    try:
        return checked_number(name, value, minimum=minimum, integer=True, allow_none=False)
    except sizing.SizingError as exc:
        raise AnsibleFilterError(str(exc))


def _depth(value):
    try:
        depth = checked_number("chain_depth", value, allow_none=False)
    except sizing.SizingError as exc:
        raise AnsibleFilterError(str(exc))
    if depth <= 0 or depth > 64:
        raise AnsibleFilterError("chain_depth must be above 0 and at most 64, got %r" % (value,))
    return depth


def conntrack_buckets(max_entries, chain_depth=1, page_size_bytes=4096):
    """Buckets for max_entries at chain_depth (max / buckets), rounded up like the kernel."""
    entries = _count("max_entries", max_entries)
    page = _count("page_size_bytes", page_size_bytes, minimum=512)
    return sizing.buckets_for(entries, _depth(chain_depth), page)


def conntrack_memory(entries, buckets=None, entry_bytes=256, bucket_bytes=8, extension_bytes=0, chain_depth=1):
    """Kernel bytes of a table: entries x (entry_bytes + extension_bytes) + buckets x bucket_bytes."""
    count = _count("entries", entries)
    if buckets is None:
        buckets = sizing.buckets_for(count, _depth(chain_depth))
    return sizing.memory_bytes(count, _count("buckets", buckets), _count("entry_bytes", entry_bytes, minimum=1),
                               _count("bucket_bytes", bucket_bytes, minimum=1),
                               _count("extension_bytes", extension_bytes))


def conntrack_default_max(mem_total_bytes):
    """nf_conntrack_max (== buckets) that a 64-bit 6.x kernel picks at boot for this RAM."""
    try:
        mem = sizing.parse_size(mem_total_bytes, "mem_total_bytes")
    except sizing.SizingError as exc:
        raise AnsibleFilterError(str(exc))
    return kernel.kernel_default_max(mem)


class FilterModule(object):

    def filters(self):
        return {
            "conntrack_buckets": conntrack_buckets,
            "conntrack_memory": conntrack_memory,
            "conntrack_default_max": conntrack_default_max,
        }
