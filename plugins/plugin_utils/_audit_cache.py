# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every host's audit record from the fact cache alone, for the audit_cached filter and the
cache_audit action.

The per-host audit runs the recommend module once per host and keeps its record in a per-host
fact: each of those is a task per host, which is what a fleet of thousands pays for. Here the
same recommendation (the module's own code, forced as the audit uses it) is computed for each
host from its cached ``ansible_facts.conntrack``."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy, sizing
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit

# The recommend inputs a host's own variables (group_vars, host_vars) may set in a cache audit,
# under their names and their names before 0.3.0.
HOST_INPUTS = (("profile", ("conntrack_audit_profile", "audit_profile")),
               ("memory_budget", ("conntrack_audit_memory_budget", "audit_memory_budget")),
               ("target_chain_depth", ("conntrack_audit_target_chain_depth", "audit_target_chain_depth")),
               ("peak_entries", ("conntrack_audit_peak_entries", "audit_peak_entries")))

NOT_CACHED = "no conntrack facts in the fact cache (run netfilter.conntrack.facts with fact caching first)"


def get(mapping, key, default=None):
    """mapping[key], or default when it is missing or None, or mapping is not a mapping (a
    registered result of a skipped or failed task can be anything)."""
    try:
        value = mapping.get(key, default)
    except AttributeError:
        return default
    return default if value is None else value


def inputs(profile="default", memory_budget="10%", target_chain_depth=None, peak_entries=None):
    """The play's recommend inputs, as the audit passes them to the recommendation."""
    out = {"profile": profile, "memory_budget": memory_budget, "force": True}
    if target_chain_depth is not None:
        out["target_chain_depth"] = target_chain_depth
    if peak_entries is not None:
        out["peak_entries"] = peak_entries
    return out


def host_inputs(variables, play_inputs):
    """The recommend inputs for one host: the play's, with what the host's own variables set."""
    own = dict(play_inputs)
    for key, names in HOST_INPUTS:
        for name in names:
            if name in variables and variables[name] not in (None, ""):
                own[key] = variables[name]
                break
    return own


def record(name, variables, play_inputs):
    """One host's record from its variables (None: not a host of the inventory)."""
    if variables is None:
        return {"host": name, "status": "failed", "error": "not a host of the inventory", "facts": None,
                "recommendation": None}
    # Plain data for the sizing code, as the recommend module gets it from its arguments.
    facts = _audit.plain(get(get(variables, "ansible_facts", {}), "conntrack"))
    if not facts:
        return {"host": name, "status": "failed", "error": NOT_CACHED, "facts": None, "recommendation": None}
    out = {"host": name, "status": "ok", "error": None, "facts": facts, "recommendation": None}
    if get(facts, "available"):
        try:
            out["recommendation"] = _audit.plain(kubeproxy.recommend(facts, **host_inputs(variables, play_inputs)))
        except sizing.SizingError as exc:
            out["recommendation_error"] = str(exc)
    return out


def judge(hosts, hostvars, play_inputs):
    """The records of ``hosts`` (inventory names), read from ``hostvars``."""
    records = []
    for host in hosts:
        name = str(host)
        # Membership first: an unknown name's hostvars entry is an Undefined that ansible-core
        # 2.19 cannot even build outside a template.
        variables = hostvars[name] if name in hostvars else None
        records.append(record(name, variables, play_inputs))
    return records
