# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure sizing of the conntrack table: no I/O, no ansible imports, stdlib only.

``recommend(facts, **inputs)`` turns a facts dict (CONTRIBUTING.md, may be None
for capacity planning) and explicit load figures into the recommendation dict
that the settings module accepts. docs/sizing.md explains the model.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import demand

PREFIX = "nf_conntrack_"

# Kernel defaults on 6.x (nf_conntrack_proto_tcp.c, _udp.c, _icmp.c, _icmpv6.c,
# _generic.c, _gre.c, _sctp.c), in seconds, by sysctl name.
KERNEL_TIMEOUTS = {
    "nf_conntrack_tcp_timeout_syn_sent": 120,
    "nf_conntrack_tcp_timeout_syn_recv": 60,
    "nf_conntrack_tcp_timeout_established": 432000,
    "nf_conntrack_tcp_timeout_fin_wait": 120,
    "nf_conntrack_tcp_timeout_close_wait": 60,
    "nf_conntrack_tcp_timeout_last_ack": 30,
    "nf_conntrack_tcp_timeout_time_wait": 120,
    "nf_conntrack_tcp_timeout_close": 10,
    "nf_conntrack_tcp_timeout_max_retrans": 300,
    "nf_conntrack_tcp_timeout_unacknowledged": 300,
    "nf_conntrack_udp_timeout": 30,
    "nf_conntrack_udp_timeout_stream": 120,
    "nf_conntrack_icmp_timeout": 30,
    "nf_conntrack_icmpv6_timeout": 30,
    "nf_conntrack_generic_timeout": 600,
    "nf_conntrack_gre_timeout": 30,
    "nf_conntrack_gre_timeout_stream": 180,
    "nf_conntrack_sctp_timeout_closed": 10,
    "nf_conntrack_sctp_timeout_cookie_wait": 3,
    "nf_conntrack_sctp_timeout_cookie_echoed": 3,
    "nf_conntrack_sctp_timeout_established": 210,
    "nf_conntrack_sctp_timeout_shutdown_sent": 3,
    "nf_conntrack_sctp_timeout_shutdown_recd": 3,
    "nf_conntrack_sctp_timeout_shutdown_ack_sent": 3,
    "nf_conntrack_sctp_timeout_heartbeat_sent": 30,
}

# Below these a timeout is refused: entries of live flows would expire under them
# (keepalive probes, SYN retransmits, late FIN/ACKs, DNS retries).
UNSAFE_FLOOR_SECONDS = {
    "nf_conntrack_tcp_timeout_established": 300,
    "nf_conntrack_tcp_timeout_syn_sent": 30,
    "nf_conntrack_tcp_timeout_syn_recv": 10,
    "nf_conntrack_tcp_timeout_fin_wait": 10,
    "nf_conntrack_tcp_timeout_close_wait": 10,
    "nf_conntrack_tcp_timeout_last_ack": 10,
    "nf_conntrack_tcp_timeout_time_wait": 30,
    "nf_conntrack_tcp_timeout_max_retrans": 30,
    "nf_conntrack_tcp_timeout_unacknowledged": 30,
    "nf_conntrack_udp_timeout": 10,
    "nf_conntrack_udp_timeout_stream": 30,
    "nf_conntrack_generic_timeout": 30,
}

# proc_dointvec_jiffies refuses seconds above INT_MAX / HZ; HZ=1000 is the
# strictest kernel configuration, so this limit holds on every kernel.
TIMEOUT_MAX_SECONDS = 2147483647 // 1000
INT_MAX = 2147483647
# nf_ct_alloc_hashtable refuses more than INT_MAX / sizeof(struct hlist_nulls_head).
BUCKETS_MAX = INT_MAX // 8

PROFILES = {
    "default": {
        "description": "Keep the kernel's timeouts; size max and buckets only.",
        "timeouts": {},
        "floor_entries": 0,
        "sources": ["kernel 6.x defaults: net/netfilter/nf_conntrack_proto_*.c"],
    },
    "nat_gateway": {
        "description": "NAT for many clients: idle TCP mappings kept 2 h 4 min, UDP per RFC 4787.",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 7440,
            "nf_conntrack_udp_timeout": 60,
            "nf_conntrack_udp_timeout_stream": 180,
        },
        "floor_entries": 65536,
        "sources": [
            "RFC 5382 REQ-5: an established TCP NAT mapping must not expire in less than 2 h 4 min (7440 s)",
            "RFC 4787 REQ-5: UDP mappings must live at least 2 min; OpenWrt ships udp 60 s / stream 180 s",
        ],
    },
    "load_balancer": {
        "description": "Many short TCP connections: established idle timeout as IPVS uses (15 min).",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 900,
            "nf_conntrack_udp_timeout_stream": 120,
        },
        "floor_entries": 131072,
        "sources": [
            "IPVS defaults (net/netfilter/ipvs/ip_vs_proto_tcp.c): established 900 s, fin/time_wait 120 s",
        ],
    },
    "kubernetes_node": {
        "description": "What kube-proxy sets on start: established 24 h, close_wait 1 h, max >= 32768 per CPU.",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 86400,
            "nf_conntrack_tcp_timeout_close_wait": 3600,
        },
        "floor_entries": 131072,
        "floor_entries_per_cpu": 32768,
        "sources": [
            "kube-proxy KubeProxyConntrackConfiguration defaults: maxPerCore 32768, min 131072,"
            " tcpEstablishedTimeout 24h, tcpCloseWaitTimeout 1h",
        ],
    },
    "container_host": {
        "description": "Container churn: established 24 h like kube-proxy; every namespace counts up to max.",
        "timeouts": {
            "nf_conntrack_tcp_timeout_established": 86400,
        },
        "floor_entries": 131072,
        "sources": [
            "same established timeout as kube-proxy, whose workload (short-lived pods) this mirrors",
            "each network namespace is checked against the one global nf_conntrack_max",
        ],
    },
}

DEFAULT_HEADROOM = 1.5
DEFAULT_MEMORY_BUDGET = "10%"
DEFAULT_TARGET_CHAIN_DEPTH = 1.0
# A 6.x nf_conn is 248 bytes in a 256-byte slab; older or debug kernels are bigger.
FALLBACK_ENTRY_BYTES = 320
BUCKET_BYTES = 8
PAGE_SIZE = 4096
WARNING_RATIO = 0.75
CRITICAL_RATIO = 0.90
# Above this many entries per bucket a lookup walks long chains (kube-proxy uses 4).
DEEP_CHAIN_DEPTH = 4.0
# The current max is "oversized" when it could cost more than the budget and is
# this many times what the load needs.
OVERSIZED_FACTOR = 4.0

