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

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import advisor, demand, errors
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.values import dig as _get
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel
# The kernel's own figures and rules live in kernel.py; these names stay for callers of sizing.
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.kernel import (  # noqa: F401 pylint: disable=unused-import
    BUCKET_BYTES, BUCKETS_MAX, INT_MAX, KERNEL_OTHER_DEFAULTS, KERNEL_TIMEOUTS, PAGE_SIZE, PREFIX,
    TIMEOUT_MAX_SECONDS, boot_defaults, bucket_granularity, kernel_default_buckets, kernel_default_max, kernel_expect_max,
    kernel_version, round_buckets,
)

# Below these a timeout is refused (kernel.SAFE_FLOOR_SECONDS says why).
UNSAFE_FLOOR_SECONDS = kernel.SAFE_FLOOR_SECONDS

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
WARNING_RATIO = 0.75
CRITICAL_RATIO = 0.90
# Above this many entries per bucket a lookup walks long chains (kube-proxy uses 4).
DEEP_CHAIN_DEPTH = kernel.DEEP_CHAIN_DEPTH
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


class SizingError(errors.ConntrackError, ValueError):
    """Bad input for the sizing model; the message says which and why.

    ``option`` is the input's name and ``value`` what was given, so that callers (the
    role's input check) can name their own variable instead.
    """

    def __init__(self, message, option=None, value=None):
        errors.ConntrackError.__init__(self, message)
        self.option = option
        self.value = value


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
    """Bytes from 123, "512MiB", "2G", "16GiB" (K/M/G/T are binary, like ansible's human_to_bytes).

    Not human_to_bytes itself: it refuses the IEC spellings (512MiB, 16GiB) that our docs and the
    kernel use, and sizing stays free of Ansible imports so the filters and property tests share it."""
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
    """1.5 GiB style, binary units, one decimal. Not bytes_to_human, which labels the same
    binary figures "MB" and would disagree with /proc/slabinfo-based docs."""
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


def buckets_for(max_entries, target_chain_depth=DEFAULT_TARGET_CHAIN_DEPTH,
                page_size_bytes=PAGE_SIZE, bucket_bytes=BUCKET_BYTES):
    """Buckets so that max / buckets <= target_chain_depth, rounded like the kernel."""
    granularity = bucket_granularity(page_size_bytes, bucket_bytes)
    return min(round_buckets(max(1, max_entries) / float(target_chain_depth), granularity),
               kernel.largest_buckets(granularity, bucket_bytes))


def extension_bytes(nat=False, acct=False, timestamp=False, events=False, labels=False, helper=False):
    """Bytes of the per-entry nf_ct_ext block for the extensions that are on (0 if none)."""
    on = dict(nat=nat, acct=acct, timestamp=timestamp, events=events, labels=labels, helper=helper)
    used = [k for k, v in on.items() if v]
    if not used:
        return 0
    total = EXT_HEADER_BYTES
    for key in ("helper", "nat", "acct", "events", "timestamp", "labels"):
        if on[key]:
            total = kernel.round_up(total, 8) + EXTENSION_BYTES[key]
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


