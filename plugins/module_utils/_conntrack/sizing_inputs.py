# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The recommend inputs checked before any sizing: ranges, sizes, budgets, timeouts, facts.

``validate(inputs)`` returns the inputs with every default filled in, or raises the one
``SizingError`` naming the input, the value and what is accepted. The role's pre-flight
check (``sizing.validate_inputs``) and recommend share it, so they cannot disagree.
Private to this collection. Pure; standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import errors, kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.profiles import PROFILES
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.units import fmt, human_bytes, percent

DEFAULT_HEADROOM = 1.5
DEFAULT_MEMORY_BUDGET = "10%"
DEFAULT_TARGET_CHAIN_DEPTH = 1.0

UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

# Upper bounds of the inputs. Above them a figure is a typo, not a load (and 1e308 x a
# lifetime would overflow to infinity).
RATE_MAX_PER_SECOND = 1e9
DURATION_MAX_SECONDS = 365 * 86400
ENTRY_BYTES_MAX = 65536
CPU_COUNT_MAX = 65536
NAMESPACES_MAX = 1 << 20
PAGE_SIZE_MAX = 1 << 20
MEM_TOTAL_MAX_BYTES = 1 << 56
HEADROOM_MAX = 100.0
CHAIN_DEPTH_MAX = 64.0

INPUTS = ("profile", "peak_entries", "tcp_new_per_second", "tcp_duration_seconds", "udp_new_per_second",
          "udp_duration_seconds", "udp_stream_share", "other_new_per_second", "headroom", "memory_budget",
          "target_chain_depth", "timeouts", "mem_total_bytes", "entry_bytes", "cpu_count", "namespaces",
          "extensions", "page_size_bytes", "pressure_since_boot", "force")


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
    return name if name.startswith(kernel.PREFIX) else kernel.PREFIX + name


def checked_number(name, value, minimum=0.0, integer=False, allow_none=True, maximum=None):
    """A finite number in [minimum, maximum], or a SizingError naming the input, the value and the range."""
    if value is None or value == "":
        if allow_none:
            return None
        raise SizingError("%s is required" % name, name, value)
    accepted = ">= %s" % fmt(minimum) if maximum is None else ">= %s and <= %s" % (fmt(minimum), fmt(maximum))
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


def parse_size(value, name="size", maximum=MEM_TOTAL_MAX_BYTES):
    """Bytes from 123, "512MiB", "2G", "16GiB" (K/M/G/T are binary, like ansible's human_to_bytes).

    Not human_to_bytes itself: it refuses the IEC spellings (512MiB, 16GiB) that our docs and the
    kernel use, and sizing stays free of Ansible imports so the filters and property tests share it."""
    if isinstance(value, bool):
        raise SizingError("%s must be a size such as 2GiB, got %r" % (name, value), name, value)
    if isinstance(value, (int, float)):
        return checked_number(name, value, integer=True, allow_none=False, maximum=maximum)
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
            pct = checked_number("memory_budget", text[:-1], allow_none=False)
        except SizingError:
            raise SizingError("memory_budget must be %s, got %r" % (accepted, value), "memory_budget", value)
        fraction = pct / 100.0
    elif isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool) and value <= 1):
        try:
            fraction = checked_number("memory_budget", value, allow_none=False)
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
        budget_bytes = parse_size(value, "memory_budget")
    except SizingError:
        raise SizingError("memory_budget must be %s, got %r" % (accepted, value), "memory_budget", value)
    if budget_bytes <= 0:
        raise SizingError("memory_budget must be above 0 (%s), got %r" % (accepted, value), "memory_budget", value)
    return None, budget_bytes


def parse_budget(value, mem_total_bytes):
    """(budget_bytes, how) from a fraction (0.05), a percent ("5%") or a size ("2GiB")."""
    fraction, budget_bytes = budget_parts(value)
    if fraction is not None:
        if mem_total_bytes is None:
            raise SizingError("memory_budget %r is a share of RAM, but the RAM is unknown: pass mem_total_bytes"
                              % (value,), "memory_budget", value)
        return int(mem_total_bytes * fraction), "%s of RAM" % percent(fraction)
    if mem_total_bytes is not None and budget_bytes > mem_total_bytes:
        raise SizingError("memory_budget %r (%s) is above the RAM (%s)"
                          % (value, human_bytes(budget_bytes), human_bytes(mem_total_bytes)), "memory_budget", value)
    return budget_bytes, human_bytes(budget_bytes)


def validate_timeouts(overrides):
    """{full key: seconds} from the timeouts input, each within the kernel's range and above its safe floor."""
    out = {}
    if not isinstance(overrides or {}, dict):
        raise SizingError("timeouts must be a dict of timeout names to seconds, such as {tcp_timeout_time_wait: 60},"
                          " got %r" % (overrides,), "timeouts", overrides)
    limit = kernel.TIMEOUT_MAX_SECONDS
    for name, value in (overrides or {}).items():
        key = kernel_key(name)
        if key not in kernel.KERNEL_TIMEOUTS:
            raise SizingError("unknown timeout %r; known: %s" % (name, ", ".join(sorted(kernel.KERNEL_TIMEOUTS))),
                              "timeouts", name)
        floor = max(1, kernel.SAFE_FLOOR_SECONDS.get(key, 1))
        try:
            seconds = checked_number(key, value, minimum=0, integer=True, allow_none=False)
        except SizingError as exc:
            raise SizingError("%s (seconds, %d..%d)" % (exc, floor, limit), "timeouts." + name, value)
        if seconds < 1 or seconds > limit:
            raise SizingError("%s=%s is outside the range the kernel accepts (1..%d seconds)"
                              % (key, value, limit), "timeouts." + name, value)
        if seconds < floor:
            raise SizingError("%s=%s is below the safe floor of %d seconds: live flows would lose their entries"
                              " (accepted: %d..%d)" % (key, value, floor, floor, limit), "timeouts." + name, value)
        out[key] = seconds
    return out


