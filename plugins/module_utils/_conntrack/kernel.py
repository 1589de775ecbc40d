# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection knows about nf_conntrack, in one place.

Private to this collection. One table of every key (kind, unit, range, kernel default,
global or per network namespace, whether kube-proxy writes it and since which release),
the bucket rounding, the boot defaults, and the parsers of /proc/meminfo and sysctl.d
lines. reading, sizing, writing and the filters import these; none defines its own.
Pure: no I/O here except ``host_granularity()``, which asks the running system.
Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import math
import os
import re
import struct

PREFIX = "nf_conntrack_"
SYSCTL_PREFIX = "net.netfilter."

INT_MAX = 2 ** 31 - 1
# proc_dointvec_jiffies refuses seconds above INT_MAX / HZ; HZ=1000 is the strictest
# kernel configuration, so this limit holds on every kernel.
TIMEOUT_MAX_SECONDS = INT_MAX // 1000
# nf_ct_alloc_hashtable refuses more than INT_MAX / sizeof(struct hlist_nulls_head).
BUCKETS_MAX = INT_MAX // 8
PAGE_SIZE = 4096
BUCKET_BYTES = 8   # one hlist_nulls_head (a pointer) per bucket on 64-bit
# The same on the host this runs on: a pointer, so 4 on a 32-bit userland.
HOST_BUCKET_BYTES = struct.calcsize("P")

# kind: int | bool | buckets | timeout; unit: entries | buckets | seconds | bytes | None;
# group: table | timeout | option | frag6 (timeouts are the protocol state timeouts the
# sizing model reads); scope: global (read-only outside the initial network namespace)
# or netns; default: the value on a 6.x kernel, None where it depends on RAM or the key
# is gone from 6.x; kube_proxy: the kube-proxy release that first writes the key, None
# when it never does; kube_proxy_by_default: whether it writes the key with its default
# configuration (the others only when its configuration sets them); safe_minimum: the
# shortest timeout the collection accepts, below which entries of live flows would expire
# (keepalive probes, SYN retransmits, late FIN/ACKs, DNS retries), None for no floor.
Key = collections.namedtuple("Key", "kind unit minimum maximum default group scope writable kube_proxy "
                                    "kube_proxy_by_default safe_minimum")

KUBE_PROXY_FIRST = (1, 0)   # keys kube-proxy has written for as long as the collection knows
KUBE_PROXY_1_29 = (1, 29)   # conntrack.tcpBeLiberal, udpTimeout, udpStreamTimeout


def _key(kind, unit, minimum, maximum, default, group, **more):
    """A Key; ``more``: scope (netns), writable (True), kube_proxy, by_default, safe_minimum (None, False, None)."""
    return Key(kind, unit, minimum, maximum, default, group, more.get("scope", "netns"), more.get("writable", True),
               more.get("kube_proxy"), more.get("by_default", False), more.get("safe_minimum"))


def _bool(default):
    return _key("bool", None, 0, 1, default, "option")


def _timeout(default, safe_minimum=None, kube_proxy=None, by_default=False):
    return _key("timeout", "seconds", 1, TIMEOUT_MAX_SECONDS, default, "timeout", kube_proxy=kube_proxy,
                by_default=by_default, safe_minimum=safe_minimum)