# Extension area (nf_ct_ext, one krealloc'd block per entry, at least
# NF_CT_EXT_PREALLOC = 128 bytes). Sizes of the 6.x structs on 64-bit.
EXT_HEADER_BYTES = 16
EXTENSION_BYTES = {"nat": 8, "acct": 32, "timestamp": 16, "events": 24, "labels": 16, "helper": 64}
EXT_PREALLOC_BYTES = 128
KMALLOC_SIZES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024)

UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


# Upper bounds of the inputs. Above them a figure is a typo, not a load (and 1e308 x a
# lifetime would overflow to infinity).
RATE_MAX_PER_SECOND = 1e9
DURATION_MAX_SECONDS = 365 * 86400
ENTRY_BYTES_MAX = 65536
CPU_COUNT_MAX = 65536
NAMESPACES_MAX = 1 << 20
PAGE_SIZE_MAX = 1 << 20
MEM_TOTAL_MAX = 1 << 56
HEADROOM_MAX = 100.0
CHAIN_DEPTH_MAX = 64.0


class SizingError(ValueError):
    """Bad input for the sizing model; the message says which and why.

    ``option`` is the input's name and ``value`` what was given, so that callers (the
    role's input check) can name their own variable instead.
    """

    def __init__(self, message, option=None, value=None):
        ValueError.__init__(self, message)
        self.option = option
        self.value = value


# --- small helpers -----------------------------------------------------------

def kernel_key(name):
    """Accept ``tcp_timeout_time_wait`` or the full sysctl name."""
    name = str(name).strip()
    return name if name.startswith(PREFIX) else PREFIX + name


def number(name, value, minimum=0.0, integer=False, allow_none=True, maximum=None):
    """A finite number in [minimum, maximum], or a SizingError naming the input, the value and the range."""
    if value is None or value == "":
        if allow_none:
            return None
        raise SizingError("%s is required" % name, name, value)
    accepted = ">= %s" % _fmt(minimum) if maximum is None else ">= %s and <= %s" % (_fmt(minimum), _fmt(maximum))
    if isinstance(value, bool):
        raise SizingError("%s must be a number %s, got %r" % (name, accepted, value), name, value)
    try:
        num = float(value)
    except (TypeError, ValueError, OverflowError):
        raise SizingError("%s must be a number %s, got %r" % (name, accepted, value), name, value)
    if math.isnan(num) or math.isinf(num):
        raise SizingError("%s must be a finite number %s, got %r" % (name, accepted, value), name, value)
    if num < minimum or (maximum is not None and num > maximum):
        raise SizingError("%s must be %s, got %r" % (name, accepted, value), name, value)
    if integer:
        if num != int(num):
            raise SizingError("%s must be a whole number %s, got %r" % (name, accepted, value), name, value)
        return int(num)
    return num


def _fmt(num):
    if float(num).is_integer() and abs(num) < 1e15:
        return str(int(num))
    return "%g" % num


def parse_size(value, name="size", maximum=MEM_TOTAL_MAX):
    """Bytes from 123, "512MiB", "2G", "16GiB" (K/M/G/T are binary, like ansible's human_to_bytes)."""
    if isinstance(value, bool):
        raise SizingError("%s must be a size such as 2GiB, got %r" % (name, value), name, value)
    if isinstance(value, (int, float)):
        return number(name, value, integer=True, allow_none=False, maximum=maximum)
    m = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*$", str(value))
    if not m:
        raise SizingError("%s must be a size such as 2GiB or 512MiB, got %r" % (name, value), name, value)
    size = int(float(m.group(1)) * UNITS[m.group(2).lower()])
    if size > maximum:
        raise SizingError("%s must be at most %s, got %r" % (name, human_bytes(maximum), value), name, value)
    return size


def budget_parts(value):
    """(fraction, None) or (None, bytes) from a memory_budget, checked without knowing the RAM."""
    if value is None:
        value = DEFAULT_MEMORY_BUDGET
    fraction = None
    text = str(value).strip()
    accepted = "a share of RAM above 0 and at most 100% (10%, 0.1) or a size (512MiB, 2GiB)"
    if not isinstance(value, bool) and text.endswith("%"):
        try:
            pct = number("memory_budget", text[:-1], allow_none=False)
        except SizingError:
            raise SizingError("memory_budget must be %s, got %r" % (accepted, value), "memory_budget", value)
        fraction = pct / 100.0
    elif isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool) and value <= 1):
        try:
            fraction = number("memory_budget", value, allow_none=False)
        except SizingError:
            raise SizingError("memory_budget must be %s, got %r" % (accepted, value), "memory_budget", value)
    elif re.match(r"^\s*[0-9]*\.?[0-9]+\s*$", text) and float(text) <= 1:
        fraction = float(text)
    if fraction is not None:
        if fraction <= 0:
            raise SizingError("memory_budget must be above 0 (%s), got %r" % (accepted, value), "memory_budget", value)
        if fraction > 1:
            raise SizingError("memory_budget %r is above the RAM (more than 100%%); give %s" % (value, accepted),
                              "memory_budget", value)
        return fraction, None
    try:
        budget = parse_size(value, "memory_budget")
    except SizingError:
        raise SizingError("memory_budget must be %s, got %r" % (accepted, value), "memory_budget", value)
    if budget <= 0:
        raise SizingError("memory_budget must be above 0 (%s), got %r" % (accepted, value), "memory_budget", value)
    return None, budget


def parse_budget(value, mem_total_bytes):
    """(budget_bytes, how) from a fraction (0.05), a percent ("5%") or a size ("2GiB")."""
    fraction, budget = budget_parts(value)
    if fraction is not None:
        if mem_total_bytes is None:
            raise SizingError("memory_budget %r is a share of RAM, but the RAM is unknown: pass mem_total_bytes"
                              % (value,), "memory_budget", value)
        return int(mem_total_bytes * fraction), "%s of RAM" % _percent(fraction)
    if mem_total_bytes is not None and budget > mem_total_bytes:
        raise SizingError("memory_budget %r (%s) is above the RAM (%s)"
                          % (value, human_bytes(budget), human_bytes(mem_total_bytes)), "memory_budget", value)
    return budget, human_bytes(budget)


def _percent(fraction):
    return ("%.2f" % (fraction * 100)).rstrip("0").rstrip(".") + "%"


def human_bytes(num):
    """1.5 GiB style, binary units, one decimal."""
    if num is None:
        return None
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return "%d B" % num if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024.0
    return None  # pragma: no cover


def _human_count(num):
    if num >= 1000000:
        return "%.2fM" % (num / 1e6)
    if num >= 10000:
        return "%dk" % round(num / 1e3)
    return "%d" % num


# --- the kernel's own rules ------------------------------------------------

