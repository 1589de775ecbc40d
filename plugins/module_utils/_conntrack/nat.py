# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether this namespace has NAT rules, from nftables or the legacy iptables nat table.

Read-only: no tool runs that would load a kernel module.

Private to this collection: not an API.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import reading

NAT_STATEMENT = re.compile(r"\b(masquerade|snat|dnat|redirect)\b", re.I)
NFT_TABLE = re.compile(r"^table (\S+) (\S+) \{")


def _nft_nat(r, notes):
    """True/False from nftables, or None. Lists chains first (no rules, cheap even with
    a big ruleset), then only the tables that have a nat base chain. Not at all when
    nf_tables is not loaded: then there are no nftables rules, and nft would load it."""
    if not reading.module_present(r, "nf_tables"):
        return False
    res = r.command(["nft", "list", "chains"])
    if res is None:
        return None
    if res[0] != 0:
        notes.append("nft list chains: %s" % (res[2].strip() or res[0]))
        return None
    tables, current = [], None
    for line in res[1].splitlines():
        m = NFT_TABLE.match(line.strip())
        if m:
            current = (m.group(1), m.group(2))
        elif "type nat hook" in line and current and current not in tables:
            tables.append(current)
    for family, name in tables:
        res = r.command(["nft", "list", "table", family, name])
        if res is None or res[0] != 0:
            notes.append("nft list table %s %s: %s" % (family, name, res and (res[2].strip() or res[0])))
            continue
        rules = [line for line in res[1].splitlines() if "type nat hook" not in line]
        if any(NAT_STATEMENT.search(line) for line in rules):
            return True
    return False


def read_nat(r):
    """(present, source). nftables first; the legacy iptables nat table only when the
    kernel already has it (/proc/net/ip_tables_names), because iptables-save would
    load the nat module otherwise."""
    notes = []
    present = _nft_nat(r, notes)
    source = "nftables" if present is not None else None
    if present:
        return present, source
    for names_file, tools in (("/proc/net/ip_tables_names", ("iptables-legacy-save", "iptables-save")),
                              ("/proc/net/ip6_tables_names", ("ip6tables-legacy-save", "ip6tables-save"))):
        if "nat" not in (r.read(names_file) or "").split():
            continue
        for tool in tools:
            res = r.command([tool, "-t", "nat"])
            if res is None:
                continue
            if res[0] != 0:
                notes.append("%s: %s" % (tool, res[2].strip() or res[0]))
            elif re.search(r"^-A ", res[1], re.M):
                return True, "iptables"
            else:
                present, source = False, source or "iptables"
            break
    if present is None and r.live and r.which("nft") is None:
        notes.append("nft is not installed")
    if present is None and notes:
        r.warn("cannot tell whether NAT rules exist: %s" % "; ".join(notes))
    return present, source
