# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The drop advisor: why packets drop, from the counters, the kernel version and the
environment. Pure: the facts dict in, a list of causes out; no I/O, no ansible.

Each cause is ``{id, severity, summary, evidence, remedy, namespaces}``: ``evidence`` holds the
numbers it was judged on, ``namespaces`` the namespaces (inode and a label) that show it.
recommend's verdict carries the list as ``causes``; the audit turns each into a finding.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel, verdict
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.values import dig as _get, number as _num

# Kernel changes that narrow the UDP insert race (same socket, two packets, two CPUs, one of
# them loses at confirm time and is dropped: the 5 s DNS timeouts).
UDP_RACE_FIXES = (
    ((4, 19), "ed07d9a021df", "identical clashing entries are merged instead of dropped"),
    ((5, 0), "4e35c1cb9460", "NAT clash resolution is skipped for same-origin entries"),
    ((5, 6), "6a757c07e51f", "a UDP entry that clashes after DNAT to another backend is inserted anyway"),
    ((6, 12), "8af79d3edb5f", "packets that went through NFQUEUE no longer race their own entry"),
)
UDP_RACE_MITIGATED = (5, 6)
# search_restart per second above which it is more than the occasional resize.
SEARCH_RESTART_RATE = 100.0
# A share of invalid among new entries (since boot) that is more than noise.
INVALID_SHARE = 0.01
NOTRACK_UDP_SHARE = 0.5
NOTRACK_MIN_ENTRIES = 10000


def namespace_label(ns):
    owner = ns.get("owner") or {}
    if owner.get("kind") == "host" or ns.get("initial"):
        return "host"
    if owner.get("pod_name"):
        return "pod %s/%s" % (owner.get("pod_namespace"), owner["pod_name"])
    if owner.get("container_name"):
        return "%s container %s" % (owner.get("runtime") or "", owner["container_name"])
    if owner.get("container_id"):
        return "%s container %s" % (owner.get("runtime") or "", owner["container_id"][:12])
    if owner.get("pod_uid"):
        return "pod uid %s" % owner["pod_uid"]
    if owner.get("netns_name"):
        return "netns %s" % owner["netns_name"]
    if owner.get("service"):
        return "service %s" % owner["service"]
    return "netns %s" % ns.get("inode")


def _ns_with(facts, counter, minimum=1):
    """Namespaces whose totals hold ``counter`` >= minimum, largest first."""
    out = []
    for ns in facts.get("namespaces") or []:
        value = _num(_get(ns, "stats", "totals", counter))
        if value is not None and value >= minimum:
            out.append({"inode": ns.get("inode"), "label": namespace_label(ns), counter: value,
                        "entries": ns.get("entries"), "current": bool(ns.get("current"))})
    out.sort(key=lambda n: -n[counter])
    return out


class View(object):
    """The numbers the rules read, from the facts of the namespace the module ran in."""

    def __init__(self, facts):
        self.facts = facts
        self.totals = _get(facts, "stats", "totals") or {}
        self.rates = _get(facts, "stats", "sample", "rates_per_second") or {}
        self.deltas = _get(facts, "stats", "sample", "deltas") or {}
        self.sampled = _get(facts, "stats", "sample") is not None
        self.usage = facts.get("usage") or {}
        self.settings = facts.get("settings") or {}
        self.env = facts.get("environment") or {}
        self.table = facts.get("table") or {}
        self.version = kernel.kernel_version(facts.get("kernel_release"))

    def total(self, name):
        return _num(self.totals.get(name)) or 0

    def rising(self, name):
        """The sample's delta when sampled, else None (unknown)."""
        if not self.sampled:
            return None
        return _num(self.deltas.get(name)) or 0

    def evidence(self, *names):
        out = {}
        for name in names:
            if name in self.totals:
                out[name] = self.totals[name]
                if self.sampled:
                    out[name + "_per_second"] = self.rates.get(name, (self.deltas.get(name) or 0)
                                                               / (_get(self.facts, "stats", "sample", "seconds") or 1))
        return out


