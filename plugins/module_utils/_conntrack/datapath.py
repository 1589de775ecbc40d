# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where else connection state lives: an eBPF datapath's own conntrack maps, or the
connection-tracking allowance of an AWS ENA interface. Read for the drop advisor, so that it
does not recommend a bigger nf_conntrack table when that table is not the limit.

Private to this collection: not an API. Stdlib only; ``ethtool -S`` runs only where the binary
and an ENA device exist.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

BPF_GLOBALS = "/sys/fs/bpf/tc/globals"
# Pinned conntrack maps by datapath: Cilium's cilium_ct4_global / cilium_ct_any4_global,
# Calico eBPF's cali_v4_ct*.
BPF_CT_MAPS = (("cilium", re.compile(r"^cilium_ct")), ("calico", re.compile(r"^cali_v[46]_ct")))
CILIUM_SOCKETS = ("/var/run/cilium/cilium.sock", "/run/cilium/cilium.sock")
ENA_COUNTERS = ("conntrack_allowance_exceeded", "conntrack_allowance_available")


def read_ebpf(r):
    """(name of the eBPF datapath or None, evidence or None)."""
    for name in r.listdir(BPF_GLOBALS):
        for datapath, pattern in BPF_CT_MAPS:
            if pattern.match(name):
                return datapath, "pinned map %s/%s" % (BPF_GLOBALS, name)
    for path in CILIUM_SOCKETS:
        if r.exists(path):
            return "cilium", "agent socket %s" % path
    return None, None


def ena_interfaces(r):
    out = []
    for name in r.listdir("/sys/class/net"):
        try:
            driver = os.path.basename(os.readlink(r.path("/sys/class/net/%s/device/driver" % name)))
        except OSError:
            continue
        if driver == "ena":
            out.append(name)
    return out


def parse_ethtool_stats(text):
    values = {}
    for line in (text or "").splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        key = key.strip()
        if key in ENA_COUNTERS:
            try:
                values[key] = int(value.strip())
            except ValueError:
                continue
    return values


def read_ena(r):
    """[{interface, conntrack_allowance_exceeded, conntrack_allowance_available}], note or None."""
    names = ena_interfaces(r)
    if not names:
        return [], None
    found = []
    for name in names:
        res = r.command(["ethtool", "-S", name])
        if res is None:
            return [], "ENA interfaces %s found but ethtool is not installed" % ", ".join(names)
        if res[0] != 0:
            found.append({"interface": name, "error": (res[2].strip() or str(res[0]))})
            continue
        entry = {"interface": name}
        entry.update(dict((k, None) for k in ENA_COUNTERS))
        entry.update(parse_ethtool_stats(res[1]))
        found.append(entry)
    return found, None


def read_datapath(r):
    ebpf, evidence = read_ebpf(r)
    ena, note = read_ena(r)
    return {"ebpf": ebpf, "ebpf_evidence": evidence, "ena": ena, "ena_note": note}