class SizingModel(object):
    """One recommendation being worked out, the community.crypto way: validated inputs and the
    facts in, one method per step, each step reading the figures the earlier ones set.

    ``recommend()`` runs the steps in order and assembles the documented dict; warnings are
    collected in the order the steps find them.
    """

    def __init__(self, facts, inputs):
        self.inputs = inputs
        self.planning = not _facts_usable(facts)
        self.facts = facts or {}
        self.profile = PROFILES[inputs["profile"]]
        self.warnings = []
        self.settings_now = self.facts.get("settings") or {}
        self.stats_totals = _get(self.facts, "stats", "totals") or {}
        usage = self.facts.get("usage") or {}
        self.current_max = usage.get("max", self.settings_now.get("nf_conntrack_max"))
        self.current_buckets = usage.get("buckets", self.settings_now.get("nf_conntrack_buckets"))
        self.current_expect = usage.get("expect_max", self.settings_now.get("nf_conntrack_expect_max"))
        self.count = usage.get("count", self.settings_now.get("nf_conntrack_count"))
        self.tcp_states = _get(self.facts, "table", "tcp_states") or {}

    def machine_figures(self):
        """RAM, page and bucket size, bytes per entry, CPUs: explicit inputs win over facts, then fallbacks."""
        inputs, memory_facts = self.inputs, self.facts.get("memory") or {}
        self.mem_total = inputs["mem_total_bytes"] if inputs["mem_total_bytes"] is not None \
            else memory_facts.get("mem_total_bytes")
        self.page_size = inputs["page_size_bytes"] or memory_facts.get("page_size_bytes") or PAGE_SIZE
        self.bucket_bytes = memory_facts.get("bucket_size_bytes") or BUCKET_BYTES
        self.step = bucket_granularity(self.page_size, self.bucket_bytes)
        if inputs["entry_bytes"] is not None:
            self.entry_bytes, self.entry_source = inputs["entry_bytes"], "input entry_bytes"
        elif memory_facts.get("slab_size_bytes"):
            self.entry_bytes = int(memory_facts["slab_size_bytes"])
            self.entry_source = "slab_size of the nf_conntrack slab"
        else:
            self.entry_bytes, self.entry_source = FALLBACK_ENTRY_BYTES, "fallback (no slab size known)"
            self.warnings.append("the nf_conntrack slab size is unknown; memory uses a conservative %d bytes per"
                                 " entry" % FALLBACK_ENTRY_BYTES)
        self.cpus = inputs["cpu_count"] or memory_facts.get("cpu_count") or _get(self.facts, "stats", "cpus")
        # Which extensions the entries carry.
        self.extensions_on = {
            "nat": bool(_get(self.facts, "environment", "nat_rules_present")),
            "acct": bool(self.settings_now.get("nf_conntrack_acct")),
            "timestamp": bool(self.settings_now.get("nf_conntrack_timestamp")),
            "events": self.settings_now.get("nf_conntrack_events") == 1,
        }
        self.extensions_on.update(inputs["extensions"])
        self.ext_bytes = extension_bytes(**self.extensions_on)
        self.per_entry = self.entry_bytes + self.ext_bytes

    def table_bytes(self, entries, buckets):
        """Kernel memory of ``entries`` entries and ``buckets`` buckets on this machine."""
        return memory_bytes(entries, buckets, self.entry_bytes, self.bucket_bytes, self.ext_bytes)

    def buckets_for(self, max_entries):
        return buckets_for(max_entries, self.inputs["target_chain_depth"], self.page_size, self.bucket_bytes)

    def effective_timeouts(self):
        """Timeouts in force after applying: override > profile > current > kernel default."""
        self.current_timeouts = dict((k, self.settings_now[k]) for k in KERNEL_TIMEOUTS
                                     if isinstance(self.settings_now.get(k), int))
        self.effective = dict(KERNEL_TIMEOUTS)
        self.effective.update(self.current_timeouts)
        self.effective.update(self.profile["timeouts"])
        self.effective.update(self.inputs["timeouts"])
        self.timeout_settings = dict(self.profile["timeouts"])
        self.timeout_settings.update(self.inputs["timeouts"])

    def entries_needed(self):
        """Every source of a need (declared, Little's law, count, observed rate, pressure); the largest drives."""
        self.sources = {"peak_entries": self.inputs["peak_entries"], "rate_model": None, "current_count": None,
                        "largest_namespace": None, "observed_rate": None, "pressure": None}
        self.rates = {}
        self.sources["rate_model"], self.rate_parts = rate_entries(self.inputs, self.effective)
        if not self.planning and self.count is not None:
            self.sources["current_count"] = int(self.count)
        self._largest_namespace()
        self._observed_rate()
        self._pressure()
        candidates = dict((k, val) for k, val in self.sources.items() if val is not None)
        if candidates:
            self.driver = max(sorted(candidates), key=lambda k: candidates[k])
            self.needed = candidates[self.driver]
        else:
            self.driver, self.needed = "none", 0
        # What the load itself needs, without the pressure source (which is the max of the time + 1).
        self.load_needed = max([val for key, val in candidates.items() if key != "pressure"] or [0])

    def _largest_namespace(self):
        """With the facts' namespace list: each namespace is held to the one global max on its own,
        so the fullest one is a need of its own (a container can fill the table the host barely uses)."""
        self.spaces = advisor.counted_namespaces(self.facts)
        self.largest = max(self.spaces, key=lambda ns: ns["entries"]) if self.spaces else None
        # The module's own namespace is current_count already: the need here is the fullest other one.
        others = [ns for ns in self.spaces if not ns.get("current")]
        self.fullest_other = max(others, key=lambda ns: ns["entries"]) if others else None
        if not self.planning and self.fullest_other is not None:
            self.sources["largest_namespace"] = self.fullest_other["entries"]

    def _observed_rate(self):
        tcp_states = self.tcp_states
        if self.planning or not _get(self.facts, "table", "walked") or _get(self.facts, "table", "truncated") \
                or not tcp_states.get("TIME_WAIT"):
            return
        time_wait_now = self.current_timeouts.get("nf_conntrack_tcp_timeout_time_wait",
                                                  KERNEL_TIMEOUTS["nf_conntrack_tcp_timeout_time_wait"])
        self.rates["tcp_closes_per_second"] = round(tcp_states["TIME_WAIT"] / float(time_wait_now), 3)
        # Steady state: the TIME_WAIT share scales with the time_wait timeout we will set.
        projected = ((self.count or 0) - tcp_states["TIME_WAIT"] + tcp_states["TIME_WAIT"]
                     * self.effective["nf_conntrack_tcp_timeout_time_wait"] / float(time_wait_now))
        self.sources["observed_rate"] = int(math.ceil(max(projected, 0)))

    def _pressure(self):
        """Pressure now (a stats sample) or since boot (counters, kernel log): the max of the time was too small."""
        self.pressure_seen = []
        self.pressure_live = False
        sample_rates = _get(self.facts, "stats", "sample", "rates_per_second") or {}
        for key in ("drop", "early_drop", "insert_failed"):
            if (sample_rates.get(key) or 0) > 0:
                self.pressure_seen.append("%s %s/s now" % (key, _fmt(sample_rates[key])))
                self.pressure_live = True
        if self.inputs["pressure_since_boot"]:
            for key in ("drop", "early_drop", "insert_failed"):
                if (self.stats_totals.get(key) or 0) > 0:
                    self.pressure_seen.append("%s=%d since boot" % (key, self.stats_totals[key]))
            for ns in self.spaces:
                dropped = _get(ns, "stats", "totals", "drop") or 0
                if dropped and not ns.get("current"):
                    self.pressure_seen.append("drop=%d since boot in %s" % (dropped, advisor.namespace_label(ns)))
            table_full = _get(self.facts, "kernel_log", "table_full_count") or 0
            if table_full:
                netns = _get(self.facts, "kernel_log", "netns") or []
                shown = ", ".join(str(n) for n in netns[:3]) + (
                    " and %d more" % (len(netns) - 3) if len(netns) > 3 else "")
                self.pressure_seen.append("'table full' logged %d times since boot%s" % (
                    table_full, " (netns %s)" % shown if netns else ""))
        if not self.planning and self.pressure_seen and self.current_max:
            self.sources["pressure"] = int(self.current_max) + 1
            self._saturated_demand()

    def _saturated_demand(self):
        """Drops now: the count is capped at max, so the demand comes from admitted + dropped flows/s."""
        if not self.pressure_live:
            return
        now_timeouts = dict(KERNEL_TIMEOUTS, **self.current_timeouts)
        duration = self.inputs["tcp_duration_seconds"]
        saturated = demand.saturated_demand(_get(self.facts, "stats", "sample"), self.count,
                                            _tcp_lifetime(now_timeouts, duration),
                                            _tcp_lifetime(self.effective, duration))
        if saturated and saturated["entries"] > self.sources["pressure"]:
            self.sources["pressure"] = saturated["entries"]
            self.rates["saturated_demand"] = saturated

    def floor(self):
        """The kernel's own default for the RAM, or the profile's floor when higher."""
        self.floor_entries, self.floor_reason = 0, None
        if self.mem_total:
            self.floor_entries = kernel_default_max(self.mem_total, self.page_size, self.bucket_bytes)
            self.floor_reason = "the kernel's own default for %s of RAM" % human_bytes(self.mem_total)
        profile_floor = self.profile["floor_entries"]
        if self.profile.get("floor_entries_per_cpu") and self.cpus:
            profile_floor = max(profile_floor, self.profile["floor_entries_per_cpu"] * int(self.cpus))
        if profile_floor > self.floor_entries:
            self.floor_entries = profile_floor
            self.floor_reason = "the %s profile's floor" % self.inputs["profile"]

    def max_entries(self):
        """Need x headroom, floored, rounded like the buckets, capped by the budget and the kernel."""
        self.with_headroom = int(math.ceil(self.needed * self.inputs["headroom"]))
        self.new_max = kernel.round_up(max(self.with_headroom, self.floor_entries, self.step), self.step)
        self.budget_bytes, self.budget_how = None, None
        if self.inputs["memory_budget"] is not None or self.mem_total:
            self.budget_bytes, self.budget_how = parse_budget(self.inputs["memory_budget"], self.mem_total)
        else:
            self.warnings.append("RAM unknown: no memory budget applied (pass mem_total_bytes or memory_budget)")
        self.capped, self.fits = False, []
        if self.budget_bytes is not None:
            self._cap_to_budget()
        self._limit_to_kernel()

    def _cap_to_budget(self):
        full = self.table_bytes(self.new_max, self.buckets_for(self.new_max))
        if full <= self.budget_bytes:
            return
        self.capped = True
        uncapped = self.new_max
        self.new_max = max(self.step, max_within_budget(self.budget_bytes, self.per_entry,
                                                        self.inputs["target_chain_depth"], self.page_size,
                                                        self.bucket_bytes))
        self.warnings.append("%s entries would need %s, above the memory budget of %s (%s); nf_conntrack_max is"
                             " capped at %d" % (_human_count(uncapped), human_bytes(full),
                                                human_bytes(self.budget_bytes), self.budget_how, self.new_max))
        self.fits = self.timeouts_that_fit()
        for fit in self.fits:
            self.warnings.append("to fit the budget: %s=%d (now %d) would bring the need under %d entries"
                                 % (fit["key"], fit["timeout_seconds"], fit["current_seconds"], self.new_max))
        if self.needed > self.new_max:
            self.warnings.append("the capped max (%d) is below the entries needed (%d): expect drops at peak;"
                                 " raise memory_budget or cut timeouts" % (self.new_max, self.needed))
        if self.new_max < self.floor_entries:
            self.warnings.append("the capped max (%d) is below %s (%d)"
                                 % (self.new_max, self.floor_reason, self.floor_entries))

    def _limit_to_kernel(self):
        """The kernel's own ceilings: an int max and a hash table under INT_MAX bytes."""
        depth = self.inputs["target_chain_depth"]
        limit = min(INT_MAX, int(kernel.largest_buckets(self.step, self.bucket_bytes) * depth)) \
            // self.step * self.step
        self.limited = self.new_max > limit
        if self.limited:
            self.warnings.append("nf_conntrack_max %d is above what the kernel can hold at chain depth %s;"
                                 " limited to %d" % (self.new_max, _fmt(depth), limit))
            self.new_max = limit

    def timeouts_that_fit(self):
        """For each timeout the rate model depends on, the value that would make the need fit under the cap."""
        out = []
        budget_entries = self.new_max / self.inputs["headroom"]
        for kind in ("tcp", "udp"):
            if kind not in self.rate_parts:
                continue
            rate = self.rate_parts[kind]["new_per_second"]
            room = budget_entries - sum(p["entries"] for k, p in self.rate_parts.items() if k != kind)
            if rate <= 0 or room <= 0:
                continue
            key, seconds = self._fitting_timeout(kind, room / rate)
            if seconds is not None and UNSAFE_FLOOR_SECONDS[key] <= seconds < self.effective[key]:
                out.append({"key": key, "timeout_seconds": int(math.floor(seconds)),
                            "current_seconds": self.effective[key]})
        return out

    def _fitting_timeout(self, kind, lifetime_seconds):
        """(key, seconds): the timeout that gives flows of ``kind`` this lifetime in the table."""
        if kind == "tcp":
            return "nf_conntrack_tcp_timeout_time_wait", lifetime_seconds - self.inputs["tcp_duration_seconds"]
        key = _udp_key(self.inputs["udp_stream_share"])
        weight = self.inputs["udp_stream_share"] if key.endswith("stream") else 1 - self.inputs["udp_stream_share"]
        other_key = "nf_conntrack_udp_timeout" if key.endswith("stream") else "nf_conntrack_udp_timeout_stream"
        rest = self.inputs["udp_duration_seconds"] + (1 - weight) * self.effective[other_key]
        if weight <= 0:
            return key, None
        return key, (lifetime_seconds - rest) / weight

    def buckets(self):
        self.new_buckets = self.buckets_for(self.new_max)
        self.settings = {"nf_conntrack_max": self.new_max, "nf_conntrack_buckets": self.new_buckets,
                         "nf_conntrack_expect_max": kernel_expect_max(self.new_buckets)}
        self.settings.update(self.timeout_settings)

    def memory(self):
        inputs, total = self.inputs, self.table_bytes(self.new_max, self.new_buckets)
        memory = {
            "entry_bytes": self.entry_bytes,
            "entry_bytes_source": self.entry_source,
            "extension_bytes": self.ext_bytes,
            "extensions": sorted(k for k, on in self.extensions_on.items() if on),
            "per_entry_bytes": self.per_entry,
            "bucket_bytes": self.bucket_bytes,
            "entries": self.new_max,
            "entries_bytes": self.new_max * self.per_entry,
            "hash_table_bytes": self.new_buckets * self.bucket_bytes,
            "total_bytes": total,
            "total_human": human_bytes(total),
            "needed_bytes": self.table_bytes(self.needed, self.new_buckets),
            "mem_total_bytes": self.mem_total,
            "share_of_ram": round(total / float(self.mem_total), 6) if self.mem_total else None,
            "budget_bytes": self.budget_bytes,
            "budget_human": human_bytes(self.budget_bytes),
            "budget_source": self.budget_how,
            "within_budget": None if self.budget_bytes is None else total <= self.budget_bytes,
            "capped": self.capped,
            "limited_by_kernel": self.limited,
            "namespaces": inputs["namespaces"],
            "all_namespaces_full_bytes": self.table_bytes(self.new_max * inputs["namespaces"], self.new_buckets),
        }
        if self.spaces:
            # The real counts of every namespace: what the table holds now, beside the worst case.
            counted = sum(ns["entries"] for ns in self.spaces)
            memory["namespaces_counted"] = len(self.spaces)
            memory["at_namespace_counts_bytes"] = self.table_bytes(counted, self.new_buckets)
            self.warnings.append("%d namespaces hold %d entries in all (%s with the hash table); the fullest, %s,"
                                 " holds %d" % (len(self.spaces), counted, human_bytes(
                                     memory["at_namespace_counts_bytes"]), advisor.namespace_label(self.largest),
                                     self.largest["entries"]))
        if inputs["namespaces"] > 1 or inputs["profile"] in ("container_host", "kubernetes_node"):
            self.warnings.append("each network namespace (container, pod) can hold up to nf_conntrack_max entries"
                                 " of its own: %d namespaces full would take %s" % (
                                     inputs["namespaces"], human_bytes(memory["all_namespaces_full_bytes"])))
        return memory

    def namespace_summary(self, memory):
        """recommend's ``namespaces``: None without the facts' namespace list. Each namespace is held to
        the one global max on its own, so the largest drives the max and the sum the memory, which
        ``memory.at_namespace_counts_bytes`` prices (the one figure for it)."""
        spaces = [ns for ns in (self.facts or {}).get("namespaces") or [] if isinstance(ns, dict)]
        if not spaces:
            return None
        out = {"namespaces": len(spaces), "readable": len(self.spaces),
               "entries_total": sum(ns["entries"] for ns in self.spaces),
               "memory_bytes_at_counts": memory.get("at_namespace_counts_bytes"), "largest": None}
        if self.largest is not None:
            out["largest"] = {"inode": self.largest.get("inode"), "label": advisor.namespace_label(self.largest),
                              "entries": self.largest["entries"],
                              "share_of_max": round(self.largest["entries"] / float(self.new_max), 4)
                              if self.new_max else None}
        return out

    def reasons(self):
        """One sentence per key of the settings."""
        inputs, depth = self.inputs, self.inputs["target_chain_depth"]
        text = "%s entries needed from %s; x %s headroom = %s" % (
            _human_count(self.needed), self._driver_reason(), _fmt(inputs["headroom"]),
            _human_count(self.with_headroom))
        if self.floor_entries and self.floor_entries >= self.with_headroom:
            text += "; raised to %d, %s" % (self.floor_entries, self.floor_reason)
        if self.capped:
            text += "; capped at %d by the memory budget (%s)" % (self.new_max, self.budget_how)
        elif self.new_max != max(self.with_headroom, self.floor_entries):
            text += "; rounded up to %d (a multiple of %d)" % (self.new_max, self.step)
        reasons = {"nf_conntrack_max": text + "."}
        reasons["nf_conntrack_buckets"] = (
            "max %d / target chain depth %s = %d buckets, rounded up to a multiple of %d as the kernel does"
            " (each entry sits in two chains, so chains average %s entries at max)."
            % (self.new_max, _fmt(depth), int(math.ceil(self.new_max / depth)), self.step,
               _fmt(round(2 * self.new_max / float(self.new_buckets), 2))))
        reasons["nf_conntrack_expect_max"] = ("4 expectations per expect-hash slot, buckets / 256 slots, as"
                                              " nf_conntrack_expect_init() does at boot.")
        for key in sorted(self.timeout_settings):
            if key in inputs["timeouts"]:
                reasons[key] = "your override: %d s (kernel default %d s)." % (
                    self.timeout_settings[key], KERNEL_TIMEOUTS[key])
            else:
                reasons[key] = "%s profile: %d s (kernel default %d s); %s." % (
                    inputs["profile"], self.timeout_settings[key], KERNEL_TIMEOUTS[key],
                    "; ".join(self.profile["sources"]))
        return reasons

    def _driver_reason(self):
        if self.driver == "rate_model":
            return "Little's law (%s)" % "; ".join(_rate_part_lines(self.rate_parts, "in the table = %s entries"))
        return {
            "peak_entries": "the declared peak_entries (%s)" % _human_count(self.needed),
            "current_count": "the current count (%d entries)" % self.needed,
            "largest_namespace": "the fullest namespace, %s (%d entries; every namespace is held to"
                                 " nf_conntrack_max on its own)" % (
                                     advisor.namespace_label(self.fullest_other) if self.fullest_other else None,
                                     self.needed),
            "observed_rate": "the observed rate (%s closes/s from TIME_WAIT entries, %s entries at the new"
                             " time_wait)" % (self.rates.get("tcp_closes_per_second"), _human_count(self.needed)),
            "pressure": "pressure (%s): the current max %s was too small%s%s" % (
                ", ".join(self.pressure_seen), self.current_max,
                "" if self.pressure_live else " (if max was raised since, pass pressure_since_boot=false)",
                "; demand %s" % self.rates["saturated_demand"]["how"] if "saturated_demand" in self.rates else ""),
            "none": "no load figure",
        }[self.driver]

    def comparison(self):
        current = {"nf_conntrack_max": self.current_max, "nf_conntrack_buckets": self.current_buckets,
                   "nf_conntrack_expect_max": self.current_expect}
        for key in self.timeout_settings:
            current[key] = self.current_timeouts.get(key)
        out = {}
        for key, value in self.settings.items():
            now = None if self.planning else current.get(key)
            out[key] = {"current": now, "recommended": value, "change": now != value}
        return out

    def verdict(self):
        """The current state: every finding, the most severe one as status and severity."""
        if self.planning:
            return {"status": "ok", "severity": "ok", "judged": False,
                    "reasons": ["planning: no current state to judge"], "usage_ratio": None}
        ratio = (self.count or 0) / float(self.current_max) if self.current_max else None
        usage = self._usage_findings(ratio)
        found = usage + self._chain_findings() + self._oversized_findings(undersized=bool(usage))
        if not found:
            reasons = ["usage %s of max %s, below the 75%% warning threshold; the load fits with headroom"
                       % (self.count, self.current_max)]
            return {"status": "ok", "severity": "ok", "judged": True, "reasons": reasons, "usage_ratio": ratio}
        rank = {"critical": 2, "warning": 1}
        order = {"undersized": 3, "chains_too_deep": 2, "oversized": 1}
        worst = max(found, key=lambda f: (rank[f[1]], order[f[0]]))
        return {"status": worst[0], "severity": worst[1], "judged": True, "reasons": [f[2] for f in found],
                "usage_ratio": ratio}

    def _usage_findings(self, ratio):
        """(status, severity, reason) for a full table, drops and a load above max."""
        found, needed, current_max = [], self.load_needed, self.current_max
        if not current_max:
            return found
        if ratio >= CRITICAL_RATIO:
            found.append(("undersized", "critical", "the table is %.1f%% full (critical at %d%%)"
                          % (ratio * 100, CRITICAL_RATIO * 100)))
        elif ratio >= WARNING_RATIO:
            found.append(("undersized", "warning", "the table is %.1f%% full (warning at %d%%)"
                          % (ratio * 100, WARNING_RATIO * 100)))
        if self.pressure_seen:
            # Drops since boot may predate a raised max: critical only when happening now or the table is full.
            severe = self.pressure_live or ratio >= WARNING_RATIO
            found.append(("undersized", "critical" if severe else "warning",
                          "packets were dropped because the table was full (%s)" % ", ".join(self.pressure_seen)))
        if needed > current_max:
            found.append(("undersized", "critical", "the load needs %d entries, above the current max %d"
                          % (needed, current_max)))
        elif needed * self.inputs["headroom"] > current_max:
            found.append(("undersized", "warning", "the load needs %d entries: under the current max %d but"
                          " without %s headroom" % (needed, current_max, _fmt(self.inputs["headroom"]))))
        return found

    def _chain_findings(self):
        found = []
        if (self.stats_totals.get("chaintoolong") or 0) > 0:
            found.append(("chains_too_deep", "critical", "the kernel dropped packets on over-long hash chains"
                          " (chaintoolong=%d)" % self.stats_totals["chaintoolong"]))
        if self.current_max and self.current_buckets:
            depth = self.current_max / float(self.current_buckets)
            if depth > DEEP_CHAIN_DEPTH:
                found.append(("chains_too_deep", "warning", "max / buckets = %.1f: a full table averages %.1f"
                              " entries per chain (above %s)" % (depth, 2 * depth, _fmt(2 * DEEP_CHAIN_DEPTH))))
        return found

    def _oversized_findings(self, undersized):
        """A max whose full table would cost more than the budget, for a load far below it (never when undersized)."""
        found, current_max = [], self.current_max
        if current_max and self.budget_bytes is not None and not undersized:
            at_max = memory_bytes(current_max, self.current_buckets or 0, self.per_entry, self.bucket_bytes)
            if at_max > self.budget_bytes and current_max > OVERSIZED_FACTOR * max(self.new_max, 1):
                found.append(("oversized", "warning", "a full table at the current max %d would take %s, above the"
                              " budget %s, for a load that needs %d" % (
                                  current_max, human_bytes(at_max), human_bytes(self.budget_bytes),
                                  self.load_needed)))
        if current_max == 0:
            found.append(("oversized", "warning", "nf_conntrack_max is 0 (unlimited)"))
        return found

    def tradeoffs(self):
        """Memory at a few timeout values, for the rates given (or observed)."""
        rows = []
        key = "nf_conntrack_tcp_timeout_time_wait"
        values = sorted(set([30, 60, 120, self.effective[key]]))
        if "tcp" in self.rate_parts:
            rows.extend(self._tradeoff(key, seconds, self._rate_total(key, seconds)) for seconds in values)
        elif self.rates.get("tcp_closes_per_second") is not None:
            base = (self.count or 0) - self.tcp_states.get("TIME_WAIT", 0)
            rows.extend(self._tradeoff(key, seconds, int(math.ceil(
                max(0, base + self.rates["tcp_closes_per_second"] * seconds)))) for seconds in values)
        if "udp" in self.rate_parts:
            key = _udp_key(self.inputs["udp_stream_share"])
            for seconds in sorted(set([30, 60, 120, 180, self.effective[key]])):
                if seconds >= UNSAFE_FLOOR_SECONDS[key]:
                    rows.append(self._tradeoff(key, seconds, self._rate_total(key, seconds)))
        return rows

    def _rate_total(self, key, seconds):
        trial = dict(self.effective)
        trial[key] = seconds
        return rate_entries(self.inputs, trial)[0]

    def _tradeoff(self, key, seconds, entries):
        target = max(int(math.ceil(entries * self.inputs["headroom"])), self.floor_entries, self.step)
        max_entries = kernel.round_up(target, self.step)
        mem = self.table_bytes(max_entries, self.buckets_for(max_entries))
        return {"key": key, "timeout_seconds": seconds, "entries_needed": entries, "nf_conntrack_max": max_entries,
                "memory_bytes": mem, "memory_human": human_bytes(mem),
                "share_of_ram": round(mem / float(self.mem_total), 6) if self.mem_total else None,
                "within_budget": None if self.budget_bytes is None else mem <= self.budget_bytes}

    def host_warnings(self):
        """What the host's state means for applying the recommendation; a max below the count needs force."""
        if self.planning:
            return
        if _get(self.facts, "environment", "kube_proxy_running") and self.inputs["profile"] != "kubernetes_node":
            self.warnings.append("kube-proxy is running: on start it raises max and its timeouts to its own values; profile"
                                 " kubernetes_node matches what it does")
        if self.facts.get("host_settable") is False:
            self.warnings.append("nf_conntrack_max, buckets and expect_max are global and read-only here"
                                 " (not the initial namespace): apply them on the host")
        if self.current_max == 0:
            self.warnings.append("nf_conntrack_max is 0: the table is unlimited and only RAM bounds it")
        if self.count and self.new_max < self.count:
            # Applying it would drop new flows at once: only on purpose.
            if not self.inputs["force"]:
                why = ("capped by the memory budget of %s; raise memory_budget" % self.budget_how if self.capped
                       else "the most the kernel can hold at chain depth %s" % _fmt(self.inputs["target_chain_depth"]))
                raise SizingError(
                    "the recommended nf_conntrack_max %d (%s) is below the %d entries in the table now: new flows"
                    " would be dropped until the count falls under it. Pass force=true to accept it"
                    % (self.new_max, why, self.count), "force", self.inputs["force"])
            self.warnings.append("the recommended max %d is below the current count %d: new flows would be dropped"
                                 " until the count falls under it (force=true)" % (self.new_max, self.count))

    def summary(self, verdict, memory):
        lines = []
        if not self.planning:
            lines.append("state: %s (%s): %s" % (verdict["status"], verdict["severity"],
                                                 "; ".join(verdict["reasons"])))
        lines.extend("%s (Little's law)" % line for line in _rate_part_lines(self.rate_parts, "= %s entries"))
        settings = self.settings
        lines.append("need %s entries (driver: %s); recommend nf_conntrack_max=%d, nf_conntrack_buckets=%d,"
                     " nf_conntrack_expect_max=%d" % (
                         _human_count(self.needed), self.driver, settings["nf_conntrack_max"],
                         settings["nf_conntrack_buckets"], settings["nf_conntrack_expect_max"]))
        share = memory["share_of_ram"]
        lines.append("memory at max: %s (%s entries x %d B + %d buckets x %d B)%s" % (
            memory["total_human"], _human_count(memory["entries"]), memory["per_entry_bytes"],
            settings["nf_conntrack_buckets"], memory["bucket_bytes"],
            "" if share is None else ", %s of RAM" % _percent(share)))
        return lines


