# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The settings module's input: its options, the checks of every value and path, and the
stages of the settings dict before anything is read for writing.

Private to this collection. The settings dict goes through these stages, one name each:
``given`` (the option as passed), ``requested`` (validated integers: what the tuning record
calls ``applied``), ``target`` (buckets rounded like the kernel: what the kernel should read
back) and, once the host is known, ``applicable`` (the target without the keys skipped here).
No I/O. Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import difflib
import os
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import errors, kernel, reading

DEFAULT_SYSCTL_FILE = "/etc/sysctl.d/90-netfilter-conntrack.conf"
DEFAULT_MODPROBE_FILE = "/etc/modprobe.d/netfilter-conntrack.conf"
DEFAULT_MODULES_LOAD_FILE = "/etc/modules-load.d/netfilter-conntrack.conf"
DEFAULT_UDEV_RULE_FILE = "/etc/udev/rules.d/90-netfilter-conntrack.rules"

# Only files the boot reads, in the directories it reads them from, with our own name.
UDEV_RULES_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d")
MANAGED_DIRS = {"sysctl": reading.SYSCTL_DIRS, "modprobe": reading.MODPROBE_DIRS,
                "modules_load": reading.MODULES_LOAD_DIRS, "udev_rule": UDEV_RULES_DIRS}
MANAGED_SUFFIX = {"sysctl": "conf", "modprobe": "conf", "modules_load": "conf", "udev_rule": "rules"}
OWN_NAME = r"^([0-9]{1,3}-)?netfilter-conntrack([-_.][A-Za-z0-9_.-]*)?\.%s$"
FACTS_DIR = "/etc/ansible/facts.d"
# Directories Ansible itself reads (local facts, roles, collections, plugins): a record written
# at one of them, or at a parent, would be a file where Ansible needs a directory.
ANSIBLE_DIRS = (FACTS_DIR, "/etc/ansible/roles", "/usr/share/ansible/roles", "/usr/share/ansible/collections",
                "/usr/share/ansible/plugins")
# A max below this is legal but almost surely a typo: the table would fill at once.
SANE_MIN_MAX = 1024


class SettingsError(errors.ConntrackError):
    """Bad input, found before anything was touched."""

    def __init__(self, detail):
        self.detail = detail
        super(SettingsError, self).__init__("nothing was changed: " + detail)


def argument_spec():
    """The settings module's options: their one list of names, types and defaults."""
    return dict(
        settings=dict(type="dict", default={}),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        runtime=dict(type="bool", default=True),
        persist_sysctl=dict(type="bool", default=True),
        sysctl_file=dict(type="path", default=DEFAULT_SYSCTL_FILE),
        persist_modprobe=dict(type="bool", default=True),
        modprobe_file=dict(type="path", default=DEFAULT_MODPROBE_FILE),
        boot_fix=dict(type="str", default="auto", choices=["auto", "always", "never"]),
        modules_load_file=dict(type="path", default=DEFAULT_MODULES_LOAD_FILE),
        udev_rule_file=dict(type="path", default=DEFAULT_UDEV_RULE_FILE),
        kube_proxy=dict(type="str", default="respect", choices=["respect", "override"]),
        strict=dict(type="bool", default=False),
        backup=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
        lock_timeout=dict(type="float", default=60.0),
        restore=dict(type="dict"),
        record_file=dict(type="path"),
        record_pressure_entries=dict(type="int"),
        root=dict(type="path", default="/"),
    )


# The backend's options and their defaults, from the spec; settings and root are its arguments.
OPTION_DEFAULTS = dict((name, spec.get("default")) for name, spec in argument_spec().items()
                       if name not in ("settings", "root"))
TEST_SEAMS = ("backup_func", "granularity", "now")

# The options of one run as a value; ``paths`` maps each managed file's name to its path.
Options = collections.namedtuple("Options", (
    "state", "runtime", "persist_sysctl", "persist_modprobe", "boot_fix", "paths", "kube_proxy", "strict",
    "backup", "force", "lock_timeout", "restore", "record_file", "record_pressure_entries"))

# The validated settings of one run: ``requested`` and ``target`` as in the module docstring,
# ``restore`` the checked undo of an earlier run (or None).
Request = collections.namedtuple("Request", ("requested", "target", "restore"))


def options_from(given_options):
    """An Options value from keyword options (argument_spec() names, defaults filled in)."""
    opts = dict(OPTION_DEFAULTS)
    opts.update(given_options)
    fields = dict((name, opts[name]) for name in Options._fields if name in opts)
    fields["paths"] = dict((name, opts[name + "_file"]) for name in MANAGED_DIRS)
    return Options(**fields)


