# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet audit's rules (controller side, private): each takes one host's facts, its
recommendation, its metrics and the thresholds, and returns its findings. Pure; ``_audit``
runs them and assembles the report."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import advisor, kernel, sizing, units
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.verdict import (
    chain_depth_severity, usage_severity)
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.values import dig as _get


SEVERITIES = ("ok", "info", "warning", "critical")
_RANK = dict((name, rank) for rank, name in enumerate(SEVERITIES))


# Counters that mean lost or slowed connections when they grow.
_RISING_COUNTERS = (
    ("drop", "critical", "packets dropped because the table was full"),
    ("early_drop", "warning", "entries evicted early to make room"),
    ("insert_failed", "warning", "entries that could not be inserted"),
    ("chaintoolong", "warning", "insertions refused because a hash chain was too long"),
)


def severity_rank(name):
    return _RANK.get(name, 0)


def worst(names, default="ok"):
    result = default
    for name in names:
        if severity_rank(name) > severity_rank(result):
            result = name
    return result


def _num(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _finding(rule, severity, message, value=None, threshold=None, key=None):
    finding = {"rule": rule, "severity": severity, "message": message, "value": value, "threshold": threshold}
    if key is not None:
        finding["key"] = key
    return finding


def _pct(ratio):
    return "%.1f%%" % (ratio * 100.0)


def human_bytes(value):
    """Sizing's own formatting, so that a figure reads the same in the report and the recommendation."""
    return sizing.human_bytes(value or 0)


# Each rule takes (facts, recommendation, metrics, thresholds) and returns a list of findings.

def rule_usage(facts, rec, metrics, thresholds):
    ratio = metrics.get("usage_ratio")
    level = usage_severity(ratio, thresholds["usage_warning_ratio"], thresholds["usage_critical_ratio"])
    if level is None:
        return []
    sev, limit = level
    return [_finding("usage", sev, "conntrack table %s full (%s of %s entries; %s threshold %s)" % (
        _pct(ratio), metrics.get("count"), metrics.get("max"), sev, _pct(limit)), round(ratio, 6), limit)]


def rule_counters(facts, rec, metrics, thresholds):
    findings = []
    stats = _get(facts, "stats") or {}
    rates = _get(stats, "sample", "rates_per_second") or {}
    seconds = _get(stats, "sample", "seconds")
    totals = stats.get("totals") or {}
    for counter, sev, meaning in _RISING_COUNTERS:
        rate = _num(rates.get(counter))
        total = _num(totals.get(counter))
        if rate is not None and rate > 0:
            findings.append(_finding("%s_rising" % counter, sev, "%s rising: %.2f/s over the %s s sample (%s)" % (
                counter, rate, seconds, meaning), rate, 0))
        elif total:
            if rate is None:
                tail = "run with a sample window to see whether it still grows"
            else:
                tail = "not rising during the %s s sample" % seconds
            findings.append(_finding("%s_total" % counter, "info", "%s total is %d since boot (%s); %s"
                                     % (counter, total, meaning, tail), total, 0))
    return findings


def rule_table_full_log(facts, rec, metrics, thresholds):
    log = _get(facts, "kernel_log") or {}
    count = _num(log.get("table_full_count")) or 0
    if count <= 0:
        return []
    where = ""
    if log.get("netns"):
        netns = [str(n) for n in log["netns"]]
        more = (" and %d more" % (len(netns) - 3)) if len(netns) > 3 else ""
        where = " (netns %s%s)" % (", ".join(netns[:3]), more)
    last = log.get("last_seen")
    if last is None and log.get("last_seen_seconds_since_boot") is not None:
        last = "%s s after boot" % log["last_seen_seconds_since_boot"]
    return [_finding("table_full_logged", "critical" if metrics.get("drop_rising") else "warning",
                     "kernel logged 'nf_conntrack: table full, dropping packet' %s%s, last %s" % (
                         units.counted(count, "time"), where, last or "at an unknown time"), count, 0)]


def rule_chain_depth(facts, rec, metrics, thresholds):
    depth = _num(metrics.get("chain_depth_at_max"))
    level = chain_depth_severity(depth, thresholds["chain_depth_warning"], thresholds["chain_depth_critical"])
    if level is None:
        return []
    sev, limit = level
    return [_finding("chain_depth", sev, "a full table would average %.1f entries per hash bucket "
                     "(nf_conntrack_max %s / nf_conntrack_buckets %s; above %g)" % (
                         depth, metrics.get("max"), metrics.get("buckets"), limit), round(depth, 3), limit)]


def rule_not_persisted(facts, rec, metrics, thresholds):
    findings = []
    drift = _get(facts, "environment", "drift") or {}
    for key in sorted(drift):
        entry = drift[key] or {}
        persisted = entry.get("persisted")
        if persisted is None:
            msg = "%s is %s at runtime and set in no sysctl file: lost at reboot" % (key, entry.get("runtime"))
        else:
            msg = "%s is %s at runtime but %s in %s: the runtime value is lost at reboot" % (
                key, entry.get("runtime"), persisted, entry.get("file") or "the persisted configuration")
        findings.append(_finding("not_persisted", "warning", msg, entry.get("runtime"), persisted, key=key))
    findings.extend(_runtime_only(facts, drift))
    return findings


def _runtime_only(facts, drift):
    """Global sizes set at runtime with nothing persisted: the boot default comes back at reboot.

    Only where the boot default is known (the initial namespace of a 6.x kernel, whose default
    max equals its buckets) and kube-proxy is not the one that sets them at every start."""
    env = _get(facts, "environment") or {}
    memory = _get(facts, "memory") or {}
    release = str(facts.get("kernel_release") or "")
    try:
        major = int(release.split(".", 1)[0])
    except ValueError:
        return []
    mem_total = _num(memory.get("mem_total_bytes"))
    if major < 6 or facts.get("initial_netns") is not True or env.get("kube_proxy_running") or not mem_total:
        return []
    persistent = env.get("persistent") or {}
    sysctl = persistent.get("sysctl") or {}
    modprobe = persistent.get("modprobe") or {}
    default = kernel.kernel_default_max(int(mem_total), int(_num(memory.get("page_size_bytes")) or kernel.PAGE_SIZE))
    settings = facts.get("settings") or {}
    findings = []
    for key in ("nf_conntrack_max", "nf_conntrack_buckets"):
        runtime = _num(settings.get(key))
        if runtime is None or key in drift or key in sysctl or (key == "nf_conntrack_buckets" and "hashsize" in modprobe):
            continue
        if runtime != default:
            findings.append(_finding(
                "not_persisted", "warning", "%s is %d at runtime and set in no sysctl file: the boot default %d "
                "for %s of RAM comes back at reboot" % (key, runtime, default, human_bytes(mem_total)),
                runtime, default, key=key))
    return findings


def rule_recommendation(facts, rec, metrics, thresholds):
    if not rec:
        return []
    findings = []
    verdict = rec.get("verdict") or {}
    sev = verdict.get("severity") or "ok"
    if severity_rank(sev) > severity_rank("ok") and verdict.get("status") not in (None, "ok"):
        reasons = verdict.get("reasons") or []
        findings.append(_finding("verdict_%s" % verdict.get("status"), sev,
                                 "sizing verdict %s: %s" % (verdict.get("status"), "; ".join(str(r) for r in reasons)
                                                            or "see the recommendation"), verdict.get("status"), None))
    changes = metrics.get("differs_from_recommended") or []
    if changes:
        comp = rec.get("comparison") or {}
        parts = ["%s %s -> %s" % (k, comp[k].get("current"), comp[k].get("recommended")) for k in changes]
        findings.append(_finding("differs_from_recommended", "info",
                                 "runtime differs from the recommendation: %s" % ", ".join(parts), len(changes), 0))
    return findings


def rule_memory(facts, rec, metrics, thresholds):
    findings = []
    budget = metrics.get("memory_budget_bytes")
    at_max = metrics.get("memory_at_max_bytes")
    if budget and at_max and at_max > budget:
        findings.append(_finding("memory_over_budget", "warning",
                                 "a full table at the current nf_conntrack_max would take %s, above the budget of %s" % (
                                     human_bytes(at_max), human_bytes(budget)), at_max, budget))
    if rec and _get(rec, "memory", "within_budget") is False:
        findings.append(_finding("recommended_memory_over_budget", "warning",
                                 "even the recommended size takes %s, above the budget of %s" % (
                                     _get(rec, "memory", "total_human") or human_bytes(_get(rec, "memory", "total_bytes")),
                                     human_bytes(_get(rec, "memory", "budget_bytes"))),
                                 _get(rec, "memory", "total_bytes"), _get(rec, "memory", "budget_bytes")))
    return findings


def rule_kube_proxy(facts, rec, metrics, thresholds):
    if not _get(facts, "environment", "kube_proxy_running"):
        return []
    changes = metrics.get("differs_from_recommended") or []
    if not changes:
        return []
    return [_finding("kube_proxy_conflict", "warning",
                     "kube-proxy is running and sets conntrack values itself (conntrack.maxPerCore, min, "
                     "tcpEstablishedTimeout, tcpCloseWaitTimeout) at start; change its configuration rather than "
                     "the sysctls for: %s" % ", ".join(changes), len(changes), 0)]


def rule_pileups(facts, rec, metrics, thresholds):
    table = _get(facts, "table") or {}
    if not table.get("walked"):
        return []
    states = table.get("tcp_states") or {}
    total = _num(table.get("entries_read")) or 0
    if total <= 0:
        return []
    settings = _get(facts, "settings") or {}
    findings = []
    checks = (
        ("TIME_WAIT", "time_wait_pileup", "nf_conntrack_tcp_timeout_time_wait",
         thresholds["time_wait_share_warning"], thresholds["time_wait_timeout_seconds"]),
        ("ESTABLISHED", "established_pileup", "nf_conntrack_tcp_timeout_established",
         thresholds["established_share_warning"], thresholds["established_timeout_seconds"]),
    )
    cmax = _num(metrics.get("max"))
    for state, rule, key, share_limit, timeout_limit in checks:
        n = _num(states.get(state)) or 0
        share = n / float(total)
        timeout = _num(settings.get(key))
        if share < share_limit:
            continue
        # A handful of entries in a nearly empty table is no pile-up, whatever their share.
        if cmax and n < thresholds["pileup_min_usage_ratio"] * cmax:
            continue
        # Entries / timeout is the rate at which they arrive (Little's law), which is what
        # a shorter timeout would trade against.
        rate = (" (about %.0f new per second)" % (n / timeout)) if timeout else ""
        if timeout is not None and timeout > timeout_limit:
            msg = "%s entries are %s of the table (%d of %d)%s while %s is %d s (above %d s); " \
                  "they hold slots long after use" % (state, _pct(share), n, total, rate, key, timeout, timeout_limit)
            sev = "warning"
        else:
            msg = "%s entries are %s of the table (%d of %d)%s; %s is %s s" % (
                state, _pct(share), n, total, rate, key, timeout)
            sev = "info"
        findings.append(_finding(rule, sev, msg, round(share, 4), share_limit, key=key))
    return findings


def rule_availability(facts, rec, metrics, thresholds):
    if facts.get("available") is False:
        return [_finding("not_available", "info", "nf_conntrack is not in this kernel; nothing to size", None, None)]
    if facts.get("active") is False:
        return [_finding("not_active", "info", "conntrack does not track this namespace (no rule needs it)",
                         None, None)]
    return []


def rule_recommend_failed(facts, rec, metrics, thresholds):
    error = metrics.get("recommendation_error")
    if not error:
        return []
    return [_finding("recommend_failed", "warning", "no recommendation: %s" % error, None, None)]


def rule_fact_warnings(facts, rec, metrics, thresholds):
    return [_finding("facts_warning", "info", str(w), None, None) for w in (facts.get("warnings") or [])]


RULES = (
    rule_availability, rule_usage, rule_counters, rule_table_full_log, rule_chain_depth, rule_not_persisted,
    rule_recommendation, rule_memory, rule_kube_proxy, rule_pileups, rule_recommend_failed, rule_fact_warnings,
)

# For the docs and the report: every rule name and what raises it.
RULE_NAMES = (
    "usage", "drop_rising", "early_drop_rising", "insert_failed_rising", "chaintoolong_rising", "drop_total",
    "early_drop_total", "insert_failed_total", "chaintoolong_total", "table_full_logged", "chain_depth",
    "not_persisted", "verdict_undersized", "verdict_oversized", "verdict_chains_too_deep",
    "differs_from_recommended", "memory_over_budget", "recommended_memory_over_budget", "kube_proxy_conflict",
    "time_wait_pileup", "established_pileup", "not_available", "not_active", "recommend_failed", "facts_warning",
    "unreachable", "failed",
)


def memory_at_max(facts, rec):
    """Bytes of a full table at the current nf_conntrack_max, priced the way sizing prices one.

    sizing.memory_bytes with the recommendation's per-entry bytes (slab object and extension
    block) where there is one, else the slab: the same function as the recommendation's own
    figures, so that a report cannot show two numbers for one table."""
    usage = _get(facts, "usage") or {}
    memory = _get(facts, "memory") or {}
    rec_memory = _get(rec, "memory") or {}
    cmax = _num(usage.get("max"))
    per_entry = (_num(rec_memory.get("per_entry_bytes")) or _num(memory.get("slab_size_bytes"))
                 or _num(memory.get("object_size_bytes")))
    if not cmax or not per_entry:
        return None
    bucket_bytes = (_num(rec_memory.get("bucket_bytes")) or _num(memory.get("bucket_size_bytes"))
                    or kernel.BUCKET_BYTES)
    return sizing.memory_bytes(cmax, _num(usage.get("buckets")) or 0, per_entry, bucket_bytes)


def rule_causes(facts, rec, metrics, thresholds):
    """The drop advisor's causes (recommend's verdict.causes, else computed from the facts)
    and kube-proxy's conntrack block when it would undo the recommendation. See advisor.py."""
    verdict = (rec or {}).get("verdict") or {}
    causes = verdict["causes"] if isinstance(verdict.get("causes"), list) else advisor.causes(facts)
    findings = []
    for c in causes:
        f = _finding("cause_" + c["id"], c["severity"], "%s. Remedy: %s" % (c["summary"], c["remedy"]))
        f.update(evidence=c.get("evidence"), remedy=c.get("remedy"), namespaces=c.get("namespaces") or [])
        findings.append(f)
    kp = (rec or {}).get("kube_proxy") or {}
    if kp.get("differs"):
        undone = ", ".join("%s=%s" % (k, v["kube_proxy"]) for k, v in sorted(kp["differs"].items()))
        f = _finding("kube_proxy_block", "warning", "kube-proxy would set %s at its next start; put this in its"
                     " configuration instead:\n%s" % (undone, kp.get("conntrack_yaml")), len(kp["differs"]), 0)
        f.update(conntrack=kp.get("conntrack"), config_file=kp.get("config_file"))
        findings.append(f)
    return findings


RULES = RULES + (rule_causes,)
RULE_NAMES = RULE_NAMES + tuple("cause_" + c for c in advisor.CAUSE_IDS) + ("kube_proxy_block",)


def rule_kube_proxy_lowers(facts, rec, metrics, thresholds):
    """kube-proxy will cap or lower the table the collection sized: one finding per key, with the
    release, the rule that does it and, when no config block can hold our max, what to do."""
    kp = (rec or {}).get("kube_proxy") or {}
    findings = []
    for key, low in sorted((kp.get("lowers") or {}).items()):
        release = "kube-proxy %s" % kp["release"] if kp.get("release") else "kube-proxy (release unknown)"
        message = "%s will set %s=%s at its next start, below the sized %s: %s" % (
            release, key, low["kube_proxy"], low["recommended"], low["reason"])
        if kp.get("note"):
            message += "; no conntrack block can fix this: " + kp["note"]
        else:
            message += "; the kube_proxy_block finding gives the block that keeps ours"
        f = _finding("kube_proxy_lowers", "warning", message, low["kube_proxy"], low["recommended"], key=key)
        f.update(evidence={"release": kp.get("release"), "effective": kp.get("effective"),
                           "config_file": kp.get("config_file"), "reason": low["reason"]})
        findings.append(f)
    return findings


RULES = RULES + (rule_kube_proxy_lowers,)
RULE_NAMES = RULE_NAMES + ("kube_proxy_lowers",)
