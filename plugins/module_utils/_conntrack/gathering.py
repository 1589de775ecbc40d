# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The facts dict in one pass: a FactsReader runs each section's step over one Reader.

Private to this collection: not an API. The dict's shape is the contract in CONTRIBUTING.md
("The facts dict"). The Reader carries the seams (paths under a root, the command runner, the
clock); ReadOptions carries what the facts module was asked for. Nothing here raises on an
unreadable file: the fact becomes null and a warning says why.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
from collections import namedtuple

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import datapath, kernel_log, kubeproxy
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import memory, namespaces, nat, reading, tuning_record
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import table as table_walk

MAX_SAMPLE_SECONDS = 300
MAX_TOP_SOURCES = 1000

# The facts module's options, with its defaults.
ReadOptions = namedtuple("ReadOptions", [
    "table", "table_limit", "table_source", "top_sources", "sample_seconds", "kernel_log", "environment",
    "record_file", "namespaces", "namespaces_table"])
ReadOptions.__new__.__defaults__ = (False, None, "auto", 10, 0, True, True, reading.RECORD_FILE, "none", False)


def option_problem(table_limit=None, top_sources=10, sample_seconds=0):
    """Why the reading options are refused (a message for fail_json), or None: the one rule for
    the facts module and for recommend when it reads the host itself."""
    if table_limit is not None and table_limit < 1:
        return "table_limit must be at least 1 (leave it unset for the whole table)"
    if not 0 <= top_sources <= MAX_TOP_SOURCES:
        return "top_sources must be between 0 and %d" % MAX_TOP_SOURCES
    if not 0 <= sample_seconds <= MAX_SAMPLE_SECONDS:
        return "sample_seconds must be between 0 and %d" % MAX_SAMPLE_SECONDS
    return None


def host_reader(module):
    """A Reader of the managed node through an AnsibleModule: commands run with its run_command
    (LC_ALL=C, so that their output parses), found with its get_bin_path."""

    def run_command(argv):
        return module.run_command(argv, check_rc=False, environ_update={"LC_ALL": "C"})

    return reading.Reader("/", run_command=run_command, which=module.get_bin_path)


def gather_on_host(module, options):
    """The facts of the managed node, through an AnsibleModule: (facts, warnings)."""
    return FactsReader(host_reader(module), options).gather()


def empty_facts():
    return {
        "schema_version": reading.SCHEMA_VERSION, "available": False, "active": False, "module": "unknown",
        "kernel_release": None, "initial_netns": None, "host_settable": None, "settings": {},
        "module_parameters": {}, "usage": None, "stats": None, "kernel_log": None, "memory": None,
        "table": None, "environment": None, "warnings": [],
    }