def bucket_granularity(page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """nf_ct_alloc_hashtable rounds up to a whole page of hlist_nulls_heads: 512 on x86_64."""
    return max(1, page_size_bytes // bucket_bytes)


def round_buckets(buckets, page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """The value the kernel reads back after writing ``buckets`` (100000 -> 100352)."""
    buckets = int(math.ceil(buckets))
    if buckets < 1:
        buckets = 1
    step = bucket_granularity(page_size_bytes, bucket_bytes)
    return -(-buckets // step) * step


def kernel_default_buckets(mem_total_bytes, page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """nf_conntrack_init_start() on a 64-bit kernel without hashsize= (6.x)."""
    gib = 1 << 30
    if mem_total_bytes > 4 * gib:
        size = 262144
    elif mem_total_bytes > gib:
        size = 65536
    else:
        size = max(1024, mem_total_bytes // 16384 // bucket_bytes)
    return round_buckets(size, page_size_bytes, bucket_bytes)


def kernel_default_max(mem_total_bytes, page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """On 6.x the boot default max equals the buckets (max_factor 1)."""
    return kernel_default_buckets(mem_total_bytes, page_size_bytes, bucket_bytes)


def kernel_expect_max(buckets):
    """nf_conntrack_expect_init(): expect hash = buckets / 256 (at least 1), max = 4 per slot."""
    return max(1, int(buckets) // 256) * 4


# Kernel defaults of the other writable keys (6.x; the older ones noted in boot_defaults()).
KERNEL_OTHER_DEFAULTS = {
    "nf_conntrack_acct": 0,
    "nf_conntrack_timestamp": 0,
    "nf_conntrack_checksum": 1,
    "nf_conntrack_helper": 0,
    "nf_conntrack_tcp_loose": 1,
    "nf_conntrack_tcp_be_liberal": 0,
    "nf_conntrack_tcp_ignore_invalid_rst": 0,
    "nf_conntrack_tcp_max_retrans": 3,
    "nf_conntrack_log_invalid": 0,
    "nf_conntrack_events": 2,
    "nf_conntrack_frag6_timeout": 60,
    "nf_conntrack_frag6_high_thresh": 4 * 1024 * 1024,
    "nf_conntrack_frag6_low_thresh": 3 * 1024 * 1024,
}


def kernel_version(release):
    """(major, minor) from a release string like 6.1.0-27-amd64, or None."""
    m = re.match(r"^(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def boot_defaults(release, mem_total_bytes, hashsize=None, page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """What nf_conntrack starts with when it loads and no sysctl is applied: max, buckets,
    expect_max and the other keys, by kernel version and RAM. ``hashsize``: an
    ``options nf_conntrack hashsize=N`` in force (then the kernel keeps its old max factor 8)."""
    version = kernel_version(release) or (6, 0)
    if hashsize:
        buckets = round_buckets(hashsize, page_size_bytes, bucket_bytes)
        max_entries = 8 * buckets
    elif version >= (5, 15):
        # 5.15 ("sanitize table size default settings"): max == buckets.
        buckets = kernel_default_buckets(mem_total_bytes, page_size_bytes, bucket_bytes)
        max_entries = buckets
    else:
        gib = 1 << 30
        size = 65536 if mem_total_bytes > 4 * gib else 16384 if mem_total_bytes > gib else \
            max(32, mem_total_bytes // 16384 // bucket_bytes)
        buckets = round_buckets(size, page_size_bytes, bucket_bytes)
        max_entries = 4 * buckets
    out = dict(KERNEL_TIMEOUTS)
    out.update(KERNEL_OTHER_DEFAULTS)
    if version < (5, 19):
        out["nf_conntrack_events"] = 1  # "2 (auto)" came with 5.19
    out.update({"nf_conntrack_max": max_entries, "nf_conntrack_buckets": buckets,
                "nf_conntrack_expect_max": kernel_expect_max(buckets)})
    return out


def buckets_for(max_entries, target_chain_depth=DEFAULT_TARGET_CHAIN_DEPTH,
                page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """Buckets so that max / buckets <= target_chain_depth, rounded like the kernel."""
    return min(round_buckets(max(1, max_entries) / float(target_chain_depth), page_size_bytes, bucket_bytes),
               largest_buckets(page_size_bytes, bucket_bytes))


def largest_buckets(page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """The largest rounded bucket count nf_ct_alloc_hashtable accepts."""
    step = bucket_granularity(page_size_bytes, bucket_bytes)
    return (INT_MAX // bucket_bytes) // step * step


def extension_bytes(nat=False, acct=False, timestamp=False, events=False, labels=False, helper=False):
    """Bytes of the per-entry nf_ct_ext block for the extensions that are on (0 if none)."""
    on = dict(nat=nat, acct=acct, timestamp=timestamp, events=events, labels=labels, helper=helper)
    used = [k for k, v in on.items() if v]
    if not used:
        return 0
    total = EXT_HEADER_BYTES
    for key in ("helper", "nat", "acct", "events", "timestamp", "labels"):
        if on[key]:
            total = -(-total // 8) * 8 + EXTENSION_BYTES[key]
    total = max(total, EXT_PREALLOC_BYTES)
    for size in KMALLOC_SIZES:
        if total <= size:
            return size
    return total


def memory_bytes(entries, buckets, entry_bytes=256, bucket_bytes=BUCKET_BYTES, ext_bytes=0):
    """Kernel memory of a table: entries x (slab object + extension block) + buckets x bucket size."""
    return int(entries) * (int(entry_bytes) + int(ext_bytes)) + int(buckets) * int(bucket_bytes)


def max_within_budget(budget_bytes, per_entry_bytes, target_chain_depth, page_size_bytes=PAGE_SIZE,
                      bucket_bytes=BUCKET_BYTES):
    """The largest max (a multiple of the bucket granularity) whose table fits the budget."""
    step = bucket_granularity(page_size_bytes, bucket_bytes)
    guess = int(budget_bytes / (per_entry_bytes + bucket_bytes / float(target_chain_depth)))
    guess = (guess // step) * step
    while guess > 0:
        buckets = buckets_for(guess, target_chain_depth, page_size_bytes, bucket_bytes)
        if guess * per_entry_bytes + buckets * bucket_bytes <= budget_bytes:
            return guess
        guess -= step
    return 0


# --- the model ---------------------------------------------------------------

def _get(d, *path):
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _tcp_lifetime(timeouts, duration_seconds):
    # A short connection lives its duration, then sits in TIME_WAIT.
    return duration_seconds + timeouts["nf_conntrack_tcp_timeout_time_wait"]


def _udp_lifetime(timeouts, duration_seconds, stream_share):
    # An unreplied flow lives udp_timeout after its last packet, an assured one udp_timeout_stream.
    tail = (stream_share * timeouts["nf_conntrack_udp_timeout_stream"]
            + (1 - stream_share) * timeouts["nf_conntrack_udp_timeout"])
    return duration_seconds + tail


def rate_entries(load, timeouts):
    """Little's law per traffic kind: new flows per second x seconds in the table."""
    parts = {}
    if load["tcp_new_per_second"] is not None:
        life = _tcp_lifetime(timeouts, load["tcp_duration_seconds"])
        parts["tcp"] = {"new_per_second": load["tcp_new_per_second"], "lifetime_seconds": life,
                        "entries": int(math.ceil(load["tcp_new_per_second"] * life))}
    if load["udp_new_per_second"] is not None:
        life = _udp_lifetime(timeouts, load["udp_duration_seconds"], load["udp_stream_share"])
        parts["udp"] = {"new_per_second": load["udp_new_per_second"], "lifetime_seconds": life,
                        "entries": int(math.ceil(load["udp_new_per_second"] * life))}
    if load["other_new_per_second"] is not None:
        life = timeouts["nf_conntrack_generic_timeout"]
        parts["other"] = {"new_per_second": load["other_new_per_second"], "lifetime_seconds": life,
                          "entries": int(math.ceil(load["other_new_per_second"] * life))}
    if not parts:
        return None, parts
    return sum(p["entries"] for p in parts.values()), parts


def _validate_timeouts(overrides):
    out = {}
    if not isinstance(overrides or {}, dict):
        raise SizingError("timeouts must be a dict of timeout names to seconds, such as {tcp_timeout_time_wait: 60},"
                          " got %r" % (overrides,), "timeouts", overrides)
    for name, value in (overrides or {}).items():
        key = kernel_key(name)
        if key not in KERNEL_TIMEOUTS:
            raise SizingError("unknown timeout %r; known: %s" % (name, ", ".join(sorted(KERNEL_TIMEOUTS))),
                              "timeouts", name)
        floor = max(1, UNSAFE_FLOOR_SECONDS.get(key, 1))
        try:
            seconds = number(key, value, minimum=0, integer=True, allow_none=False)
        except SizingError as exc:
            raise SizingError("%s (seconds, %d..%d)" % (exc, floor, TIMEOUT_MAX_SECONDS), "timeouts." + name, value)
        if seconds < 1 or seconds > TIMEOUT_MAX_SECONDS:
            raise SizingError("%s=%s is outside the range the kernel accepts (1..%d seconds)"
                              % (key, value, TIMEOUT_MAX_SECONDS), "timeouts." + name, value)
        if seconds < floor:
            raise SizingError("%s=%s is below the safe floor of %d seconds: live flows would lose their entries"
                              " (accepted: %d..%d)" % (key, value, floor, floor, TIMEOUT_MAX_SECONDS),
                              "timeouts." + name, value)
        out[key] = seconds
    return out


INPUTS = ("profile", "peak_entries", "tcp_new_per_second", "tcp_duration_seconds", "udp_new_per_second",
          "udp_duration_seconds", "udp_stream_share", "other_new_per_second", "headroom", "memory_budget",
          "target_chain_depth", "timeouts", "mem_total_bytes", "entry_bytes", "cpu_count", "namespaces",
          "extensions", "page_size_bytes", "pressure_since_boot", "force")


def _validate(inputs):
    unknown = sorted(set(inputs) - set(INPUTS))
    if unknown:
        raise SizingError("unknown inputs: %s; known: %s" % (", ".join(unknown), ", ".join(INPUTS)),
                          unknown[0], inputs[unknown[0]])
    profile = inputs.get("profile") or "default"
    if profile not in PROFILES:
        raise SizingError("unknown profile %r; known: %s" % (profile, ", ".join(sorted(PROFILES))), "profile", profile)
    v = {"profile": profile}
    v["peak_entries"] = number("peak_entries", inputs.get("peak_entries"), integer=True, maximum=INT_MAX)
    for key in ("tcp_new_per_second", "udp_new_per_second", "other_new_per_second"):
        v[key] = number(key, inputs.get(key), maximum=RATE_MAX_PER_SECOND)
    for key in ("tcp_duration_seconds", "udp_duration_seconds"):
        v[key] = number(key, inputs.get(key), maximum=DURATION_MAX_SECONDS) or 0.0
    v["udp_stream_share"] = number("udp_stream_share", inputs.get("udp_stream_share"), maximum=1) or 0.0
    headroom = inputs.get("headroom")
    if headroom is None:
        headroom = DEFAULT_HEADROOM
    try:
        v["headroom"] = number("headroom", headroom, minimum=1, maximum=HEADROOM_MAX, allow_none=False)
    except SizingError as exc:
        raise SizingError("%s (1.5 means 50%% above the need)" % exc, "headroom", headroom)
    depth = inputs.get("target_chain_depth")
    if depth is None:
        depth = DEFAULT_TARGET_CHAIN_DEPTH
    else:
        depth = number("target_chain_depth", depth, allow_none=False, maximum=CHAIN_DEPTH_MAX)
    if depth <= 0:
        raise SizingError("target_chain_depth must be above 0 and at most %s, got %r"
                          % (_fmt(CHAIN_DEPTH_MAX), inputs.get("target_chain_depth")),
                          "target_chain_depth", inputs.get("target_chain_depth"))
    v["target_chain_depth"] = depth
    v["timeouts"] = _validate_timeouts(inputs.get("timeouts"))
    mem = inputs.get("mem_total_bytes")
    v["mem_total_bytes"] = None if mem in (None, "") else parse_size(mem, "mem_total_bytes")
    if v["mem_total_bytes"] is not None and v["mem_total_bytes"] < (16 << 20):
        raise SizingError("mem_total_bytes=%r is below 16 MiB; give the machine's RAM, e.g. 16GiB" % (mem,),
                          "mem_total_bytes", mem)
    v["entry_bytes"] = number("entry_bytes", inputs.get("entry_bytes"), minimum=1, integer=True,
                              maximum=ENTRY_BYTES_MAX)
    v["cpu_count"] = number("cpu_count", inputs.get("cpu_count"), minimum=1, integer=True, maximum=CPU_COUNT_MAX)
    v["namespaces"] = number("namespaces", inputs.get("namespaces"), minimum=1, integer=True,
                             maximum=NAMESPACES_MAX) or 1
    v["page_size_bytes"] = number("page_size_bytes", inputs.get("page_size_bytes"), minimum=512, integer=True,
                                  maximum=PAGE_SIZE_MAX)
    ext = inputs.get("extensions") or {}
    if not isinstance(ext, dict):
        raise SizingError("extensions must be a dict such as {nat: true, acct: false}, got %r" % (ext,),
                          "extensions", ext)
    bad = sorted(set(ext) - set(EXTENSION_BYTES))
    if bad:
        raise SizingError("unknown extensions %s; known: %s" % (", ".join(bad), ", ".join(sorted(EXTENSION_BYTES))),
                          "extensions", bad[0])
    v["extensions"] = dict((k, bool(val)) for k, val in ext.items() if val is not None)
    v["memory_budget"] = inputs.get("memory_budget")
    if v["memory_budget"] is not None:
        budget_parts(v["memory_budget"])
    since_boot = inputs.get("pressure_since_boot")
    v["pressure_since_boot"] = True if since_boot is None else bool(since_boot)
    v["force"] = bool(inputs.get("force"))
    return v


def validate_inputs(**inputs):
    """Check recommend's inputs without facts (no RAM known): the role's pre-flight check.

    Raises the SizingError that recommend() would raise for the same values.
    """
    _validate(inputs)


def unwrap_facts(facts):
    """The conntrack facts dict from itself, ``{conntrack: ...}`` or a registered facts result."""
    if not isinstance(facts, dict) or not facts:
        return None
    if "schema_version" in facts or "settings" in facts or "available" in facts:
        return facts
    if isinstance(facts.get("ansible_facts"), dict):
        facts = facts["ansible_facts"]
    if isinstance(facts.get("conntrack"), dict):
        return facts["conntrack"]
    raise SizingError("facts does not look like conntrack facts: pass ansible_facts.conntrack from"
                      " netfilter.conntrack.facts")


def _facts_usable(facts):
    return isinstance(facts, dict) and facts.get("available", True) is not False


def recommend(facts=None, **inputs):
    """The recommendation dict (CONTRIBUTING.md) for ``facts`` (or None: planning) and the load inputs."""
    v = _validate(inputs)
    planning = not _facts_usable(facts)
    if isinstance(facts, dict) and facts.get("available") is False:
        raise SizingError("nf_conntrack is not available on this host (facts.available is false): nothing to size")
    facts = facts or {}
    warnings = []
    profile = PROFILES[v["profile"]]
    settings_now = facts.get("settings") or {}
    usage = facts.get("usage") or {}
    mem_facts = facts.get("memory") or {}
    stats_totals = _get(facts, "stats", "totals") or {}

    have_load = (v["peak_entries"] is not None or v["tcp_new_per_second"] is not None
                 or v["udp_new_per_second"] is not None or v["other_new_per_second"] is not None)
    if planning and not have_load:
        raise SizingError("a planning call (no facts) needs the load: peak_entries, tcp_new_per_second,"
                          " udp_new_per_second or other_new_per_second")

    # Machine figures: explicit inputs win over facts, then documented fallbacks.
    mem_total = v["mem_total_bytes"] if v["mem_total_bytes"] is not None else mem_facts.get("mem_total_bytes")
    page_size = v["page_size_bytes"] or mem_facts.get("page_size_bytes") or PAGE_SIZE
    bucket_bytes = mem_facts.get("bucket_size_bytes") or BUCKET_BYTES
    if v["entry_bytes"] is not None:
        entry_bytes, entry_source = v["entry_bytes"], "input entry_bytes"
    elif mem_facts.get("slab_size_bytes"):
        entry_bytes, entry_source = int(mem_facts["slab_size_bytes"]), "slab_size of the nf_conntrack slab"
    else:
        entry_bytes, entry_source = FALLBACK_ENTRY_BYTES, "fallback (no slab size known)"
        warnings.append("the nf_conntrack slab size is unknown; memory uses a conservative %d bytes per entry"
                        % FALLBACK_ENTRY_BYTES)
    cpus = v["cpu_count"] or mem_facts.get("cpu_count") or _get(facts, "stats", "cpus")

    # Which extensions the entries carry.
    ext_on = {
        "nat": bool(_get(facts, "environment", "nat_rules_present")),
        "acct": bool(settings_now.get("nf_conntrack_acct")),
        "timestamp": bool(settings_now.get("nf_conntrack_timestamp")),
        "events": settings_now.get("nf_conntrack_events") == 1,
    }
    ext_on.update(v["extensions"])
    ext_bytes = extension_bytes(**ext_on)
    per_entry = entry_bytes + ext_bytes

    # Timeouts in force after applying: override > profile > current > kernel default.
    current_timeouts = dict((k, settings_now[k]) for k in KERNEL_TIMEOUTS if isinstance(settings_now.get(k), int))
    effective = dict(KERNEL_TIMEOUTS)
    effective.update(current_timeouts)
    effective.update(profile["timeouts"])
    effective.update(v["timeouts"])
    timeout_settings = dict(profile["timeouts"])
    timeout_settings.update(v["timeouts"])

    # --- entries needed
    sources = {"peak_entries": v["peak_entries"], "rate_model": None, "current_count": None,
               "observed_rate": None, "pressure": None}
    rates = {}
    rate_total, rate_parts = rate_entries(v, effective)
    sources["rate_model"] = rate_total
    current_max = usage.get("max", settings_now.get("nf_conntrack_max"))
    current_buckets = usage.get("buckets", settings_now.get("nf_conntrack_buckets"))
    current_expect = usage.get("expect_max", settings_now.get("nf_conntrack_expect_max"))
    count = usage.get("count", settings_now.get("nf_conntrack_count"))
    if not planning and count is not None:
        sources["current_count"] = int(count)
    tcp_states = _get(facts, "table", "tcp_states") or {}
    if not planning and _get(facts, "table", "walked") and not _get(facts, "table", "truncated") \
            and tcp_states.get("TIME_WAIT"):
        tw_now = current_timeouts.get("nf_conntrack_tcp_timeout_time_wait", KERNEL_TIMEOUTS[
            "nf_conntrack_tcp_timeout_time_wait"])
        closes = tcp_states["TIME_WAIT"] / float(tw_now)
        rates["tcp_closes_per_second"] = round(closes, 3)
        # Steady state: the TIME_WAIT share scales with the time_wait timeout we will set.
        projected = ((count or 0) - tcp_states["TIME_WAIT"]
                     + tcp_states["TIME_WAIT"] * effective["nf_conntrack_tcp_timeout_time_wait"] / float(tw_now))
        sources["observed_rate"] = int(math.ceil(max(projected, 0)))
    # Pressure now (a stats sample) or since boot (counters, kernel log): the max of the time was too small.
    pressure_seen = []
    pressure_live = False
    sample_rates = _get(facts, "stats", "sample", "rates_per_second") or {}
    for key in ("drop", "early_drop", "insert_failed"):
        if (sample_rates.get(key) or 0) > 0:
            pressure_seen.append("%s %s/s now" % (key, _fmt(sample_rates[key])))
            pressure_live = True
    if v["pressure_since_boot"]:
        for key in ("drop", "early_drop", "insert_failed"):
            if (stats_totals.get(key) or 0) > 0:
                pressure_seen.append("%s=%d since boot" % (key, stats_totals[key]))
        table_full = _get(facts, "kernel_log", "table_full_count") or 0
        if table_full:
            netns = _get(facts, "kernel_log", "netns") or []
            shown = ", ".join(str(n) for n in netns[:3]) + (" and %d more" % (len(netns) - 3) if len(netns) > 3 else "")
            pressure_seen.append("'table full' logged %d times since boot%s" % (
                table_full, " (netns %s)" % shown if netns else ""))
    if not planning and pressure_seen and current_max:
        sources["pressure"] = int(current_max) + 1
        # Drops now: the count is capped at max, so the demand comes from admitted + dropped flows/s.
        now_timeouts = dict(KERNEL_TIMEOUTS, **current_timeouts)
        saturated = demand.saturated_demand(
            _get(facts, "stats", "sample"), count, _tcp_lifetime(now_timeouts, v["tcp_duration_seconds"]),
            _tcp_lifetime(effective, v["tcp_duration_seconds"])) if pressure_live else None
        if saturated and saturated["entries"] > sources["pressure"]:
            sources["pressure"] = saturated["entries"]
            rates["saturated_demand"] = saturated

    candidates = dict((k, val) for k, val in sources.items() if val is not None)
    if candidates:
        driver = max(sorted(candidates), key=lambda k: candidates[k])
        needed = candidates[driver]
    else:
        driver, needed = "none", 0

    # --- max: need x headroom, floored, rounded like the buckets, capped by the budget
    step = bucket_granularity(page_size, bucket_bytes)
    floor = 0
    floor_reason = None
    if mem_total:
        floor = kernel_default_max(mem_total, page_size, bucket_bytes)
        floor_reason = "the kernel's own default for %s of RAM" % human_bytes(mem_total)
    prof_floor = profile["floor_entries"]
    if profile.get("floor_entries_per_cpu") and cpus:
        prof_floor = max(prof_floor, profile["floor_entries_per_cpu"] * int(cpus))
    if prof_floor > floor:
        floor = prof_floor
        floor_reason = "the %s profile's floor" % v["profile"]
    with_headroom = int(math.ceil(needed * v["headroom"]))
    target = max(with_headroom, floor, step)
    new_max = -(-target // step) * step
    depth = v["target_chain_depth"]

    budget_bytes = None
    budget_how = None
    if v["memory_budget"] is not None or mem_total:
        budget_bytes, budget_how = parse_budget(v["memory_budget"], mem_total)
    elif v["memory_budget"] is None:
        warnings.append("RAM unknown: no memory budget applied (pass mem_total_bytes or memory_budget)")

    capped = False
    fits = []
    if budget_bytes is not None:
        full = memory_bytes(new_max, buckets_for(new_max, depth, page_size, bucket_bytes), entry_bytes,
                            bucket_bytes, ext_bytes)
        if full > budget_bytes:
            capped = True
            uncapped = new_max
            new_max = max(step, max_within_budget(budget_bytes, per_entry, depth, page_size, bucket_bytes))
            warnings.append("%s entries would need %s, above the memory budget of %s (%s); nf_conntrack_max is"
                            " capped at %d" % (_human_count(uncapped), human_bytes(full), human_bytes(budget_bytes),
                                               budget_how, new_max))
            fits = _timeouts_that_fit(v, effective, new_max, rate_parts)
            for f in fits:
                warnings.append("to fit the budget: %s=%d (now %d) would bring the need under %d entries"
                                % (f["key"], f["timeout_seconds"], f["current_seconds"], new_max))
            if needed > new_max:
                warnings.append("the capped max (%d) is below the entries needed (%d): expect drops at peak;"
                                " raise memory_budget or cut timeouts" % (new_max, needed))
            if new_max < floor:
                warnings.append("the capped max (%d) is below %s (%d)" % (new_max, floor_reason, floor))

    # The kernel's own ceilings: an int max and a hash table under INT_MAX bytes.
    limit = min(INT_MAX, int(largest_buckets(page_size, bucket_bytes) * depth)) // step * step
    limited = new_max > limit
    if limited:
        warnings.append("nf_conntrack_max %d is above what the kernel can hold at chain depth %s; limited to %d"
                        % (new_max, _fmt(depth), limit))
        new_max = limit
    new_buckets = buckets_for(new_max, depth, page_size, bucket_bytes)
    new_expect = kernel_expect_max(new_buckets)

    settings = {"nf_conntrack_max": new_max, "nf_conntrack_buckets": new_buckets,
                "nf_conntrack_expect_max": new_expect}
    settings.update(timeout_settings)

    # --- memory
    total = memory_bytes(new_max, new_buckets, entry_bytes, bucket_bytes, ext_bytes)
    memory = {
        "entry_bytes": entry_bytes,
        "entry_bytes_source": entry_source,
        "extension_bytes": ext_bytes,
        "extensions": sorted(k for k, on in ext_on.items() if on),
        "per_entry_bytes": per_entry,
        "bucket_bytes": bucket_bytes,
        "entries": new_max,
        "entries_bytes": new_max * per_entry,
        "hash_table_bytes": new_buckets * bucket_bytes,
        "total_bytes": total,
        "total_human": human_bytes(total),
        "needed_bytes": memory_bytes(needed, new_buckets, entry_bytes, bucket_bytes, ext_bytes),
        "mem_total_bytes": mem_total,
        "share_of_ram": round(total / float(mem_total), 6) if mem_total else None,
        "budget_bytes": budget_bytes,
        "budget_human": human_bytes(budget_bytes),
        "budget_source": budget_how,
        "within_budget": None if budget_bytes is None else total <= budget_bytes,
        "capped": capped,
        "limited_by_kernel": limited,
        "namespaces": v["namespaces"],
        "all_namespaces_full_bytes": memory_bytes(new_max * v["namespaces"], new_buckets, entry_bytes,
                                                  bucket_bytes, ext_bytes),
    }
    if v["namespaces"] > 1 or v["profile"] in ("container_host", "kubernetes_node"):
        warnings.append("each network namespace (container, pod) can hold up to nf_conntrack_max entries of its"
                        " own: %d namespaces full would take %s" % (
                            v["namespaces"], human_bytes(memory["all_namespaces_full_bytes"])))

    # --- reasons, one per value
    reasons = {}
    parts_text = []
    for kind, p in sorted(rate_parts.items()):
        parts_text.append("%s: %s new/s x %s s in the table = %s entries" % (
            kind, _fmt(p["new_per_second"]), _fmt(round(p["lifetime_seconds"], 3)), _human_count(p["entries"])))
    why = {
        "peak_entries": "the declared peak_entries (%s)" % _human_count(needed),
        "rate_model": "Little's law (%s)" % "; ".join(parts_text),
        "current_count": "the current count (%d entries)" % needed,
        "observed_rate": "the observed rate (%s closes/s from TIME_WAIT entries, %s entries at the new time_wait)"
                         % (rates.get("tcp_closes_per_second"), _human_count(needed)),
        "pressure": "pressure (%s): the current max %s was too small%s%s" % (
            ", ".join(pressure_seen), current_max,
            "" if pressure_live else " (if max was raised since, pass pressure_since_boot=false)",
            "; demand %s" % rates["saturated_demand"]["how"] if "saturated_demand" in rates else ""),
        "none": "no load figure",
    }[driver]
    text = "%s entries needed from %s; x %s headroom = %s" % (
        _human_count(needed), why, _fmt(v["headroom"]), _human_count(with_headroom))
    if floor and floor >= with_headroom:
        text += "; raised to %d, %s" % (floor, floor_reason)
    if capped:
        text += "; capped at %d by the memory budget (%s)" % (new_max, budget_how)
    elif new_max != max(with_headroom, floor):
        text += "; rounded up to %d (a multiple of %d)" % (new_max, step)
    reasons["nf_conntrack_max"] = text + "."
    reasons["nf_conntrack_buckets"] = (
        "max %d / target chain depth %s = %d buckets, rounded up to a multiple of %d as the kernel does"
        " (each entry sits in two chains, so chains average %s entries at max)."
        % (new_max, _fmt(depth), int(math.ceil(new_max / depth)), step, _fmt(round(2 * new_max / float(new_buckets), 2))))
    reasons["nf_conntrack_expect_max"] = ("4 expectations per expect-hash slot, buckets / 256 slots, as"
                                          " nf_conntrack_expect_init() does at boot.")
    for key in sorted(timeout_settings):
        if key in v["timeouts"]:
            reasons[key] = "your override: %d s (kernel default %d s)." % (timeout_settings[key], KERNEL_TIMEOUTS[key])
        else:
            reasons[key] = "%s profile: %d s (kernel default %d s); %s." % (
                v["profile"], timeout_settings[key], KERNEL_TIMEOUTS[key], "; ".join(profile["sources"]))

    # --- comparison and verdict
    current = {"nf_conntrack_max": current_max, "nf_conntrack_buckets": current_buckets,
               "nf_conntrack_expect_max": current_expect}
    for key in timeout_settings:
        current[key] = current_timeouts.get(key)
    comparison = {}
    for key, value in settings.items():
        now = None if planning else current.get(key)
        comparison[key] = {"current": now, "recommended": value, "change": now != value}

    load_needed = max([val for key, val in candidates.items() if key != "pressure"] or [0])
    verdict = _verdict(planning, count, current_max, current_buckets, load_needed, v["headroom"], pressure_seen,
                       pressure_live,
                       stats_totals, budget_bytes, per_entry, bucket_bytes, new_max, usage)

    tradeoffs = _tradeoffs(v, effective, rate_parts, sources, rates, count, tcp_states, depth, page_size,
                           bucket_bytes, entry_bytes, ext_bytes, budget_bytes, mem_total, floor, step)

    if not planning:
        if _get(facts, "environment", "kube_proxy_running") and v["profile"] != "kubernetes_node":
            warnings.append("kube-proxy is running: it raises max and sets timeouts on start; profile"
                            " kubernetes_node matches what it does")
        if facts.get("host_settable") is False:
            warnings.append("nf_conntrack_max, buckets and expect_max are global and read-only here"
                            " (not the initial namespace): apply them on the host")
        if current_max == 0:
            warnings.append("nf_conntrack_max is 0: the table is unlimited and only RAM bounds it")
        if count and new_max < count:
            # Applying it would drop new flows at once: only on purpose.
            if not v["force"]:
                why = ("capped by the memory budget of %s; raise memory_budget" % budget_how if capped
                       else "the most the kernel can hold at chain depth %s" % _fmt(depth))
                raise SizingError(
                    "the recommended nf_conntrack_max %d (%s) is below the %d entries in the table now: new flows"
                    " would be dropped until the count falls under it. Pass force=true to accept it"
                    % (new_max, why, count), "force", v["force"])
            warnings.append("the recommended max %d is below the current count %d: new flows would be dropped"
                            " until the count falls under it (force=true)" % (new_max, count))

    summary = _summary(planning, verdict, settings, memory, rate_parts, needed, driver)
    return {
        "settings": settings,
        "reasons": reasons,
        "entries": {"needed": needed, "driver": driver, "sources": sources, "with_headroom": with_headroom,
                    "headroom": v["headroom"], "floor": floor, "floor_source": floor_reason,
                    "rate_model": rate_parts, "rates": rates},
        "memory": memory,
        "verdict": verdict,
        "comparison": comparison,
        "tradeoffs": tradeoffs,
        "timeouts_fitting_budget": fits,
        "profile": {"name": v["profile"], "description": profile["description"], "sources": profile["sources"]},
        "planning": planning,
        "summary": summary,
        "warnings": warnings,
    }


def _timeouts_that_fit(v, effective, cap, rate_parts):
    """For each timeout the rate model depends on, the value that would make the need fit under cap."""
    out = []
    headroom = v["headroom"]
    budget_entries = cap / headroom
    if "tcp" in rate_parts:
        others = sum(p["entries"] for k, p in rate_parts.items() if k != "tcp")
        rate = rate_parts["tcp"]["new_per_second"]
        room = budget_entries - others
        if rate > 0 and room > 0:
            tw = room / rate - v["tcp_duration_seconds"]
            key = "nf_conntrack_tcp_timeout_time_wait"
            if UNSAFE_FLOOR_SECONDS[key] <= tw < effective[key]:
                tw = int(math.floor(tw))
                out.append({"key": key, "timeout_seconds": tw, "current_seconds": effective[key]})
    if "udp" in rate_parts:
        others = sum(p["entries"] for k, p in rate_parts.items() if k != "udp")
        rate = rate_parts["udp"]["new_per_second"]
        room = budget_entries - others
        share = v["udp_stream_share"]
        if rate > 0 and room > 0:
            key = "nf_conntrack_udp_timeout_stream" if share >= 0.5 else "nf_conntrack_udp_timeout"
            weight = share if key.endswith("stream") else 1 - share
            other_key = "nf_conntrack_udp_timeout" if key.endswith("stream") else "nf_conntrack_udp_timeout_stream"
            rest = v["udp_duration_seconds"] + (1 - weight) * effective[other_key]
            if weight > 0:
                t = (room / rate - rest) / weight
                if UNSAFE_FLOOR_SECONDS[key] <= t < effective[key]:
                    t = int(math.floor(t))
                    out.append({"key": key, "timeout_seconds": t, "current_seconds": effective[key]})
    return out


def _verdict(planning, count, current_max, current_buckets, needed, headroom, pressure_seen, pressure_live, totals,
             budget_bytes, per_entry, bucket_bytes, new_max, usage):
    if planning:
        return {"status": "ok", "severity": "ok", "judged": False,
                "reasons": ["planning: no current state to judge"], "usage_ratio": None}
    found = []  # (status, severity, reason)
    ratio = None
    if current_max:
        ratio = (count or 0) / float(current_max)
        if ratio >= CRITICAL_RATIO:
            found.append(("undersized", "critical", "the table is %.1f%% full (critical at %d%%)"
                          % (ratio * 100, CRITICAL_RATIO * 100)))
        elif ratio >= WARNING_RATIO:
            found.append(("undersized", "warning", "the table is %.1f%% full (warning at %d%%)"
                          % (ratio * 100, WARNING_RATIO * 100)))
        if pressure_seen:
            # Drops since boot may predate a raised max: critical only when happening now or the table is full.
            severe = pressure_live or ratio >= WARNING_RATIO
            found.append(("undersized", "critical" if severe else "warning",
                          "packets were dropped because the table was full (%s)" % ", ".join(pressure_seen)))
        if needed > current_max:
            found.append(("undersized", "critical", "the load needs %d entries, above the current max %d"
                          % (needed, current_max)))
        elif needed * headroom > current_max:
            found.append(("undersized", "warning", "the load needs %d entries: under the current max %d but"
                          " without %s headroom" % (needed, current_max, _fmt(headroom))))
    if (totals.get("chaintoolong") or 0) > 0:
        found.append(("chains_too_deep", "critical", "the kernel dropped packets on over-long hash chains"
                      " (chaintoolong=%d)" % totals["chaintoolong"]))
    if current_max and current_buckets:
        depth = current_max / float(current_buckets)
        if depth > DEEP_CHAIN_DEPTH:
            found.append(("chains_too_deep", "warning", "max / buckets = %.1f: a full table averages %.1f entries"
                          " per chain (above %s)" % (depth, 2 * depth, _fmt(2 * DEEP_CHAIN_DEPTH))))
    if current_max and budget_bytes is not None and not [f for f in found if f[0] == "undersized"]:
        at_max = memory_bytes(current_max, current_buckets or 0, per_entry, bucket_bytes)
        if at_max > budget_bytes and current_max > OVERSIZED_FACTOR * max(new_max, 1):
            text = "a full table at the current max %d would take %s, above the budget %s, for a load that needs %d" % (
                current_max, human_bytes(at_max), human_bytes(budget_bytes), needed)
            found.append(("oversized", "warning", text))
    if current_max == 0:
        found.append(("oversized", "warning", "nf_conntrack_max is 0 (unlimited)"))
    if not found:
        reasons = ["usage %s of max %s, below the 75%% warning threshold; the load fits with headroom"
                   % (count, current_max)]
        return {"status": "ok", "severity": "ok", "judged": True, "reasons": reasons, "usage_ratio": ratio}
    rank = {"critical": 2, "warning": 1}
    order = {"undersized": 3, "chains_too_deep": 2, "oversized": 1}
    worst = max(found, key=lambda f: (rank[f[1]], order[f[0]]))
    return {"status": worst[0], "severity": worst[1], "judged": True, "reasons": [f[2] for f in found],
            "usage_ratio": ratio}


def _tradeoffs(v, effective, rate_parts, sources, rates, count, tcp_states, depth, page_size, bucket_bytes,
               entry_bytes, ext_bytes, budget_bytes, mem_total, floor, step):
    """Memory at a few timeout values, for the rates given (or observed)."""
    rows = []

    def row(key, seconds, entries):
        target = max(int(math.ceil(entries * v["headroom"])), floor, step)
        mx = -(-target // step) * step
        buckets = buckets_for(mx, depth, page_size, bucket_bytes)
        mem = memory_bytes(mx, buckets, entry_bytes, bucket_bytes, ext_bytes)
        rows.append({"key": key, "timeout_seconds": seconds, "entries_needed": entries, "nf_conntrack_max": mx,
                     "memory_bytes": mem, "memory_human": human_bytes(mem),
                     "share_of_ram": round(mem / float(mem_total), 6) if mem_total else None,
                     "within_budget": None if budget_bytes is None else mem <= budget_bytes})

    key = "nf_conntrack_tcp_timeout_time_wait"
    values = sorted(set([30, 60, 120, effective[key]]))
    if "tcp" in rate_parts:
        for tw in values:
            trial = dict(effective)
            trial[key] = tw
            total = rate_entries(v, trial)[0]
            row(key, tw, total)
    elif rates.get("tcp_closes_per_second") is not None:
        base = (count or 0) - tcp_states.get("TIME_WAIT", 0)
        for tw in values:
            row(key, tw, int(math.ceil(max(0, base + rates["tcp_closes_per_second"] * tw))))
    if "udp" in rate_parts:
        key = ("nf_conntrack_udp_timeout_stream" if v["udp_stream_share"] >= 0.5 else "nf_conntrack_udp_timeout")
        for t in sorted(set([30, 60, 120, 180, effective[key]])):
            if t < UNSAFE_FLOOR_SECONDS[key]:
                continue
            trial = dict(effective)
            trial[key] = t
            total = rate_entries(v, trial)[0]
            row(key, t, total)
    return rows


def _summary(planning, verdict, settings, memory, rate_parts, needed, driver):
    lines = []
    if not planning:
        lines.append("state: %s (%s): %s" % (verdict["status"], verdict["severity"], "; ".join(verdict["reasons"])))
    for kind, p in sorted(rate_parts.items()):
        lines.append("%s: %s new/s x %s s = %s entries (Little's law)" % (
            kind, _fmt(p["new_per_second"]), _fmt(round(p["lifetime_seconds"], 3)), _human_count(p["entries"])))
    lines.append("need %s entries (driver: %s); recommend nf_conntrack_max=%d, nf_conntrack_buckets=%d,"
                 " nf_conntrack_expect_max=%d" % (
                     _human_count(needed), driver, settings["nf_conntrack_max"], settings["nf_conntrack_buckets"],
                     settings["nf_conntrack_expect_max"]))
    share = memory["share_of_ram"]
    lines.append("memory at max: %s (%s entries x %d B + %d buckets x %d B)%s" % (
        memory["total_human"], _human_count(memory["entries"]), memory["per_entry_bytes"],
        settings["nf_conntrack_buckets"], memory["bucket_bytes"],
        "" if share is None else ", %s of RAM" % _percent(share)))
    return lines