def coerce_value(key, value):
    """Validate one value for one key; returns the int or raises SettingsError."""
    spec = kernel.WRITABLE_KEYS[key]
    kind, low, high = spec.kind, spec.minimum, spec.maximum
    if isinstance(value, bool):
        if kind != "bool":
            raise SettingsError("settings.%s: expected an integer, got a boolean (%r)" % (key, value))
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.match(r"^\s*-?[0-9]+\s*$", value):
        number = int(value.strip())
    else:
        raise SettingsError("settings.%s: expected an integer, got %s %r" % (key, type(value).__name__, value))
    if not low <= number <= high:
        unit = " seconds" if kind == "timeout" else ""
        raise SettingsError("settings.%s: %d is out of range (accepted: %d..%d%s)" % (key, number, low, high, unit))
    return number


def validate_settings(given):
    """All keys and values checked, nothing touched; returns the requested {key: int}."""
    if not isinstance(given, dict):
        raise SettingsError("settings must be a dict of kernel key names to integers")
    allowed = kernel.WRITABLE_KEYS
    problems, requested = [], {}
    for key in sorted(given, key=str):
        if not isinstance(key, str) or not kernel.KEY_RE.match(key):
            problems.append("settings: %r is not an nf_conntrack sysctl name (use names like nf_conntrack_max)"
                            % (key,))
            continue
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), 1)
            problems.append("settings: %s is not on the allowlist of writable nf_conntrack keys%s"
                            % (key, "; did you mean %s?" % close[0] if close else ""))
            continue
        try:
            requested[key] = coerce_value(key, given[key])
        except SettingsError as exc:
            problems.append(exc.detail)
    low, high = requested.get("nf_conntrack_frag6_low_thresh"), requested.get("nf_conntrack_frag6_high_thresh")
    if low is not None and high is not None and low > high:
        problems.append("settings: nf_conntrack_frag6_low_thresh (%d) must not exceed nf_conntrack_frag6_high_thresh (%d)"
                        % (low, high))
    if problems:
        raise SettingsError("; ".join(problems))
    return requested


def target_of(requested, granularity):
    """The requested settings as the kernel reads them back: buckets rounded up."""
    target = dict(requested)
    if "nf_conntrack_buckets" in target:
        target["nf_conntrack_buckets"] = kernel.round_buckets(target["nf_conntrack_buckets"], granularity)
        if target["nf_conntrack_buckets"] > kernel.BUCKETS_MAX:
            raise SettingsError("settings.nf_conntrack_buckets: rounds up past %d (accepted: 1..%d)"
                                % (kernel.BUCKETS_MAX, kernel.BUCKETS_MAX))
    return target


def check_sane_max(settings, options, count=None, option="settings"):
    """Legal for the kernel, almost surely a mistake: only with force. ``option``: where the
    value came from, for the message."""
    value = settings.get("nf_conntrack_max")
    if value is None or options.force or options.state != "present":
        return
    if value == 0:
        why = "0 removes the limit (the table may grow until memory runs out)"
    elif value < SANE_MIN_MAX:
        why = "%d is below %d, so the table would fill almost at once" % (value, SANE_MIN_MAX)
    elif count is not None and value < count:
        why = ("%d is below the %d entries tracked now: new connections would be dropped until the table "
               "drains" % (value, count))
    else:
        return
    raise SettingsError("%s.nf_conntrack_max: %s; set force: true to apply it anyway" % (option, why))


def check_options(options):
    """Every option but the settings themselves, before anything is read."""
    for option, value, accepted in (("state", options.state, ("present", "absent")),
                                    ("kube_proxy", options.kube_proxy, ("respect", "override")),
                                    ("boot_fix", options.boot_fix, ("auto", "always", "never"))):
        if value not in accepted:
            raise SettingsError("%s: %r is not one of %s" % (option, value, ", ".join(accepted)))
    for name in sorted(options.paths):
        problem = managed_path_problem(name, options.paths[name])
        if problem:
            raise SettingsError(problem)
    if options.record_file is not None:
        problem = record_path_problem(options.record_file)
        if problem:
            raise SettingsError(problem)
    if options.record_pressure_entries is not None and int(options.record_pressure_entries) < 0:
        raise SettingsError("record_pressure_entries: %r is negative (accepted: 0 or more)"
                            % (options.record_pressure_entries,))
    lock_timeout = options.lock_timeout
    if not isinstance(lock_timeout, (int, float)) or not 0 <= lock_timeout <= 3600:
        raise SettingsError("lock_timeout: %r is out of range (accepted: 0..3600 seconds)" % (lock_timeout,))