KEYS = {
    "nf_conntrack_max": _key("int", "entries", 0, INT_MAX, None, "table", scope="global",
                             kube_proxy=KUBE_PROXY_FIRST, by_default=True),
    # kube-proxy writes the hashsize module parameter, to max / 4 (KUBE_PROXY_MAX_PER_BUCKET).
    "nf_conntrack_buckets": _key("buckets", "buckets", 1, BUCKETS_MAX, None, "table", scope="global",
                                 kube_proxy=KUBE_PROXY_FIRST, by_default=True),
    "nf_conntrack_expect_max": _key("int", "entries", 1, INT_MAX, None, "table", scope="global"),
    "nf_conntrack_count": _key("int", "entries", 0, INT_MAX, None, "table", writable=False),
    "nf_conntrack_acct": _bool(0),
    "nf_conntrack_timestamp": _bool(0),
    "nf_conntrack_checksum": _bool(1),
    "nf_conntrack_helper": _bool(0),
    "nf_conntrack_tcp_loose": _bool(1),
    "nf_conntrack_tcp_be_liberal": _key("bool", None, 0, 1, 0, "option", kube_proxy=KUBE_PROXY_1_29),
    "nf_conntrack_tcp_ignore_invalid_rst": _bool(0),
    "nf_conntrack_dccp_loose": _bool(None),
    "nf_conntrack_events": _key("int", None, 0, 2, 2, "option"),
    "nf_conntrack_log_invalid": _key("int", None, 0, 255, 0, "option"),
    "nf_conntrack_tcp_max_retrans": _key("int", None, 0, 255, 3, "option"),
    "nf_conntrack_frag6_high_thresh": _key("int", "bytes", 0, 2 ** 62, 4 * 1024 * 1024, "frag6"),
    "nf_conntrack_frag6_low_thresh": _key("int", "bytes", 0, 2 ** 62, 3 * 1024 * 1024, "frag6"),
    "nf_conntrack_frag6_timeout": _key("timeout", "seconds", 1, TIMEOUT_MAX_SECONDS, 60, "frag6"),
    # Defaults of 6.x: nf_conntrack_proto_tcp.c, _udp.c, _icmp.c, _icmpv6.c, _generic.c, _gre.c, _sctp.c.
    "nf_conntrack_tcp_timeout_syn_sent": _timeout(120, 30),
    "nf_conntrack_tcp_timeout_syn_recv": _timeout(60, 10),
    "nf_conntrack_tcp_timeout_established": _timeout(432000, 300, KUBE_PROXY_FIRST, True),
    "nf_conntrack_tcp_timeout_fin_wait": _timeout(120, 10),
    "nf_conntrack_tcp_timeout_close_wait": _timeout(60, 10, KUBE_PROXY_FIRST, True),
    "nf_conntrack_tcp_timeout_last_ack": _timeout(30, 10),
    "nf_conntrack_tcp_timeout_time_wait": _timeout(120, 30),
    "nf_conntrack_tcp_timeout_close": _timeout(10),
    "nf_conntrack_tcp_timeout_max_retrans": _timeout(300, 30),
    "nf_conntrack_tcp_timeout_unacknowledged": _timeout(300, 30),
    "nf_conntrack_udp_timeout": _timeout(30, 10, KUBE_PROXY_1_29),
    "nf_conntrack_udp_timeout_stream": _timeout(120, 30, KUBE_PROXY_1_29),
    "nf_conntrack_icmp_timeout": _timeout(30),
    "nf_conntrack_icmpv6_timeout": _timeout(30),
    "nf_conntrack_generic_timeout": _timeout(600, 30),
    "nf_conntrack_gre_timeout": _timeout(30),
    "nf_conntrack_gre_timeout_stream": _timeout(180),
    "nf_conntrack_sctp_timeout_closed": _timeout(10),
    "nf_conntrack_sctp_timeout_cookie_wait": _timeout(3),
    "nf_conntrack_sctp_timeout_cookie_echoed": _timeout(3),
    "nf_conntrack_sctp_timeout_established": _timeout(210),
    "nf_conntrack_sctp_timeout_shutdown_sent": _timeout(3),
    "nf_conntrack_sctp_timeout_shutdown_recd": _timeout(3),
    "nf_conntrack_sctp_timeout_shutdown_ack_sent": _timeout(3),
    "nf_conntrack_sctp_timeout_heartbeat_sent": _timeout(30),
    # Older kernels only (heartbeat_acked went in 5.x, DCCP in 6.16): writable where present.
    "nf_conntrack_sctp_timeout_heartbeat_acked": _timeout(None),
}
for _name in ("request", "respond", "partopen", "open", "closereq", "closing", "timewait"):
    KEYS["nf_conntrack_dccp_timeout_" + _name] = _timeout(None)

WRITABLE_KEYS = dict((name, spec) for name, spec in KEYS.items() if spec.writable)
GLOBAL_KEYS = tuple(sorted(name for name, spec in KEYS.items() if spec.scope == "global"))
# The table's size: global, and their boot defaults scale with the RAM (or a hashsize option).
TABLE_SIZE_KEYS = tuple(sorted(name for name, spec in KEYS.items() if spec.group == "table" and spec.writable))
# The protocol state timeouts of a 6.x kernel, with their defaults: what the sizing model reads.
KERNEL_TIMEOUTS = dict((name, spec.default) for name, spec in KEYS.items()
                       if spec.group == "timeout" and spec.default is not None)