def _cause(cid, severity, summary, evidence, remedy, namespaces=None):
    return {"id": cid, "severity": severity, "summary": summary, "evidence": evidence, "remedy": remedy,
            "namespaces": namespaces or []}


def _severity(rising, total, live="critical", past="warning"):
    if rising:
        return live
    return past if total else None


def cause_table_full(v):
    count, cmax = _num(v.usage.get("count")), _num(v.usage.get("max"))
    log = v.facts.get("kernel_log") or {}
    logged = _num(log.get("table_full_count")) or 0
    spaces = _ns_with(v.facts, "drop")
    # The module's own namespace is already in the top-level counters.
    drops = v.total("drop") + sum(n["drop"] for n in spaces if not n["current"])
    full = bool(cmax) and count is not None and count >= verdict.FULL_RATIO * cmax
    if not (drops or logged or full):
        return []
    ev = v.evidence("drop", "early_drop")
    logged_in = list(log.get("netns") or [])
    labels = dict((ns.get("inode"), namespace_label(ns)) for ns in v.facts.get("namespaces") or [])
    ev.update(count=count, max=cmax, table_full_logged=logged, table_full_netns=logged_in,
              table_full_netns_labels=[labels[i] for i in logged_in if i in labels], drop_all_namespaces=drops)
    rising = v.rising("drop")
    # Drops since boot may predate a raised max: critical only while they grow or the table is full.
    sev = "critical" if rising or full else "warning"
    where = ""
    if spaces:
        where = "; dropped in %s" % ", ".join(
            "%s (drop=%d, entries=%s)" % (n["label"], n["drop"], n["entries"]) for n in spaces[:3])
    summary = "the table is full or was: new flows are dropped (%d drops%s)" % (drops, where)
    remedy = ("raise nf_conntrack_max (recommend's settings; each namespace counts against the one global max),"
              " or find the namespace that fills it and shorten its timeouts")
    return [_cause("table_full", sev, summary, ev, remedy, spaces)]


def _udp_entries(v):
    by_protocol = v.table.get("by_protocol") if v.table.get("walked", True) and v.table else None
    return None if by_protocol is None else (by_protocol.get("udp") or 0)


def udp_race_mitigation(version):
    """(mitigated, text) for a kernel (major, minor)."""
    if version is None:
        return None, "kernel version unknown"
    have = [f for f in UDP_RACE_FIXES if version >= f[0]]
    missing = [f for f in UDP_RACE_FIXES if version < f[0]]
    text = "Linux %d.%d" % version
    if have:
        text += " has: " + "; ".join("%s (%d.%d, %s)" % (f[2], f[0][0], f[0][1], f[1]) for f in have)
    if missing:
        text += ("; " if have else " ") + "lacks: " + "; ".join(
            "%s (%d.%d, %s)" % (f[2], f[0][0], f[0][1], f[1]) for f in missing)
    return version >= UDP_RACE_MITIGATED, text


def cause_udp_insert_race(v):
    failed, clashes = v.total("insert_failed"), v.total("clash_resolve")
    spaces = _ns_with(v.facts, "insert_failed")
    failed_all = failed + sum(n["insert_failed"] for n in spaces if not n["current"])
    if not failed_all and not clashes:
        return []
    udp = _udp_entries(v)
    if udp == 0 and not clashes:
        return []  # no UDP at all in the walked table: insert_failed has another cause
    mitigated, text = udp_race_mitigation(v.version)
    ev = v.evidence("insert_failed", "clash_resolve")
    ev.update(insert_failed_all_namespaces=failed_all, udp_entries=udp, kernel_release=v.facts.get("kernel_release"),
              kernel_mitigated=mitigated, nat_rules_present=v.env.get("nat_rules_present"))
    remedy = ("NodeLocal DNSCache (DNS stays on the node, no DNAT to a Service); `options single-request-reopen`"
              " (glibc: A and AAAA from separate sockets) or `use-vc` (DNS over TCP) in resolv.conf")
    if failed_all and mitigated is False:
        sev = _severity(v.rising("insert_failed"), failed_all, "critical", "warning")
        summary = ("UDP insert race: %d insertions failed and this kernel does not resolve clashes after DNAT"
                   " (mitigated from Linux 5.6). %s" % (failed_all, text))
        remedy = "upgrade the kernel to 5.6 or later; meanwhile " + remedy
    elif failed_all:
        sev = _severity(v.rising("insert_failed"), failed_all, "warning", "info")
        summary = ("insert_failed=%d although this kernel resolves UDP clashes (%s): NFQUEUE before 6.12,"
                   " or a non-UDP protocol, still loses the race" % (failed_all, text))
    else:
        sev = "info"
        summary = "the kernel resolved %d insert clashes without dropping (clash_resolve): the race happens" \
                  " but costs no packets here" % clashes
        remedy = "nothing to do; " + remedy + " if the DNS latency matters"
    return [_cause("udp_insert_race", sev, summary, ev, remedy, spaces)]