def _guarded(r, what, fn, *args, **kwargs):
    """Run one section; an unexpected error becomes a warning and a null fact, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # partial facts beat no facts
        r.warn("could not read %s: %s: %s" % (what, type(exc).__name__, exc))
        return None


def read_table(r, limit=None, top_sources=10, source="auto"):
    path = reading.TABLE_FILE
    if source in ("auto", "proc") and r.exists(path):
        try:
            return table_walk.walk_proc(r.path(path), limit=limit, top_sources=top_sources)
        except (IOError, OSError) as exc:
            r.warn("cannot read %s: %s" % (path, exc.strerror or exc))
    if source in ("auto", "conntrack") and not reading.module_present(r, "nf_conntrack_netlink"):
        r.warn("cannot walk the table: %s is missing, and conntrack -L would load nf_conntrack_netlink" % path)
    elif source in ("auto", "conntrack"):
        binary = r.which("conntrack")
        if binary:
            try:
                return table_walk.walk_conntrack([binary, "-L", "-o", "extended"], limit=limit,
                                                 top_sources=top_sources, popen=r.popen)
            except (IOError, OSError) as exc:
                r.warn("conntrack -L failed: %s" % exc)
        else:
            r.warn("cannot walk the table: %s is missing and conntrack-tools is not installed" % path
                   if source == "auto" else "cannot walk the table: conntrack-tools is not installed")
    elif source == "proc":
        r.warn("cannot walk the table: %s is missing" % path)
    return None


def read_environment(r, settings, module_type, page_size, record_file=reading.RECORD_FILE):
    ip_forward = r.read_int("/proc/sys/net/ipv4/ip_forward")
    present, source = nat.read_nat(r)
    persistent = reading.read_persistent(r)
    record, record_error = tuning_record.read_tuning_record(r, record_file)
    return {
        "tuning_record": record,
        "tuning_record_error": record_error,
        "kube_proxy_running": reading.kube_proxy_running(r),
        "nat_rules_present": present,
        "nat_rules_source": source,
        "ip_forward": None if ip_forward is None else bool(ip_forward),
        "persistent": persistent,
        "drift": reading.build_drift(settings, persistent, module_type, page_size),
    }


class FactsReader(object):
    """Reads the facts dict (CONTRIBUTING.md, schema_version 1) in one pass over ``reader``,
    as ``options`` ask; gather() returns (facts, warnings)."""

    def __init__(self, reader, options=None):
        self.r = reader
        self.options = options or ReadOptions()
        self.page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def gather(self):
        r, o = self.r, self.options
        facts = empty_facts()
        facts.update(self.identity())
        if facts["available"]:
            facts.update(self.counters())
        else:
            facts["host_settable"] = False
        if o.kernel_log:
            facts["kernel_log"] = _guarded(r, "the kernel log", kernel_log.read_kernel_log, r)
        if facts["available"]:
            facts["memory"] = _guarded(r, "the memory figures", memory.read_memory, r, facts["usage"]["buckets"])
            if o.table:
                facts["table"] = _guarded(r, "the table", read_table, r, limit=o.table_limit,
                                          top_sources=o.top_sources, source=o.table_source)
        if o.environment:
            facts["environment"] = _guarded(r, "the environment", read_environment, r, facts["settings"],
                                            facts["module"], self.page_size, record_file=o.record_file)
        self.beyond_this_namespace(facts)
        warnings = list(r.warnings)
        facts["warnings"] = list(warnings)
        return facts, warnings

    def identity(self):
        """What kernel this is and whether conntrack is there at all."""
        r = self.r
        release = r.read("/proc/sys/kernel/osrelease")
        release = release.strip() if release else None
        module_type = _guarded(r, "the module type", reading.read_module_type, r, release) or "unknown"
        initial, settable = _guarded(r, "the namespace", reading.read_namespace, r) or (None, None)
        return {
            "kernel_release": release,
            "module": module_type,
            "available": r.exists(reading.NETFILTER + "/nf_conntrack_max") or r.exists(reading.STAT_FILE),
            "initial_netns": initial,
            "host_settable": settable,
        }

    def counters(self):
        """The settings, the usage they give, and the statistics (with a sample when asked)."""
        r = self.r
        settings = _guarded(r, "the settings", reading.read_settings, r) or {}
        parameters = _guarded(r, "the module parameters", reading.read_module_parameters, r) or {}
        usage = reading.build_usage(settings)
        raw = _guarded(r, "the statistics", reading.read_stats_raw, r) or ("none", [], [])
        stats = reading.build_stats(*raw)
        if self.options.sample_seconds and self.options.sample_seconds > 0 and raw[0] != "none":
            stats["sample"] = self.sample(raw, usage["count"])
        return {"settings": settings, "module_parameters": parameters, "usage": usage, "stats": stats,
                "active": raw[0] != "none" or usage["count"] is not None}

    def sample(self, before, count_before):
        r, seconds = self.r, self.options.sample_seconds
        start = r.clock.monotonic()
        r.clock.sleep(seconds)
        after = _guarded(r, "the statistics", reading.read_stats_raw, r) or ("none", [], [])
        elapsed = max(r.clock.monotonic() - start, seconds) if r.live else seconds
        count_after = r.read_int(reading.NETFILTER + "/nf_conntrack_count")
        return reading.build_sample(round(elapsed, 3), before, after, count_before, count_after)

    def beyond_this_namespace(self, facts):
        """The datapath and kube-proxy's settings (under the environment), and every namespace
        when asked."""
        r, o = self.r, self.options
        env = facts.get("environment")
        steps = []
        if o.environment and isinstance(env, dict):
            steps.append(("datapath", lambda: env.__setitem__("datapath", datapath.read_datapath(r))))
            if env.get("kube_proxy_running"):
                steps.append(("kube-proxy", lambda: env.__setitem__("kube_proxy", kubeproxy.read_kube_proxy(r))))
        if o.namespaces not in (None, "none"):
            steps.append(("namespaces", lambda: facts.__setitem__("namespaces", namespaces.read_namespaces(
                r, table=o.namespaces_table, table_limit=o.table_limit, top_sources=o.top_sources))))
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # partial facts beat no facts
                r.warn("could not read the %s: %s: %s" % (what, type(exc).__name__, exc))