def validate(given, options, granularity):
    """The Request of one run: every input checked before anything is read for writing or touched."""
    check_options(options)
    requested = validate_settings(given)
    if options.restore is not None:
        if requested or options.state != "present":
            raise SettingsError("restore: cannot be combined with settings or state=absent (restore puts back "
                                "exactly what an earlier run found)")
        undo = validate_undo(options.restore)
        # The same guard as a request: a restore writes the kernel just the same. The live count
        # is not held against it, since it puts back what the host ran with before.
        check_sane_max(undo["runtime"], options, option="restore.runtime")
        return Request(requested, dict(requested), undo)
    if options.state == "present" and not requested:
        raise SettingsError("settings: {} is empty; with state=present give at least one key to apply")
    target = target_of(requested, granularity)
    check_sane_max(target, options)
    return Request(requested, target, None)


def managed_path_problem(name, path):
    """Why ``path`` is not a drop-in this collection may write for ``name``, or None."""
    option, dirs, suffix = name + "_file", MANAGED_DIRS[name], MANAGED_SUFFIX[name]
    if isinstance(path, str) and path.startswith("/") and os.path.normpath(path) == path:
        directory, base = os.path.split(path)
        if directory in dirs and re.match(OWN_NAME % suffix, base):
            return None
    example = dirs[0] + "/90-netfilter-conntrack." + suffix
    return ("%s: %r is not a file this collection manages: it must sit directly in %s and be named like "
            "NN-netfilter-conntrack*.%s (for example %s)" % (option, path, ", ".join(dirs), suffix, example))


def record_path_problem(path):
    """Why ``path`` cannot hold the tuning record, or None (its content is checked when read)."""
    if not isinstance(path, str) or not path.startswith("/") or os.path.normpath(path) != path or path == "/":
        return ("record_file: %r must be a normalised absolute file path (no '..', no trailing '/'), for example "
                "%s/netfilter_conntrack.fact" % (path, FACTS_DIR))
    for directory in ANSIBLE_DIRS:
        if directory == path or directory.startswith(path + "/"):
            return ("record_file: %r is a directory Ansible itself uses (%s): the record is a file, for example "
                    "%s/netfilter_conntrack.fact" % (path, directory, FACTS_DIR))
    for directory in sorted(set(d for dirs in MANAGED_DIRS.values() for d in dirs)):
        if directory == path or directory.startswith(path + "/"):
            return ("record_file: %r is a directory the boot reads (%s): the record is a file, for example "
                    "%s/netfilter_conntrack.fact" % (path, directory, FACTS_DIR))
    if "/.ansible/" in path + "/":
        return ("record_file: %r is inside Ansible's own per-user directory (.ansible): the record is a file, for "
                "example %s/netfilter_conntrack.fact" % (path, FACTS_DIR))
    if path.startswith(FACTS_DIR + "/") and (os.path.dirname(path) != FACTS_DIR or not path.endswith(".fact")):
        return ("record_file: %r: in %s the record must be a file directly in it ending in .fact (what Ansible's "
                "local facts read), for example %s/netfilter_conntrack.fact" % (path, FACTS_DIR, FACTS_DIR))
    return None


def validate_undo(undo):
    """The restore option (the undo of an earlier result), checked: {runtime, files, directories}."""
    if not isinstance(undo, dict) or not set(undo) <= set(("runtime", "files", "directories")):
        raise SettingsError("restore: expected the undo dict of an earlier settings result "
                            "({runtime, files, directories}), got %r" % (undo,))
    values = undo.get("runtime") or {}
    if not isinstance(values, dict):
        raise SettingsError("restore.runtime: expected a dict of kernel keys to integers, got %r" % (values,))
    entries = undo.get("files") or {}
    checked = {"runtime": validate_settings(values)}
    if not isinstance(entries, dict) or not all(
            isinstance(v, dict) and (v.get("content") is None or isinstance(v.get("content"), str))
            and (v.get("sha256_after") is None or isinstance(v.get("sha256_after"), str)) for v in entries.values()):
        raise SettingsError("restore.files: expected {path: {content, sha256_after}}, got %r" % (entries,))
    checked["files"] = entries
    directories = undo.get("directories") or []
    if not isinstance(directories, list) or not all(isinstance(d, str) and d.startswith("/") for d in directories):
        raise SettingsError("restore.directories: expected a list of absolute paths, got %r" % (directories,))
    parents = set()
    for path in entries:
        head = os.path.dirname(path)
        while head not in ("/", ""):
            parents.add(head)
            head = os.path.dirname(head)
    for directory in directories:
        if directory not in parents:
            raise SettingsError("restore.directories: %r is not a parent of a restored file" % directory)
    checked["directories"] = directories
    return checked