def cause_invalid(v):
    invalid = v.total("invalid")
    if not invalid:
        return []
    new = v.total("new") or v.total("insert") or 0
    rising = v.rising("invalid")
    share = invalid / float(new) if new else None
    if not rising and (share is None or share < INVALID_SHARE):
        return []
    liberal = v.settings.get("nf_conntrack_tcp_be_liberal")
    ev = v.evidence("invalid", "new")
    ev.update(invalid_share_of_new=round(share, 4) if share is not None else None,
              nf_conntrack_tcp_be_liberal=liberal, nat_rules_present=v.env.get("nat_rules_present"))
    if liberal == 1:
        summary = "invalid packets (%d) although nf_conntrack_tcp_be_liberal=1: not a TCP window problem" % invalid
        remedy = ("look for asymmetric routing (replies that bypass this host), bad checksums or ICMP errors"
                  " without a matching entry; conntrack -E / nf_log with nf_conntrack_log_invalid shows which")
    else:
        summary = ("invalid packets (%d, %s of new): out-of-window TCP, typical of NAT'd long-lived flows and"
                   " asymmetric routing" % (invalid, "%.1f%%" % (share * 100) if share is not None else "rising"))
        remedy = ("nf_conntrack_tcp_be_liberal=1 (kube-proxy sets it with conntrack.tcpBeLiberal since 1.29):"
                  " only RSTs are still checked against the window; trade-off: out-of-window packets are"
                  " accepted, so a blind injection into a tracked flow becomes easier")
    return [_cause("invalid_packets", "warning" if rising else "info", summary, ev, remedy)]


def cause_chains(v):
    too_long = v.total("chaintoolong")
    cmax, buckets = _num(v.usage.get("max")), _num(v.usage.get("buckets"))
    depth = (cmax / float(buckets)) if cmax and buckets else None
    if not too_long and not (depth and depth > kernel.DEEP_CHAIN_DEPTH):
        return []
    ev = v.evidence("chaintoolong")
    ev.update(max=cmax, buckets=buckets, chain_depth_at_max=round(depth, 2) if depth else None)
    if too_long:
        sev = _severity(v.rising("chaintoolong"), too_long, "critical", "warning")
        summary = "the kernel refused %d insertions on over-long hash chains (chaintoolong)" % too_long
    else:
        sev = "warning"
        summary = "a full table would average %.1f entries per bucket (max %d / buckets %d)" % (depth, cmax, buckets)
    remedy = ("raise nf_conntrack_buckets (recommend's value keeps max / buckets at most %g; set it once at"
              " boot: each runtime change rehashes the table)" % kernel.DEEP_CHAIN_DEPTH)
    return [_cause("chains_too_deep", sev, summary, ev, remedy)]