# Defaults of the other writable keys on 6.x (older kernels differ: see boot_defaults()).
KERNEL_OTHER_DEFAULTS = dict((name, spec.default) for name, spec in KEYS.items()
                             if spec.group in ("option", "frag6") and spec.default is not None)

SAFE_FLOOR_SECONDS = dict((name, spec.safe_minimum) for name, spec in KEYS.items()
                          if spec.safe_minimum is not None)

KEY_RE = re.compile(r"^nf_conntrack_[a-z0-9_]+$")


# ------------------------------------------------------------------ kube-proxy
# Which keys it writes lives in KEYS above; how each release writes them (the cap, raise-only
# releases, the hash size) lives in kubeproxy.py's release table. These names stay for callers.
KUBE_PROXY_MAX_PER_BUCKET = 4

# Average entries per bucket above which lookups walk long chains (max / buckets).
DEEP_CHAIN_DEPTH = 4.0


def kube_proxy_keys(version=None, by_default_only=False):
    """Keys kube-proxy ``version`` ((major, minor); None: the newest) may write, sorted.

    ``by_default_only``: only those it writes with its default configuration (maxPerCore,
    min, tcpEstablishedTimeout, tcpCloseWaitTimeout); the 1.29 ones need their option set.
    """
    return tuple(sorted(name for name, spec in KEYS.items()
                        if spec.kube_proxy is not None and (version is None or tuple(version) >= spec.kube_proxy)
                        and (spec.kube_proxy_by_default or not by_default_only)))


def _kubeproxy():
    # Imported late: kubeproxy.py imports this module for KEYS and the bucket rounding.
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy
    return kubeproxy


def kube_proxy_raises_only(key, version=None):
    """True when kube-proxy ``version`` ((major, minor), None: unknown) leaves a value of
    ``key`` above its own alone; False when it writes its own value over ours either way."""
    return _kubeproxy().raises_only(key, version)


def after_kube_proxy_restart(key, intended, current, version=None):
    """The value of ``key`` once kube-proxy ``version`` has started again (kubeproxy.after_restart)."""
    return _kubeproxy().after_restart(key, intended, current, version)


def kube_proxy_buckets(max_entries):
    """The hash size kube-proxy asks for with its max (before the kernel rounds it)."""
    return max(1, _kubeproxy().hash_size(max_entries))


