# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the table costs in memory: the conntrack slab, the hash table, the host's RAM and CPUs.

Private to this collection: not an API.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel

SLAB_DIR = "/sys/kernel/slab/nf_conntrack"


def _first_int(text):
    try:
        return int(text.split()[0])
    except (ValueError, IndexError, AttributeError):
        return None


def read_memory(r, buckets):
    mem = {"source": "none", "object_size_bytes": None, "slab_size_bytes": None,
           "active_objects": None, "total_objects": None, "slab_bytes_in_use": None,
           "slab_merged": None}
    if r.exists(SLAB_DIR):
        values = {}
        for name in ("object_size", "slab_size", "objects", "total_objects"):
            values[name] = _first_int(r.read(SLAB_DIR + "/" + name, missing_ok=False))
        if values["slab_size"] is not None:
            mem.update(source="sysfs", object_size_bytes=values["object_size"],
                       slab_size_bytes=values["slab_size"], active_objects=values["objects"],
                       total_objects=values["total_objects"])
            # A merged cache is a symlink to a shared one: its counts include other users.
            mem["slab_merged"] = os.path.islink(r.path(SLAB_DIR))
    if mem["source"] == "none":
        text = r.read("/proc/slabinfo", missing_ok=True)
        if text is not None:
            for line in text.splitlines():
                words = line.split()
                if words and words[0] == "nf_conntrack" and len(words) >= 4:
                    # name active_objs num_objs objsize ...: objsize is the slab stride.
                    mem.update(source="slabinfo", active_objects=int(words[1]), total_objects=int(words[2]),
                               slab_size_bytes=int(words[3]))
                    break
    if mem["total_objects"] is not None and mem["slab_size_bytes"] is not None:
        mem["slab_bytes_in_use"] = mem["total_objects"] * mem["slab_size_bytes"]
    if mem["source"] == "none":
        r.warn("no nf_conntrack slab found in /sys/kernel/slab or /proc/slabinfo: per-entry memory is unknown")
    bucket_size = kernel.HOST_BUCKET_BYTES
    mem["bucket_size_bytes"] = bucket_size
    mem["hash_table_bytes"] = buckets * bucket_size if buckets is not None else None
    mem["mem_total_bytes"] = kernel.mem_total_bytes(r.read("/proc/meminfo"))
    mem["cpu_count"] = read_cpu_count(r)
    mem["page_size_bytes"] = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    return mem


def _count_cpu_list(text):
    total = 0
    for part in text.strip().split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            total += int(b) - int(a) + 1
        elif part:
            total += 1
    return total


def read_cpu_count(r):
    text = r.read("/sys/devices/system/cpu/online")
    if text and text.strip():
        try:
            return _count_cpu_list(text)
        except ValueError:
            pass
    cpuinfo = r.read("/proc/cpuinfo")
    if cpuinfo:
        n = len(re.findall(r"^processor\s*:", cpuinfo, re.M))
        if n:
            return n
    return os.cpu_count() if r.live else None