def cause_search_restart(v):
    restarts = v.total("search_restart")
    rate = _num(v.rates.get("search_restart"))
    if rate is None and v.sampled:
        seconds = _get(v.facts, "stats", "sample", "seconds") or 0
        rate = (v.deltas.get("search_restart") or 0) / seconds if seconds else None
    found = v.total("found")
    heavy = (rate is not None and rate >= SEARCH_RESTART_RATE) or (
        rate is None and restarts and found and restarts > 0.01 * found)
    if not heavy:
        return []
    ev = v.evidence("search_restart", "found")
    summary = "lookups restarted %d times (search_restart): the table was resized or under insert/delete" \
              " pressure while it was searched" % restarts
    remedy = ("set nf_conntrack_buckets once (at boot, or before traffic) instead of changing it at runtime;"
              " if it keeps rising, the table churns: see the table-full and chain causes")
    return [_cause("search_restart", "warning" if rate is not None else "info", summary, ev, remedy)]


def cause_notrack(v):
    udp = _udp_entries(v)
    total = _num(v.table.get("entries_read")) if v.table else None
    if not udp or not total or v.env.get("nat_rules_present") is not False:
        return []
    share = udp / float(total)
    if share < NOTRACK_UDP_SHARE or udp < NOTRACK_MIN_ENTRIES:
        return []
    ev = {"udp_entries": udp, "entries_read": total, "udp_share": round(share, 3), "nat_rules_present": False}
    summary = ("%d of %d entries (%.0f%%) are UDP on a host without NAT rules: flows that may never need state"
               % (udp, total, share * 100))
    remedy = ("if no rule needs their state (ct state, NAT, helpers), exempt them, e.g. nftables"
              " `table inet raw { chain pre { type filter hook prerouting priority raw; udp dport 53 notrack } }`"
              " plus the same in an output chain; a suggestion only: nothing applies it")
    return [_cause("notrack_candidate", "info", summary, ev, remedy)]


def cause_elsewhere(v):
    out = []
    dp = v.env.get("datapath") or {}
    if dp.get("ebpf"):
        out.append(_cause(
            "ebpf_datapath", "info",
            "%s's eBPF datapath keeps its own conntrack maps (%s): pod traffic it handles never reaches"
            " nf_conntrack, so a bigger nf_conntrack table does not fix its drops" % (dp["ebpf"], dp.get("ebpf_evidence")),
            {"datapath": dp["ebpf"], "evidence": dp.get("ebpf_evidence")},
            "size the datapath's maps instead (Cilium: bpf-ct-global-tcp-max, bpf-ct-global-any-max, or"
            " bpf-map-dynamic-size-ratio); keep nf_conntrack sized for the host's own traffic"))
    exceeded = [e for e in dp.get("ena") or [] if (_num(e.get("conntrack_allowance_exceeded")) or 0) > 0]
    if exceeded:
        out.append(_cause(
            "ena_conntrack_allowance", "critical",
            "the EC2 instance's connection-tracking allowance was exceeded (%s): the drops happen in the"
            " ENA/VPC layer, not in nf_conntrack, whose size does not matter here" % ", ".join(
                "%s conntrack_allowance_exceeded=%d" % (e["interface"], e["conntrack_allowance_exceeded"])
                for e in exceeded),
            {"ena": exceeded},
            "a larger instance type (the allowance scales with it), fewer tracked flows (security group rules"
            " that allow all traffic both ways are untracked), or shorter idle timeouts in the security group"))
    return out


RULES = (cause_table_full, cause_udp_insert_race, cause_invalid, cause_chains, cause_search_restart,
         cause_notrack, cause_elsewhere)
CAUSE_IDS = ("table_full", "udp_insert_race", "invalid_packets", "chains_too_deep", "search_restart",
             "notrack_candidate", "ebpf_datapath", "ena_conntrack_allowance")
_RANK = {"critical": 0, "warning": 1, "info": 2}


def causes(facts):
    """Every cause the facts show, the most severe first. ``facts``: the facts dict (or None)."""
    if not isinstance(facts, dict) or facts.get("available") is False:
        return []
    v = View(facts)
    found = []
    for rule in RULES:
        found.extend(rule(v))
    found.sort(key=lambda c: (_RANK.get(c["severity"], 3), c["id"]))
    return found


def counted_namespaces(facts):
    """The namespaces of the facts' list whose entries could be read (sizing and the summary)."""
    return [ns for ns in (facts or {}).get("namespaces") or []
            if isinstance(ns, dict) and _num(ns.get("entries")) is not None]
