# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet audit's rule engine (controller side, private).

``build_report(hosts, thresholds)`` turns what the role collected on every host
(the facts dict, the recommendation, or why neither is there) into the fleet
report dict that every renderer in ``_audit_render`` reads. No I/O here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.verdict import FULL_RATIO, WARNING_RATIO
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.values import dig as _get
from ansible_collections.netfilter.conntrack.plugins.plugin_utils._audit_rules import (
    RULES, SEVERITIES, _finding, _num, memory_at_max, severity_rank, worst,
)

REPORT_VERSION = 1

STATUSES = ("ok", "failed", "unreachable")

DEFAULT_THRESHOLDS = {
    # 75% is where node-mixin's NodeHighNumberConntrackEntriesUsed alert fires. netdata's
    # netfilter_conntrack_full warns above 90% and is critical above 95%: our critical is
    # its warning. The recommend module's verdict uses the same two levels.
    "usage_warning_ratio": WARNING_RATIO,
    "usage_critical_ratio": FULL_RATIO,
    # max / buckets. The kernel's boot default is 1, kube-proxy's 4 (the recommend verdict's
    # limit too); the old "hashsize = max / 8" advice gives 8.
    "chain_depth_warning": kernel.DEEP_CHAIN_DEPTH,
    "chain_depth_critical": 16.0,
    # Used when the recommendation carries no budget: share of RAM that a full table may use.
    "memory_budget_share": 0.10,
    # Share of the walked table held by one TCP state before it counts as a pile-up.
    "time_wait_share_warning": 0.50,
    "established_share_warning": 0.80,
    # Timeouts beyond which such a pile-up is blamed on the timeout.
    "time_wait_timeout_seconds": 60,
    "established_timeout_seconds": 86400,
    # A pile-up matters only once the state holds this share of nf_conntrack_max.
    "pileup_min_usage_ratio": 0.10,
    # How a host that could not be audited counts for the gate.
    "unreachable_severity": "warning",
}


