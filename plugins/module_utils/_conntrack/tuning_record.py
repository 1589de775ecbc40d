# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The tuning record (CONTRIBUTING.md): how it is read, checked, built and rendered.

Private to this collection. The facts module reads it into ``environment.tuning_record``;
the settings module keeps it in the same call as its writes. Only ``load_record`` and
``read_tuning_record`` read files; the rest is pure. Standard library only; Python 3.8
compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import files, kernel

RECORD_SCHEMA_VERSION = 1
RECORD_REPAIR = "Move it aside (mv %s %s.broken) or restore it from its backup, then run again."


def _int_map(value):
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in value.items())


def record_shape_problem(data):
    """Why ``data`` is not a tuning record (CONTRIBUTING.md), or None."""
    if not isinstance(data, dict):
        return "it holds JSON but not an object"
    if data.get("schema_version") != RECORD_SCHEMA_VERSION:
        return "schema_version is %r, expected %d" % (data.get("schema_version"), RECORD_SCHEMA_VERSION)
    for name in ("original", "applied"):
        if not _int_map(data.get(name)):
            return "%s must map kernel keys to integers, got %r" % (name, data.get(name))
    named = data.get("files", {})
    if not (isinstance(named, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in named.items())):
        return "files must map names to paths, got %r" % (named,)
    sources = data.get("original_source", {})
    if not (isinstance(sources, dict) and all(isinstance(v, str) for v in sources.values())):
        return "original_source must map kernel keys to strings, got %r" % (sources,)
    created = data.get("created_directories", [])
    if not (isinstance(created, list) and all(isinstance(v, str) and v.startswith("/") for v in created)):
        return "created_directories must list absolute paths, got %r" % (created,)
    pressure = data.get("pressure_entries")
    if pressure is not None and (not isinstance(pressure, int) or isinstance(pressure, bool) or pressure < 0):
        return "pressure_entries must be a non-negative integer, got %r" % (pressure,)
    return None


def load_record(full):
    """(record dict or None when absent, raw text or None, problem or None). Never follows a
    link, never blocks on a FIFO, never reads more than files.MAX_MANAGED_BYTES."""
    try:
        raw = files.read_regular(full)
    except files.UnsafeFile as exc:
        return None, None, str(exc)
    if raw is None:
        return None, None, None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, None, "it is not UTF-8 text"
    if not text.strip():
        return None, text, "it is empty (a truncated write?)"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, text, "it is not valid JSON (%s)" % exc
    problem = record_shape_problem(data)
    if problem:
        return None, text, problem
    return data, text, None


def record_error_message(path, problem):
    return "tuning record %s cannot be used: %s. %s" % (path, problem, RECORD_REPAIR % (path, path))


def read_tuning_record(r, path):
    """(the tune role's record or None, the problem or None) through the facts reader ``r``. A
    record that exists but cannot be used is reported, never taken for "no record"."""
    if not path:
        return None, None
    data, _text, problem = load_record(r.path(path))
    if problem:
        message = record_error_message(path, problem)
        r.warn(message)
        return None, message
    return data, None


def render_record(data):
    """The record as the role's to_nice_json(sort_keys=true) wrote it, so old records compare equal."""
    return json.dumps(data, indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def originals(previous, requested, runtime_value, boot_values):
    """(original, source) for every requested key: kept from the record, else the runtime value
    now (``runtime_value(key)``, None when unknown), else (module not loaded) what the kernel
    will boot with (``boot_values()``, called once at most)."""
    original = dict(previous.get("original") or {})
    sources = dict(previous.get("original_source") or {})
    for key in original:
        sources.setdefault(key, "runtime")
    boot = None
    for key in sorted(requested):
        if key in original or sources.get(key) == "unknown":
            continue
        value = runtime_value(key)
        if value is not None:
            original[key], sources[key] = value, "runtime"
            continue
        if boot is None:
            boot = boot_values()
        if key in boot:
            original[key], sources[key] = boot[key]
        else:
            sources[key] = "unknown"
    return original, sources


def boot_values(persistent, defaults, mem_known, granularity):
    """{key: (value, source)}: what nf_conntrack gets when it loads without our files, from the
    boot files read without ours (``persistent``) and the kernel's ``defaults`` for this host."""
    hashsize = persistent["modprobe"].get("hashsize")
    out = dict((k, (v, "kernel_default")) for k, v in defaults.items())
    if not mem_known:
        for key in kernel.TABLE_SIZE_KEYS:
            out.pop(key, None)  # these defaults scale with RAM
    if hashsize_value(persistent):
        for key in kernel.TABLE_SIZE_KEYS:
            out[key] = (defaults[key], "file:" + hashsize["file"])
    for key, entry in persistent["sysctl"].items():
        if key in kernel.WRITABLE_KEYS and isinstance(entry["value"], int) and not isinstance(entry["value"], bool):
            value = kernel.round_buckets(entry["value"], granularity) if key == "nf_conntrack_buckets" \
                else entry["value"]
            out[key] = (value, "file:" + entry["file"])
    return out


def hashsize_value(persistent):
    """The hashsize a modprobe.d file gives nf_conntrack, or None."""
    hashsize = persistent["modprobe"].get("hashsize")
    return hashsize["value"] if hashsize and isinstance(hashsize["value"], int) else None


def build(previous, requested, sources_of, now, extra):
    """The record's new content: originals from the first run kept, times kept when nothing changed.

    ``sources_of(previous)`` gives (original, source); ``extra``: pressure_entries (this run's, or
    None), files (the managed paths) and created_directories (this run's)."""
    previous = previous or {}
    original, sources = sources_of(previous)
    unchanged = previous.get("applied") == requested and previous.get("original") == original
    data = {
        "schema_version": RECORD_SCHEMA_VERSION,
        "original": original,
        "recorded_at": previous.get("recorded_at") or now,
        "applied": dict(requested),
        "applied_at": previous["applied_at"] if unchanged and previous.get("applied_at") else now,
        "pressure_entries": extra["pressure_entries"] or previous.get("pressure_entries"),
        "files": dict(extra["files"]),
    }
    # Only when they say something, so that records of earlier versions stay byte for byte.
    if any(v != "runtime" for v in sources.values()):
        data["original_source"] = sources
    created = sorted(set(previous.get("created_directories", [])) | set(extra["created_directories"]))
    if created:
        data["created_directories"] = created
    return data