# ------------------------------------------------------------------ rounding
def bucket_granularity(page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """nf_ct_alloc_hashtable rounds up to a whole page of hlist_nulls_heads: 512 on x86_64."""
    return max(1, int(page_size_bytes) // int(bucket_bytes))


GRANULARITY = bucket_granularity()


def host_granularity():
    """The bucket granularity of the running system (page size / pointer size)."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        page = PAGE_SIZE
    return bucket_granularity(page, HOST_BUCKET_BYTES)


def round_up(value, step):
    """``value`` rounded up to a multiple of ``step`` (whole numbers)."""
    return -(-int(value) // int(step)) * int(step)


def round_buckets(buckets, granularity=GRANULARITY):
    """The value the kernel reads back after writing ``buckets`` (100000 -> 100352 on x86_64)."""
    return round_up(max(1, int(math.ceil(buckets))), granularity)


def largest_buckets(granularity=GRANULARITY, bucket_bytes=BUCKET_BYTES):
    """The largest rounded bucket count nf_ct_alloc_hashtable accepts."""
    return (INT_MAX // bucket_bytes) // granularity * granularity


# ------------------------------------------------------------------ per-entry memory
# The extension area (nf_ct_ext): one krealloc'd block per entry, at least
# NF_CT_EXT_PREALLOC bytes. Sizes of the 6.x structs on 64-bit.
EXT_HEADER_BYTES = 16
EXTENSION_BYTES = {"nat": 8, "acct": 32, "timestamp": 16, "events": 24, "labels": 16, "helper": 64}
EXT_PREALLOC_BYTES = 128
KMALLOC_SIZES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024)


# ------------------------------------------------------------------ boot defaults
def kernel_version(release):
    """(major, minor) from a release string like 6.1.0-27-amd64, or None."""
    m = re.match(r"^(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def kernel_default_buckets(mem_total_bytes, page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """nf_conntrack_init_start() on a 64-bit kernel without hashsize= (6.x)."""
    gib = 1 << 30
    if mem_total_bytes > 4 * gib:
        size = 262144
    elif mem_total_bytes > gib:
        size = 65536
    else:
        size = max(1024, mem_total_bytes // 16384 // bucket_bytes)
    return round_buckets(size, bucket_granularity(page_size_bytes, bucket_bytes))


def kernel_default_max(mem_total_bytes, page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """On 6.x the boot default max equals the buckets (max_factor 1)."""
    return kernel_default_buckets(mem_total_bytes, page_size_bytes, bucket_bytes)


def kernel_expect_max(buckets):
    """nf_conntrack_expect_init(): expect hash = buckets / 256 (at least 1), max = 4 per slot."""
    return max(1, int(buckets) // 256) * 4


def boot_defaults(release, mem_total_bytes, hashsize=None, page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """What nf_conntrack starts with when it loads and no sysctl is applied: max, buckets,
    expect_max and the other keys, by kernel version and RAM. ``hashsize``: an
    ``options nf_conntrack hashsize=N`` in force (then the kernel keeps its old max factor 8)."""
    version = kernel_version(release) or (6, 0)
    granularity = bucket_granularity(page_size_bytes, bucket_bytes)
    if hashsize:
        buckets = round_buckets(hashsize, granularity)
        max_entries = 8 * buckets
    elif version >= (5, 15):
        # 5.15 ("sanitize table size default settings"): max == buckets.
        buckets = kernel_default_buckets(mem_total_bytes, page_size_bytes, bucket_bytes)
        max_entries = buckets
    else:
        gib = 1 << 30
        size = 65536 if mem_total_bytes > 4 * gib else 16384 if mem_total_bytes > gib else \
            max(32, mem_total_bytes // 16384 // bucket_bytes)
        buckets = round_buckets(size, granularity)
        max_entries = 4 * buckets
    out = dict(KERNEL_TIMEOUTS)
    out.update(KERNEL_OTHER_DEFAULTS)
    if version < (5, 19):
        out["nf_conntrack_events"] = 1  # "2 (auto)" came with 5.19
    out.update({"nf_conntrack_max": max_entries, "nf_conntrack_buckets": buckets,
                "nf_conntrack_expect_max": kernel_expect_max(buckets)})
    return out


# ------------------------------------------------------------------ parsers
_MEM_TOTAL = re.compile(r"^MemTotal:\s+(\d+)\s*kB", re.M)


def mem_total_bytes(meminfo):
    """MemTotal in bytes from the text (or bytes) of /proc/meminfo; None when absent."""
    if isinstance(meminfo, bytes):
        meminfo = meminfo.decode("ascii", "replace")
    m = _MEM_TOTAL.search(meminfo or "")
    return int(m.group(1)) * 1024 if m else None


def parse_sysctl_line(line):
    """(dotted key, value string) from one sysctl.d(5) line, or None for comments and junk.

    A leading ``-`` (ignore errors) is dropped; a key whose first separator is ``/`` uses
    slashes as separators and is turned into the dotted form.
    """
    line = line.strip()
    if not line or line[0] in "#;" or "=" not in line:
        return None
    key, value = line.split("=", 1)
    key = key.strip().lstrip("-").strip()
    if key[:1] == "/" or ("/" in key and key.index("/") < (key.index(".") if "." in key else len(key))):
        key = key.strip("/").replace("/", ".")
    return key, value.strip()


def parse_sysctl_file(text):
    """{dotted key: value string} as sysctl reads a sysctl.d file (the last line for a key wins)."""
    values = {}
    for line in (text or "").splitlines():
        parsed = parse_sysctl_line(line)
        if parsed:
            values[parsed[0]] = parsed[1]
    return values


def conntrack_name(dotted):
    """The nf_conntrack_* name of a dotted sysctl key, or None for other keys."""
    if dotted == "net.nf_conntrack_max":
        return "nf_conntrack_max"  # the legacy alias of the same value
    if dotted.startswith(SYSCTL_PREFIX + PREFIX):
        return dotted[len(SYSCTL_PREFIX):]
    return None