def _udp_key(stream_share):
    """The UDP timeout that dominates: the stream one when most flows get a reply."""
    return "nf_conntrack_udp_timeout_stream" if stream_share >= 0.5 else "nf_conntrack_udp_timeout"


def _rate_part_lines(rate_parts, tail):
    """"tcp: 6500 new/s x 120 s <tail>" per traffic kind, sorted."""
    return ["%s: %s new/s x %s s %s" % (kind, _fmt(part["new_per_second"]), _fmt(round(part["lifetime_seconds"], 3)),
                                        tail % _human_count(part["entries"]))
            for kind, part in sorted(rate_parts.items())]


def recommend(facts=None, **inputs):
    """The recommendation dict (CONTRIBUTING.md) for ``facts`` (or None: planning) and the load inputs."""
    validated = _validate(inputs)
    if isinstance(facts, dict) and facts.get("available") is False:
        raise SizingError("nf_conntrack is not available on this host (facts.available is false): nothing to size")
    model = SizingModel(facts, validated)
    have_load = any(validated[k] is not None for k in ("peak_entries", "tcp_new_per_second", "udp_new_per_second",
                                                       "other_new_per_second"))
    if model.planning and not have_load:
        raise SizingError("a planning call (no facts) needs the load: peak_entries, tcp_new_per_second,"
                          " udp_new_per_second or other_new_per_second")
    model.machine_figures()
    model.effective_timeouts()
    model.entries_needed()
    model.floor()
    model.max_entries()
    model.buckets()
    memory = model.memory()
    reasons = model.reasons()
    comparison = model.comparison()
    verdict = model.verdict()
    verdict["causes"] = [] if model.planning else advisor.causes(model.facts)  # why packets drop (advisor.py)
    tradeoffs = model.tradeoffs()
    model.host_warnings()
    return {
        "settings": model.settings,
        "reasons": reasons,
        "entries": {"needed": model.needed, "driver": model.driver, "sources": model.sources,
                    "with_headroom": model.with_headroom, "headroom": validated["headroom"],
                    "floor": model.floor_entries, "floor_source": model.floor_reason,
                    "rate_model": model.rate_parts, "rates": model.rates},
        "memory": memory,
        "verdict": verdict,
        "comparison": comparison,
        "tradeoffs": tradeoffs,
        "timeouts_fitting_budget": model.fits,
        "profile": {"name": validated["profile"], "description": model.profile["description"],
                    "sources": model.profile["sources"]},
        "planning": model.planning,
        "namespaces": model.namespace_summary(memory),
        "summary": model.summary(verdict, memory),
        "warnings": model.warnings,
    }