def plain(value):
    """Copy nested mappings and sequences into plain dict/list/str/int/float/bool/None."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return dict((str(k), plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return str(value)


def merge_thresholds(overrides=None):
    thresholds = dict(DEFAULT_THRESHOLDS)
    for key, value in (overrides or {}).items():
        if key not in DEFAULT_THRESHOLDS:
            raise ValueError("unknown audit threshold %r (known: %s)" % (key, ", ".join(sorted(DEFAULT_THRESHOLDS))))
        if value is None:
            continue
        if key == "unreachable_severity":
            if value not in SEVERITIES:
                raise ValueError("unreachable_severity must be one of %s, not %r" % (", ".join(SEVERITIES), value))
            thresholds[key] = value
            continue
        try:
            thresholds[key] = float(value)
        except (TypeError, ValueError):
            raise ValueError("audit threshold %s must be a number, not %r" % (key, value))
    if thresholds["usage_warning_ratio"] > thresholds["usage_critical_ratio"]:
        raise ValueError("usage_warning_ratio must not be above usage_critical_ratio")
    return thresholds


# The signal rules that a cause of the advisor accounts for when both are found on one host:
# the report shows them under their cause, as its evidence, instead of as problems of their own.
CAUSE_SIGNALS = {
    "cause_table_full": ("usage", "drop_rising", "drop_total", "early_drop_rising", "early_drop_total",
                         "table_full_logged", "verdict_undersized"),
    "cause_chains_too_deep": ("chain_depth", "chaintoolong_rising", "chaintoolong_total",
                              "verdict_chains_too_deep"),
    "cause_udp_insert_race": ("insert_failed_rising", "insert_failed_total"),
}


def link_causes(findings):
    """Mark each signal finding with the cause found beside it (``cause``, else None) and each cause
    with the signals it explains (``explains``). Nothing is removed: counts and severities stay."""
    for f in findings:
        f["cause"] = None
    for f in findings:
        signals = CAUSE_SIGNALS.get(f["rule"])
        if signals is None:
            continue
        for g in findings:
            # A signal more severe than the cause stands on its own, so that no critical hides.
            if g["rule"] in signals and g["cause"] is None and \
                    severity_rank(g["severity"]) <= severity_rank(f["severity"]):
                g["cause"] = f["rule"]
        f["explains"] = [g["rule"] for g in findings if g["cause"] == f["rule"]]


def host_metrics(facts, rec, thresholds):
    """The flat numbers of one host: the CSV row, the charts and the textfile read these."""
    usage = _get(facts, "usage") or {}
    memory = _get(facts, "memory") or {}
    totals = _get(facts, "stats", "totals") or {}
    rates = _get(facts, "stats", "sample", "rates_per_second") or {}
    count = _num(usage.get("count"))
    cmax = _num(usage.get("max"))
    ratio = _num(usage.get("usage_ratio"))
    if ratio is None and count is not None and cmax:
        ratio = count / float(cmax)
    hash_bytes = _num(memory.get("hash_table_bytes"))
    in_use = None
    if memory.get("slab_bytes_in_use") is not None or hash_bytes is not None:
        in_use = int((_num(memory.get("slab_bytes_in_use")) or 0) + (hash_bytes or 0))
    at_max = memory_at_max(facts, rec)
    mem_total = _num(memory.get("mem_total_bytes"))
    budget = _num(_get(rec, "memory", "budget_bytes")) if rec else None
    if not budget and mem_total:
        budget = int(mem_total * thresholds["memory_budget_share"])
    rec_settings = (rec or {}).get("settings") or {}
    comparison = (rec or {}).get("comparison") or {}
    changes = sorted(k for k, v in comparison.items() if isinstance(v, dict) and v.get("change"))
    drift = _get(facts, "environment", "drift") or {}
    return {
        "count": count,
        "max": cmax,
        "buckets": _num(usage.get("buckets")),
        "usage_ratio": ratio,
        "usage_percent": round(ratio * 100.0, 2) if ratio is not None else None,
        "chain_depth_at_max": _num(usage.get("chain_depth_at_max")) if usage.get("chain_depth_at_max") is not None
        else ((cmax / float(usage["buckets"])) if cmax and usage.get("buckets") else None),
        "recommended_max": _num(rec_settings.get("nf_conntrack_max")),
        "recommended_buckets": _num(rec_settings.get("nf_conntrack_buckets")),
        "memory_in_use_bytes": in_use,
        "memory_at_max_bytes": at_max,
        "recommended_memory_bytes": _num(_get(rec, "memory", "total_bytes")) if rec else None,
        "memory_budget_bytes": int(budget) if budget else None,
        "mem_total_bytes": mem_total,
        "drop_total": _num(totals.get("drop")),
        "early_drop_total": _num(totals.get("early_drop")),
        "insert_failed_total": _num(totals.get("insert_failed")),
        "chaintoolong_total": _num(totals.get("chaintoolong")),
        "drop_rising": bool(_num(rates.get("drop"))),
        "table_full_count": _num(_get(facts, "kernel_log", "table_full_count")),
        "kube_proxy_running": _get(facts, "environment", "kube_proxy_running"),
        "not_persisted": sorted(drift),
        "differs_from_recommended": changes,
        "kernel_release": facts.get("kernel_release"),
    }


def evaluate_host(entry, thresholds):
    """One host's entry of the report from the role's record of it."""
    name = str(entry.get("host"))
    status = entry.get("status") or "ok"
    facts = entry.get("facts") or None
    rec = entry.get("recommendation") or None
    if status == "ok" and not facts:
        status = "failed"
        entry = dict(entry, error=entry.get("error") or "no conntrack facts were gathered")
    if status not in STATUSES:
        raise ValueError("host %s: unknown status %r" % (name, status))
    result = {
        "host": name,
        "status": status,
        "error": entry.get("error"),
        "severity": "ok",
        "findings": [],
        "counts": dict((s, 0) for s in SEVERITIES if s != "ok"),
        "metrics": None,
        "recommendation": None,
        "facts": facts,
    }
    if status != "ok":
        sev = thresholds["unreachable_severity"]
        what = "unreachable" if status == "unreachable" else "failed"
        result["findings"] = [_finding(what, sev, "host %s: %s" % (what, entry.get("error") or "no details"),
                                       None, None)]
    else:
        metrics = host_metrics(facts, rec, thresholds)
        result["metrics"] = metrics
        if entry.get("recommendation_error"):
            metrics = dict(metrics, recommendation_error=entry["recommendation_error"])
        if rec:
            result["recommendation"] = {
                "settings": rec.get("settings") or {},
                "reasons": rec.get("reasons") or {},
                "verdict": rec.get("verdict") or {},
                "comparison": rec.get("comparison") or {},
                "memory": rec.get("memory") or {},
                "tradeoffs": rec.get("tradeoffs") or [],
            }
        for rule in RULES:
            result["findings"].extend(rule(facts, rec, metrics, thresholds))
    result["findings"].sort(key=lambda f: (-severity_rank(f["severity"]), f["rule"]))
    link_causes(result["findings"])
    for f in result["findings"]:
        if f["severity"] in result["counts"]:
            result["counts"][f["severity"]] += 1
    result["severity"] = worst(f["severity"] for f in result["findings"])
    return result


def build_report(hosts, thresholds=None, generated_at=None, fail_on="never"):
    """The fleet report: ``hosts`` is a list of {host, status, error, facts, recommendation}."""
    thresholds = merge_thresholds(thresholds)
    if fail_on not in ("never", "warning", "critical"):
        raise ValueError("fail_on must be never, warning or critical, not %r" % (fail_on,))
    if generated_at is None:
        generated_at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    seen = set()
    entries = []
    for entry in plain(hosts or []):
        if entry.get("host") in seen:
            continue
        seen.add(entry.get("host"))
        entries.append(evaluate_host(entry, thresholds))
    by_severity = dict((s, 0) for s in SEVERITIES)
    by_status = dict((s, 0) for s in STATUSES)
    for h in entries:
        by_severity[h["severity"]] += 1
        by_status[h["status"]] += 1
    worst_sev = worst(h["severity"] for h in entries)
    failing = []
    if fail_on != "never":
        failing = [h["host"] for h in entries if severity_rank(h["severity"]) >= severity_rank(fail_on)]
    return {
        "version": REPORT_VERSION,
        "kind": "netfilter.conntrack.audit",
        "generated_at": generated_at,
        "thresholds": thresholds,
        "summary": {
            "hosts": len(entries),
            "by_status": by_status,
            "by_severity": by_severity,
            "worst_severity": worst_sev,
        },
        "gate": {"fail_on": fail_on, "failed": bool(failing), "hosts": failing},
        "hosts": entries,
    }