def _load(inputs):
    """The load figures: a declared peak, rates per traffic kind and how long flows last."""
    v = {"peak_entries": checked_number("peak_entries", inputs.get("peak_entries"), integer=True,
                                        maximum=kernel.INT_MAX)}
    for key in ("tcp_new_per_second", "udp_new_per_second", "other_new_per_second"):
        v[key] = checked_number(key, inputs.get(key), maximum=RATE_MAX_PER_SECOND)
    for key in ("tcp_duration_seconds", "udp_duration_seconds"):
        v[key] = checked_number(key, inputs.get(key), maximum=DURATION_MAX_SECONDS) or 0.0
    v["udp_stream_share"] = checked_number("udp_stream_share", inputs.get("udp_stream_share"), maximum=1) or 0.0
    return v


def _shape(inputs):
    """Headroom and the target chain depth."""
    headroom = inputs.get("headroom")
    if headroom is None:
        headroom = DEFAULT_HEADROOM
    try:
        headroom = checked_number("headroom", headroom, minimum=1, maximum=HEADROOM_MAX, allow_none=False)
    except SizingError as exc:
        raise SizingError("%s (1.5 means 50%% above the need)" % exc, "headroom", headroom)
    depth = inputs.get("target_chain_depth")
    if depth is None:
        depth = DEFAULT_TARGET_CHAIN_DEPTH
    else:
        depth = checked_number("target_chain_depth", depth, allow_none=False, maximum=CHAIN_DEPTH_MAX)
    if depth <= 0:
        raise SizingError("target_chain_depth must be above 0 and at most %s, got %r"
                          % (fmt(CHAIN_DEPTH_MAX), inputs.get("target_chain_depth")),
                          "target_chain_depth", inputs.get("target_chain_depth"))
    return {"headroom": headroom, "target_chain_depth": depth}


def _machine(inputs):
    """The machine figures given instead of read: RAM, entry size, CPUs, namespaces, page size, extensions."""
    mem = inputs.get("mem_total_bytes")
    v = {"mem_total_bytes": None if mem in (None, "") else parse_size(mem, "mem_total_bytes")}
    if v["mem_total_bytes"] is not None and v["mem_total_bytes"] < (16 << 20):
        raise SizingError("mem_total_bytes=%r is below 16 MiB; give the machine's RAM, e.g. 16GiB" % (mem,),
                          "mem_total_bytes", mem)
    v["entry_bytes"] = checked_number("entry_bytes", inputs.get("entry_bytes"), minimum=1, integer=True,
                                      maximum=ENTRY_BYTES_MAX)
    v["cpu_count"] = checked_number("cpu_count", inputs.get("cpu_count"), minimum=1, integer=True,
                                    maximum=CPU_COUNT_MAX)
    v["namespaces"] = checked_number("namespaces", inputs.get("namespaces"), minimum=1, integer=True,
                                     maximum=NAMESPACES_MAX) or 1
    v["page_size_bytes"] = checked_number("page_size_bytes", inputs.get("page_size_bytes"), minimum=512,
                                          integer=True, maximum=PAGE_SIZE_MAX)
    ext = inputs.get("extensions") or {}
    if not isinstance(ext, dict):
        raise SizingError("extensions must be a dict such as {nat: true, acct: false}, got %r" % (ext,),
                          "extensions", ext)
    bad = sorted(set(ext) - set(kernel.EXTENSION_BYTES))
    if bad:
        raise SizingError("unknown extensions %s; known: %s" % (", ".join(bad), ", ".join(sorted(kernel.EXTENSION_BYTES))),
                          "extensions", bad[0])
    v["extensions"] = dict((k, bool(val)) for k, val in ext.items() if val is not None)
    return v


def validate(inputs):
    """The inputs checked and completed with their defaults, or the SizingError for the first bad one."""
    unknown = sorted(set(inputs) - set(INPUTS))
    if unknown:
        raise SizingError("unknown inputs: %s; known: %s" % (", ".join(unknown), ", ".join(INPUTS)),
                          unknown[0], inputs[unknown[0]])
    profile = inputs.get("profile") or "default"
    if profile not in PROFILES:
        raise SizingError("unknown profile %r; known: %s" % (profile, ", ".join(sorted(PROFILES))), "profile", profile)
    v = {"profile": profile}
    v.update(_load(inputs))
    v.update(_shape(inputs))
    v["timeouts"] = validate_timeouts(inputs.get("timeouts"))
    v.update(_machine(inputs))
    v["memory_budget"] = inputs.get("memory_budget")
    if v["memory_budget"] is not None:
        budget_parts(v["memory_budget"])
    since_boot = inputs.get("pressure_since_boot")
    v["pressure_since_boot"] = True if since_boot is None else bool(since_boot)
    v["force"] = bool(inputs.get("force"))
    return v


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
