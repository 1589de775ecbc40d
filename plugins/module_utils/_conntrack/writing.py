# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Apply nf_conntrack settings at runtime and in boot-time files.

Private to this collection. ``ConntrackSettings`` validates the wanted values,
reads what is there, answers whether anything must change, applies it (runtime
first, rolled back on failure, then files, each atomically) and reports before
and after for diff mode. Everything is relative to ``root`` so unit tests run
against a temporary tree. Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import errno
import hashlib
import json
import os
import re
import stat
import struct
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import errors, files, kernel, reading

NETFILTER_DIR = "proc/sys/net/netfilter"
HASHSIZE_PARAM = "sys/module/nf_conntrack/parameters/hashsize"
SYSCTL_PREFIX = kernel.SYSCTL_PREFIX

DEFAULT_SYSCTL_FILE = "/etc/sysctl.d/90-netfilter-conntrack.conf"
DEFAULT_MODPROBE_FILE = "/etc/modprobe.d/netfilter-conntrack.conf"
DEFAULT_MODULES_LOAD_FILE = "/etc/modules-load.d/netfilter-conntrack.conf"
DEFAULT_UDEV_RULE_FILE = "/etc/udev/rules.d/90-netfilter-conntrack.rules"

# The method systemd's sysctl.d(5) gives for keys that only exist once a module loads.
UDEV_RULE = ('ACTION=="add", SUBSYSTEM=="module", KERNEL=="nf_conntrack", '
             'RUN+="/usr/lib/systemd/systemd-sysctl --prefix=/net/netfilter"')

HEADER = ("# Managed by Ansible (netfilter.conntrack.settings). Local edits are overwritten.\n")
# How a drop-in of ours is recognised: anything else at our path is someone else's file.
OWN_MARKER = "# Managed by Ansible (netfilter.conntrack"

# Only files the boot reads, in the directories it reads them from, with our own name.
UDEV_RULES_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d")
MANAGED_DIRS = {"sysctl": reading.SYSCTL_DIRS, "modprobe": reading.MODPROBE_DIRS,
                "modules_load": reading.MODULES_LOAD_DIRS, "udev_rule": UDEV_RULES_DIRS}
MANAGED_SUFFIX = {"sysctl": "conf", "modprobe": "conf", "modules_load": "conf", "udev_rule": "rules"}
OWN_NAME = r"^([0-9]{1,3}-)?netfilter-conntrack([-_.][A-Za-z0-9_.-]*)?\.%s$"
FACTS_DIR = "/etc/ansible/facts.d"
LOCK_FILE = "/run/lock/netfilter-conntrack.lock"
# A max below this is legal but almost surely a typo: the table would fill at once.
SANE_MIN_MAX = 1024

INT_MAX = kernel.INT_MAX
TIMEOUT_MAX_SECONDS = kernel.TIMEOUT_MAX_SECONDS
BUCKETS_MAX = kernel.BUCKETS_MAX
KEY_RE = kernel.KEY_RE
# Every key the module may write (the allowlist), with its kind and range: kernel.KEYS.
KEYS = kernel.WRITABLE_KEYS
GLOBAL_KEYS = kernel.GLOBAL_KEYS
# What kube-proxy writes when it starts with its default configuration; the newer keys it
# writes only when configured (kernel.kube_proxy_keys()).
KUBE_PROXY_KEYS = kernel.kube_proxy_keys(by_default_only=True)
KUBE_PROXY_OPTIONAL_KEYS = tuple(k for k in kernel.kube_proxy_keys() if k not in KUBE_PROXY_KEYS)


class SettingsError(errors.ConntrackError):
    """Bad input, found before anything was touched."""

    def __init__(self, detail):
        self.detail = detail
        super(SettingsError, self).__init__("nothing was changed: " + detail)


class ApplyError(errors.ConntrackError):
    """A write failed; ``result`` says what was rolled back."""

    def __init__(self, msg, result):
        super(ApplyError, self).__init__(msg)
        self.result = result


bucket_granularity = kernel.host_granularity
round_buckets = kernel.round_buckets
parse_sysctl_file = kernel.parse_sysctl_file


def coerce_value(key, value):
    """Validate one value for one key; returns the int or raises SettingsError."""
    spec = KEYS[key]
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


def validate_settings(settings):
    """All keys and values checked, nothing touched; returns {key: int}."""
    if not isinstance(settings, dict):
        raise SettingsError("settings must be a dict of kernel key names to integers")
    problems, clean = [], {}
    for key in sorted(settings, key=str):
        if not isinstance(key, str) or not KEY_RE.match(key):
            problems.append("settings: %r is not an nf_conntrack sysctl name (use names like nf_conntrack_max)"
                            % (key,))
            continue
        if key not in KEYS:
            close = difflib.get_close_matches(key, sorted(KEYS), 1)
            problems.append("settings: %s is not on the allowlist of writable nf_conntrack keys%s"
                            % (key, "; did you mean %s?" % close[0] if close else ""))
            continue
        try:
            clean[key] = coerce_value(key, settings[key])
        except SettingsError as exc:
            problems.append(exc.detail)
    low, high = clean.get("nf_conntrack_frag6_low_thresh"), clean.get("nf_conntrack_frag6_high_thresh")
    if low is not None and high is not None and low > high:
        problems.append("settings: nf_conntrack_frag6_low_thresh (%d) must not exceed nf_conntrack_frag6_high_thresh (%d)"
                        % (low, high))
    if problems:
        raise SettingsError("; ".join(problems))
    return clean


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _no_commands(argv):
    return None


def _read_only_mount(path):
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _read_int(path):
    data = _read(path)
    if data is None:
        return None
    try:
        return int(data.split()[0])
    except (ValueError, IndexError):
        return None


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


class ConntrackSettings(object):
    """Desired nf_conntrack state on one host, the community.crypto backend way.

    One run is a transaction: validate (no I/O), then under the host lock read and plan,
    preflight, and apply with a journal, so that any failure puts back every runtime value,
    file, record, backup and directory this run touched.
    """

    def __init__(self, settings, root="/", **options):
        """``options``: the module's (argument_spec(), defaults from there) and the seams unit
        tests use: ``backup_func`` (makes a backup, returns its path), ``granularity`` (the
        bucket rounding) and ``now`` (the record's clock)."""
        unknown = sorted(set(options) - set(OPTION_DEFAULTS) - set(TEST_SEAMS))
        if unknown:
            raise TypeError("ConntrackSettings: unknown options %s" % ", ".join(unknown))
        opts = dict(OPTION_DEFAULTS)
        opts.update(options)
        self.root = root or "/"
        self.state = opts["state"]
        self.runtime_enabled = opts["runtime"]
        self.persist_sysctl = opts["persist_sysctl"]
        self.persist_modprobe = opts["persist_modprobe"]
        self.boot_fix = opts["boot_fix"]
        self.paths = dict((name, opts[name + "_file"]) for name in MANAGED_DIRS)
        self.kube_proxy = opts["kube_proxy"]
        self.strict = opts["strict"]
        self.backup = opts["backup"]
        self.backup_func = opts.get("backup_func") or self._backup_copy
        self.granularity = opts.get("granularity") or bucket_granularity()
        self.raw_settings = settings if settings is not None else {}
        self.force = opts["force"]
        self.lock_timeout = opts["lock_timeout"]
        self.restore = opts["restore"]
        # The tuning record (CONTRIBUTING.md) kept in the same call, so rollback needs no extra round trips.
        self.record_file = opts["record_file"]
        self.record_pressure_entries = opts["record_pressure_entries"]
        self.now = opts.get("now") or (lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.settings = None
        self.warnings = []
        self.notes = []
        self.skipped = {}
        self.runtime = {}      # key -> {"before": int|None, "after": int}
        self.files = {}        # logical name -> dict(path, full, before, after, changed)
        self.environment = {}
        self._missing = set()
        self.wanted = {}
        self._planned = False
        self.record = None     # like a files entry, plus "data" (the record dict or None)
        self.requested = {}    # validated settings before bucket rounding: the record's "applied"
        self.from_record = False   # state=absent restoring the record's originals
        self.remove_directories = []   # created by earlier runs, removed once empty (rollback)
        self.created = []      # directories this run creates (host paths)
        self.leftovers = []    # what killed runs of ours left (files.leftovers): removed by this run
        self.mismatches = {}
        self._tree_reader = None

    @classmethod
    def from_params(cls, params):
        """The backend for a module's params (validated against argument_spec())."""
        options = dict((name, params[name]) for name in OPTION_DEFAULTS if name in params)
        return cls(params.get("settings"), root=params.get("root") or "/", **options)

    # ---------------------------------------------------------------- paths
    def _host(self, path):
        """A host path under root."""
        return os.path.join(self.root, path.lstrip("/"))

    def _netfilter(self, key):
        return self._host(os.path.join(NETFILTER_DIR, key))

    def _reader(self):
        """The facts module's reader over the same tree, without commands (settings runs none)."""
        if self._tree_reader is None:
            self._tree_reader = reading.Reader(self.root, run_command=_no_commands)
        return self._tree_reader

    # ----------------------------------------------------------- validation
    def validate(self):
        """Every input checked before anything is read for writing or touched."""
        for option, value, accepted in (("state", self.state, ("present", "absent")),
                                        ("kube_proxy", self.kube_proxy, ("respect", "override")),
                                        ("boot_fix", self.boot_fix, ("auto", "always", "never"))):
            if value not in accepted:
                raise SettingsError("%s: %r is not one of %s" % (option, value, ", ".join(accepted)))
        for name in sorted(self.paths):
            problem = managed_path_problem(name, self.paths[name])
            if problem:
                raise SettingsError(problem)
        if self.record_file is not None:
            problem = record_path_problem(self.record_file)
            if problem:
                raise SettingsError(problem)
        if self.record_pressure_entries is not None and int(self.record_pressure_entries) < 0:
            raise SettingsError("record_pressure_entries: %r is negative (accepted: 0 or more)"
                                % (self.record_pressure_entries,))
        if not isinstance(self.lock_timeout, (int, float)) or not 0 <= self.lock_timeout <= 3600:
            raise SettingsError("lock_timeout: %r is out of range (accepted: 0..3600 seconds)" % (self.lock_timeout,))
        self.settings = validate_settings(self.raw_settings)
        self.requested = dict(self.settings)
        if self.restore is not None:
            if self.settings or self.state != "present":
                raise SettingsError("restore: cannot be combined with settings or state=absent (restore puts back "
                                    "exactly what an earlier run found)")
            validate_undo(self.restore)
            return self.settings
        if self.state == "present" and not self.settings:
            raise SettingsError("settings: {} is empty; with state=present give at least one key to apply")
        self._check_buckets()
        self._check_sane_max(self.settings)
        return self.settings

    def _check_buckets(self):
        if "nf_conntrack_buckets" in self.settings:
            self.settings["nf_conntrack_buckets"] = round_buckets(self.settings["nf_conntrack_buckets"],
                                                                  self.granularity)
            if self.settings["nf_conntrack_buckets"] > BUCKETS_MAX:
                raise SettingsError("settings.nf_conntrack_buckets: rounds up past %d (accepted: 1..%d)"
                                    % (BUCKETS_MAX, BUCKETS_MAX))

    def _check_sane_max(self, settings, count=None):
        """Legal for the kernel, almost surely a mistake: only with force."""
        value = settings.get("nf_conntrack_max")
        if value is None or self.force or self.state != "present":
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
        raise SettingsError("settings.nf_conntrack_max: %s; set force: true to apply it anyway" % why)

    # ---------------------------------------------------------------- run
    def run(self, check_mode=False):
        """The whole transaction under the host lock; returns changed. Check mode locks only
        when a lock file exists already (it creates nothing) and writes nothing."""
        if self.settings is None:
            self.validate()
        lock = files.ExclusiveLock(self._host(LOCK_FILE), self.lock_timeout, create=not check_mode)
        try:
            lock.acquire()
        except files.LockTimeout as exc:
            raise SettingsError(str(exc))
        except (IOError, OSError) as exc:
            raise SettingsError("cannot take the lock %s (%s)" % (LOCK_FILE, exc.strerror or exc))
        try:
            self.plan()
            changed = self.needs_change()
            if self.leftovers:
                self.warnings.append("an earlier run of this module was killed midway and left %s; %s" % (
                    ", ".join(self.leftovers), "check mode removes nothing" if check_mode else "removed"))
            if changed:
                self.preflight()
                if not check_mode:
                    self.apply()
            return changed
        finally:
            lock.release()

    # ---------------------------------------------------------- environment
    def detect(self):
        """What kind of place this is, by the same rules the facts module uses."""
        r = self._reader()
        available = r.exists(reading.NETFILTER + "/nf_conntrack_max")
        initial = reading.read_namespace(r)[0] if available else None
        release = (r.read("/proc/sys/kernel/osrelease") or "").strip() or None
        self.environment = {
            "available": available,
            "initial_netns": initial,
            "proc_sys_read_only": available and _read_only_mount(self._host(NETFILTER_DIR)),
            "module": reading.read_module_type(r, release),
            "kube_proxy_running": reading.kube_proxy_running(r),
            "kernel_release": release,
        }
        return self.environment

    # ---------------------------------------------------------------- plan
    def plan(self):
        """Work out skipped keys, runtime before/after and every file's content. Reads only."""
        if self.settings is None:
            self.validate()
        env = self.detect()
        if self.restore is not None:
            self._plan_restore(self.restore)
            self._planned = True
            return self
        if self.state == "absent" and self.record_file is not None and not self.raw_settings:
            self._take_record_originals()
        self._check_memory()
        wanted = dict(self.settings)
        if env["kube_proxy_running"]:
            self._plan_kube_proxy(wanted, env)
        if env["initial_netns"] is False:
            for key in GLOBAL_KEYS:
                if key in wanted:
                    self.skipped[key] = ("global key, read-only outside the initial network namespace "
                                         "(container or netns): set it on the host")
                    del wanted[key]
        self.wanted = wanted
        if self.runtime_enabled:
            self._plan_runtime(wanted, env)
        if env["available"]:
            count = _read_int(self._netfilter("nf_conntrack_count"))
            self._check_sane_max(wanted, count)
            new_max = self.runtime.get("nf_conntrack_max", {}).get("after")
            if count and new_max and new_max < count:
                self.warnings.append("nf_conntrack_max %d is below the %d entries tracked now: new connections are "
                                     "dropped until the table drains" % (new_max, count))
        if self.strict and self.skipped:
            raise SettingsError("strict: would skip %s" % "; ".join(
                "%s (%s)" % (k, v) for k, v in sorted(self.skipped.items())))
        self._plan_files(wanted, env)
        if self.record_file is not None:
            self._plan_record()
        if self.state == "present":
            self.created = self._directories_to_create()
        self.leftovers = self._find_leftovers()
        self._planned = True
        return self

    def _find_leftovers(self):
        """Temporary files and directory stages that a killed run of ours left beside the files
        this module manages: removed once this run succeeds (a failed run leaves them as found)."""
        paths = [info["full"] for info in self.files.values()]
        if self.record is not None:
            paths.append(self.record["full"])
        found = []
        for full in sorted(set(paths)):
            found.extend(p for p in files.leftovers(full) if p not in found)
        return found

    def _plan_kube_proxy(self, wanted, env):
        """kube-proxy writes its keys when it starts: say what survives a restart."""
        owned = sorted(k for k in KUBE_PROXY_KEYS if k in wanted)
        optional = sorted(k for k in KUBE_PROXY_OPTIONAL_KEYS if k in wanted)
        if self.kube_proxy == "respect":
            for key in owned:
                self.skipped[key] = ("kube-proxy runs here and writes this key to its own value when it starts "
                                     "(kube_proxy=respect): set it in kube-proxy's conntrack configuration")
                del wanted[key]
            if owned:
                self.warnings.append("kube-proxy is running: left %s alone; set kube_proxy=override to manage "
                                     "them anyway" % ", ".join(owned))
            owned = []
        for key in owned + optional:
            current = self._read_runtime(key) if env["available"] else None
            self.warnings.append(kube_proxy_outcome(key, wanted[key], current))

    def _load_record(self):
        """(record dict, its text) or (None, None); a record that exists but cannot be used stops the run."""
        data, text, problem = reading.load_record(self._host(self.record_file))
        if problem:
            raise SettingsError(reading.record_error_message(self.record_file, problem))
        return data, text

    def _take_record_originals(self):
        """state=absent with a record: restore its originals and remove the files it names."""
        record = self._load_record()[0]
        if record is None:
            self.notes.append("no tuning record at %s: removing our drop-ins only, runtime values stay as they are"
                              % self.record_file)
            return
        self.from_record = True
        for name, path in sorted(record.get("files", {}).items()):
            if name not in self.paths:
                continue
            problem = managed_path_problem(name, path)
            if problem:
                raise SettingsError("the tuning record %s names files.%s: %s" % (self.record_file, name, problem))
            self.paths[name] = path
        try:
            self.settings = validate_settings(record.get("original", {}))
        except SettingsError as exc:
            raise SettingsError("the tuning record %s holds an original value that cannot be applied: %s"
                                % (self.record_file, exc.detail))
        self.requested = dict(self.settings)
        self._check_buckets()
        unknown = sorted(k for k, v in record.get("original_source", {}).items() if v == "unknown")
        if unknown:
            self.notes.append("the values before the first tune of %s are not known (nf_conntrack was not loaded "
                              "then): they return to the kernel defaults at the next boot" % ", ".join(unknown))
        self.remove_directories = list(record.get("created_directories", []))

    def _plan_record(self):
        """The record's new content: originals from the first run kept, times kept when nothing changed."""
        full = self._host(self.record_file)
        previous, before = self._load_record()
        data = None
        if self.state == "present":
            previous = previous or {}
            original, sources = self._originals(previous)
            now = self.now()
            unchanged = previous.get("applied") == self.requested and previous.get("original") == original
            data = {
                "schema_version": reading.RECORD_SCHEMA_VERSION,
                "original": original,
                "recorded_at": previous.get("recorded_at") or now,
                "applied": dict(self.requested),
                "applied_at": previous["applied_at"] if unchanged and previous.get("applied_at") else now,
                "pressure_entries": self.record_pressure_entries or previous.get("pressure_entries"),
                "files": dict(self.paths),
            }
            # Only when they say something, so that records of earlier versions stay byte for byte.
            if any(v != "runtime" for v in sources.values()):
                data["original_source"] = sources
            created = sorted(set(previous.get("created_directories", [])) | set(self._directories_to_create()))
            if created:
                data["created_directories"] = created
        content = render_record(data) if data is not None else None
        self.record = {"path": self.record_file, "full": full, "before": before, "after": content,
                       "data": data, "changed": before != content, "fix_attrs": False}

    def _originals(self, previous):
        """(original, source) for every requested key: kept from the record, else the runtime value
        now, else (module not loaded) what the kernel will boot with."""
        original = dict(previous.get("original") or {})
        sources = dict(previous.get("original_source") or {})
        for key in original:
            sources.setdefault(key, "runtime")
        boot = None
        for key in sorted(self.requested):
            if key in original or sources.get(key) == "unknown":
                continue
            value = self._read_runtime(key) if self.environment.get("available") else None
            if value is not None:
                original[key], sources[key] = value, "runtime"
                continue
            if boot is None:
                boot = self._boot_values()
            if key in boot:
                original[key], sources[key] = boot[key]
            else:
                sources[key] = "unknown"
        return original, sources

    def _boot_values(self):
        """{key: (value, source)}: what nf_conntrack gets when it loads without our files."""
        r = self._reader()
        persistent = reading.read_persistent(r, exclude=set(self.paths.values()))
        mem_total_bytes = kernel.mem_total_bytes(r.read("/proc/meminfo"))
        hashsize = persistent["modprobe"].get("hashsize")
        hashsize_value = hashsize["value"] if hashsize and isinstance(hashsize["value"], int) else None
        defaults = kernel.boot_defaults(self.environment.get("kernel_release"), mem_total_bytes or 0, hashsize_value,
                                        self.granularity * struct.calcsize("P"), struct.calcsize("P"))
        out = dict((k, (v, "kernel_default")) for k, v in defaults.items())
        if mem_total_bytes is None:
            for key in kernel.TABLE_SIZE_KEYS:
                out.pop(key, None)  # these defaults scale with RAM
        if hashsize_value:
            for key in kernel.TABLE_SIZE_KEYS:
                out[key] = (defaults[key], "file:" + hashsize["file"])
        for key, entry in persistent["sysctl"].items():
            if key in KEYS and isinstance(entry["value"], int) and not isinstance(entry["value"], bool):
                value = round_buckets(entry["value"], self.granularity) if key == "nf_conntrack_buckets" \
                    else entry["value"]
                out[key] = (value, "file:" + entry["file"])
        return out

    def _directories_to_create(self):
        """Host paths of the directories the planned writes would create."""
        targets = [info for info in self.files.values() if info["changed"] and info["after"] is not None]
        full_paths = [info["full"] for info in targets]
        if self.state == "present" and self.record_file is not None:
            full_paths.append(self._host(self.record_file))
        out = set()
        for full in full_paths:
            for directory in files.missing_directories(os.path.dirname(full)):
                out.add("/" + os.path.relpath(directory, self.root))
        return sorted(out)

    def _check_memory(self):
        """A hash table bigger than half the RAM would fail (or wake the OOM killer) midway: refuse it now."""
        buckets = self.settings.get("nf_conntrack_buckets")
        mem_total_bytes = kernel.mem_total_bytes(_read(self._host("proc/meminfo")))
        if buckets is None or mem_total_bytes is None:
            return
        table_bytes = buckets * struct.calcsize("P")
        if table_bytes > mem_total_bytes // 2:
            raise SettingsError("settings.nf_conntrack_buckets: %d needs a %d MiB hash table, more than half of "
                                "this host's %d MiB of RAM" % (buckets, table_bytes >> 20, mem_total_bytes >> 20))

    def _plan_runtime(self, wanted, env):
        if not env["available"]:
            for key in sorted(wanted):
                self.skipped.setdefault(key, "nf_conntrack is not loaded: not applied at runtime")
            if wanted:
                self.warnings.append("nf_conntrack is not loaded here: nothing applied at runtime; the boot files "
                                     "apply the values when it loads")
            return
        for key in sorted(wanted):
            before = self._read_runtime(key)
            if before is None:
                self.skipped[key] = "not present in this kernel (%s)" % (env["kernel_release"] or "unknown release")
                self._missing.add(key)
                self.warnings.append("%s does not exist in this kernel: skipped" % key)
                continue
            if env["proc_sys_read_only"]:
                self.skipped[key] = "/proc/sys is mounted read-only here (a container without unmask=/proc/sys)"
                continue
            self.runtime[key] = {"before": before, "after": wanted[key]}
        if env["proc_sys_read_only"] and wanted:
            self.warnings.append("/proc/sys is read-only in this container: runtime values were not applied")

    def _plan_files(self, wanted, env):
        present = self.state == "present"
        # Keys the kernel lacks would make systemd-sysctl log errors at every boot.
        persisted = dict((k, v) for k, v in wanted.items() if k not in self._missing)
        loadable = env["module"] == "loadable"
        if self.persist_sysctl or not present:
            keys = dict(persisted)
            if loadable and "nf_conntrack_buckets" in keys and self.persist_modprobe:
                del keys["nf_conntrack_buckets"]  # the modprobe option sizes it at load, without a resize
            self._plan_file("sysctl", self._render_sysctl(keys) if present and keys else None, present and not keys)
        if self.persist_modprobe and loadable or not present:
            buckets = persisted.get("nf_conntrack_buckets")
            content = None
            if present and buckets is not None:
                content = HEADER + "options nf_conntrack hashsize=%d\n" % buckets
            self._plan_file("modprobe", content, present and content is None)
        boot_fix = self.boot_fix == "always" or (self.boot_fix == "auto" and env["module"] in ("loadable", "unknown"))
        if boot_fix or not present:
            self._plan_file("modules_load", HEADER + "nf_conntrack\n" if present else None, False)
            self._plan_file("udev_rule", HEADER + "# Re-apply net.netfilter sysctls once nf_conntrack exists "
                            "(systemd sysctl.d(5)).\n" + UDEV_RULE + "\n" if present else None, False)
        elif present and loadable and self.boot_fix == "never":
            self.warnings.append("boot_fix=never on a loadable nf_conntrack: when the module loads after "
                                 "systemd-sysctl at boot (nftables, docker), the net.netfilter values of %s are "
                                 "not applied and max becomes the kernel default (8 x hashsize with a modprobe "
                                 "hashsize)" % self.paths["sysctl"])
        if present and env["module"] == "builtin" and "nf_conntrack_buckets" in persisted:
            self.notes.append("nf_conntrack is built in: nf_conntrack_buckets persists through the sysctl drop-in; "
                              "the kernel command line nf_conntrack.hashsize=N is the other way")
        if present and (self.persist_sysctl and persisted):
            self._check_sysctl_order(persisted)

    def _read_managed(self, option, path, full):
        """Current text of a managed file, or None; anything but a regular file stops the run."""
        try:
            raw = files.read_regular(full)
        except files.UnsafeFile as exc:
            raise SettingsError("%s: %s cannot be managed: %s. Remove or rename it, or choose another path"
                                % (option, path, exc))
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SettingsError("%s: %s is not UTF-8 text: not a file this collection wrote. Move it aside"
                                % (option, path))

    def _plan_file(self, name, content, leave_alone):
        """content None: the file must not exist; leave_alone: not managed this run."""
        if leave_alone:
            return
        path = self.paths[name]
        full = self._host(path)
        before = self._read_managed("%s_file" % name, path, full)
        if before is not None and OWN_MARKER not in before and not self.force:
            raise SettingsError("%s_file: %s exists and was not written by this collection (no %r line): not %s "
                                "it. Move it aside, choose another %s_file, or set force: true"
                                % (name, path, OWN_MARKER, "removing" if content is None else "replacing", name))
        info = {"path": path, "full": full, "before": before, "after": content, "fix_attrs": False}
        if content is not None and before is not None:
            st = os.lstat(full)
            want_owner = os.geteuid() == 0
            info["fix_attrs"] = (stat.S_IMODE(st.st_mode) != 0o644
                                 or (want_owner and (st.st_uid, st.st_gid) != (0, 0)))
        info["changed"] = info["before"] != content or info["fix_attrs"]
        self.files[name] = info

    def _plan_restore(self, undo):
        """Put back what an earlier run found, only where that run's writes are still in place."""
        by_path = dict((path, name) for name, path in self.paths.items())
        if self.record_file is not None:
            by_path[self.record_file] = "record"
        for path in sorted(undo.get("files", {})):
            entry = undo["files"][path]
            name = by_path.get(path)
            if name is None:
                raise SettingsError("restore: %s is not one of this call's files (sysctl_file, modprobe_file, "
                                    "modules_load_file, udev_rule_file, record_file)" % path)
            full = self._host(path)
            now = self._read_managed("restore", path, full)
            if _sha256(now) != entry.get("sha256_after"):
                raise SettingsError("restore: %s changed since the run that wrote it (another run or an edit): "
                                    "not putting anything back" % path)
            info = {"path": path, "full": full, "before": now, "after": entry.get("content"), "fix_attrs": False,
                    "data": None}
            info["changed"] = info["before"] != info["after"]
            if name == "record":
                self.record = info
            else:
                self.files[name] = info
        if self.runtime_enabled and self.environment["available"]:
            for key, value in sorted(undo.get("runtime", {}).items()):
                before = self._read_runtime(key)
                if before is not None:
                    self.runtime[key] = {"before": before, "after": value}
        self.settings = dict(undo.get("runtime", {}))
        self.wanted = dict(self.settings)
        self.remove_directories = list(undo.get("directories", []))

    def _render_sysctl(self, keys):
        lines = [HEADER, "# Applied at boot by systemd-sysctl and sysctl --system.\n"]
        if "nf_conntrack_buckets" in keys:
            lines.append("# The kernel rounds nf_conntrack_buckets up to a multiple of %d.\n" % self.granularity)
        for key in self._write_order(keys, dict((k, None) for k in keys)):
            lines.append("%s%s = %d\n" % (SYSCTL_PREFIX, key, keys[key]))
        return "".join(lines)

    def sysctl_order(self):
        """Files in the order sysctl --system applies them, ours included; the last value for a key wins."""
        files = reading.sysctl_files(self._reader())
        tail = [f for f in files if f == reading.SYSCTL_CONF]  # procps applies it after the directories
        body = [f for f in files if f != reading.SYSCTL_CONF]
        ours = self.paths["sysctl"]
        if not any(os.path.basename(f) == os.path.basename(ours) for f in body):
            body = sorted(body + [ours], key=os.path.basename)
        return body + tail

    def _check_sysctl_order(self, keys):
        order = self.sysctl_order()
        ours = self.paths["sysctl"]
        ours_real = os.path.realpath(self._host(ours))
        # validate() already made sure the drop-in sits in a directory sysctl reads at boot.
        if ours not in order:
            self.warnings.append("%s is masked by a file of the same name in a directory sysctl prefers: %s"
                                 % (ours, [f for f in order if os.path.basename(f) == os.path.basename(ours)][0]))
            return
        later = order[order.index(ours) + 1:]
        for path in later:
            full = self._host(path)
            if os.path.realpath(full) == ours_real:
                continue
            text = self._reader().read_config(path)
            if text is None:
                continue
            theirs = dict((kernel.conntrack_name(k), v) for k, v in parse_sysctl_file(text).items())
            for key in sorted(keys):
                if key in theirs:
                    self.warnings.append("%s%s is also set in %s, which sysctl applies after %s: its value (%s) "
                                         "wins at boot" % (SYSCTL_PREFIX, key, path, ours, theirs[key]))

    # ------------------------------------------------------------- answers
    def _runtime_changes(self):
        return dict((k, v) for k, v in self.runtime.items() if v["before"] != v["after"])

    def needs_change(self):
        if not self._planned:
            self.plan()
        return (bool(self._runtime_changes()) or any(f["changed"] for f in self.files.values())
                or bool(self.record and self.record["changed"]) or bool(self._removable_directories())
                or bool(self.leftovers))

    def _removable_directories(self):
        """Directories an earlier run created that are empty now or will be after this run (innermost first)."""
        leaving = set(info["full"] for info in self._changed_files() if info["after"] is None)
        leaving.update(self.leftovers)
        out = []
        for directory in sorted(self.remove_directories, key=len, reverse=True):
            full = self._host(directory)
            try:
                names = os.listdir(full)
            except OSError:
                continue
            rest = [n for n in names if os.path.join(full, n) not in leaving
                    and os.path.join(full, n) not in [self._host(d) for d in out]]
            if not rest and os.path.isdir(full) and not os.path.islink(full):
                out.append(directory)
        return out

    def _changed_files(self):
        out = [self.files[name] for name in sorted(self.files) if self.files[name]["changed"]]
        if self.record and self.record["changed"]:
            out.append(self.record)
        return out

    def _write_order(self, keys, before):
        """Growing: buckets before max, so chains never get deeper than planned; shrinking: the reverse."""
        rest = sorted(k for k in keys if k not in ("nf_conntrack_buckets", "nf_conntrack_max"))
        head = [k for k in ("nf_conntrack_buckets", "nf_conntrack_max") if k in keys]
        b = before.get("nf_conntrack_buckets")
        if len(head) == 2 and b is not None and keys["nf_conntrack_buckets"] < b:
            head.reverse()
        return head + rest

    # --------------------------------------------------------------- apply
    def _write_path(self, key):
        path = self._netfilter(key)
        # Before Linux 4.7 the buckets sysctl is read-only; the module parameter resizes too.
        if key == "nf_conntrack_buckets" and not (os.path.exists(path) and os.stat(path).st_mode & 0o222):
            path = self._host(HASHSIZE_PARAM)
        return path

    def _read_runtime(self, key):
        value = _read_int(self._netfilter(key))
        if key == "nf_conntrack_buckets" and value is None:
            value = _read_int(self._host(HASHSIZE_PARAM))
        return value

    def _write_runtime(self, key, value):
        with open(self._write_path(key), "w") as f:
            f.write("%d\n" % value)

    def preflight(self):
        """Refuse up front what would fail midway (a read-only or full /etc, an unwritable key): nothing changes."""
        ApplyTransaction(self).preflight()

    def _backup_copy(self, full):
        return files.copy_regular(full, files.backup_path(full))

    def apply(self):
        """Carry out the plan as one transaction (ApplyTransaction): written, or all put back."""
        if not self._planned:
            self.plan()
        ApplyTransaction(self).apply()

    # -------------------------------------------------------------- report
    def undo(self):
        """What this run found, for the restore option after a later failure (verify, health gate)."""
        out = {"runtime": dict((k, v["before"]) for k, v in sorted(self._runtime_changes().items())),
               "files": {}, "directories": list(self.created)}
        for info in self._changed_files():
            out["files"][info["path"]] = {"content": info["before"], "sha256_after": _sha256(info["after"])}
        return out

    def result(self):
        files_out = {}
        for name, info in self.files.items():
            entry = {"changed": info["changed"], "state": "absent" if info["after"] is None else "present"}
            entry["backup"] = info.get("backup")
            files_out[info["path"]] = entry
        out = {
            "runtime": dict((k, dict(v)) for k, v in self.runtime.items()),
            # Not "skipped": ansible reads a truthy "skipped" in a result as a skipped task.
            "skipped_keys": dict(self.skipped),
            "files": files_out,
            "desired": dict((k, self.runtime[k]["after"] if k in self.runtime else v)
                            for k, v in self.wanted.items() if k not in self.skipped),
            "environment": dict(self.environment),
            "notes": list(self.notes),
            "undo": self.undo(),
        }
        if self.runtime_enabled and self.environment.get("available"):
            # Read again now, so that a verify step needs no second facts call.
            read_back = {}
            for key in sorted(self.settings or {}):
                value = self._read_runtime(key)
                if value is not None:
                    read_back[key] = value
            out["read_back"] = read_back
        out["mismatches"] = dict(self.mismatches)
        out["leftovers"] = list(self.leftovers)
        if self.record is not None:
            out["record"] = {"path": self.record["path"], "changed": self.record["changed"],
                             "state": "absent" if self.record["after"] is None else "present",
                             "content": self.record.get("data")}
        return out

    def diff(self):
        diffs = []
        if self.runtime:
            keys = sorted(self.runtime)
            diffs.append({
                "before_header": "runtime (/proc/sys/net/netfilter)",
                "after_header": "runtime (/proc/sys/net/netfilter)",
                "before": "".join("%s%s = %s\n" % (SYSCTL_PREFIX, k, self.runtime[k]["before"]) for k in keys),
                "after": "".join("%s%s = %s\n" % (SYSCTL_PREFIX, k, self.runtime[k]["after"]) for k in keys),
            })
        for info in [self.files[name] for name in sorted(self.files)] + (
                [self.record] if self.record is not None and self.record["changed"] else []):
            diffs.append({"before_header": info["path"] if info["before"] is not None else "%s (absent)" % info["path"],
                          "after_header": info["path"] if info["after"] is not None else "%s (absent)" % info["path"],
                          "before": info["before"] or "", "after": info["after"] or ""})
        for leftover in self.leftovers:
            diffs.append({"before_header": "%s (left by a killed run)" % leftover,
                          "after_header": "%s (absent)" % leftover, "before": "", "after": ""})
        return diffs


class ApplyTransaction(object):
    """The writing half of a run: it carries out a finished plan (the backend's runtime, files,
    record and directories) and changes nothing the plan did not name. Every step is journaled
    before it is tried, so any failure puts the host back as it was found."""

    def __init__(self, backend):
        self.backend = backend

    def preflight(self):
        """Refuse up front what would fail midway (a read-only or full /etc, an unwritable key): nothing changes."""
        problems = []
        needed, inodes = {}, {}
        for info in self.backend._changed_files():
            directory = os.path.dirname(info["full"])
            while not os.path.isdir(directory):
                directory = os.path.dirname(directory)
            if _read_only_mount(directory):
                problems.append("%s: %s is on a read-only file system" % (info["path"], directory))
            elif not os.access(directory, os.W_OK):
                problems.append("%s: no permission to write in %s" % (info["path"], directory))
            elif info["after"] is not None:
                size = len(info["after"].encode("utf-8"))
                if self.backend.backup and info["before"] is not None:
                    size += len(info["before"].encode("utf-8"))
                needed[directory] = needed.get(directory, 0) + size
                # The temporary file, a backup, and each directory still to be made.
                inodes[directory] = (inodes.get(directory, 0) + 1 + (1 if self.backend.backup and info["before"] else 0)
                                     + len(files.missing_directories(os.path.dirname(info["full"]))))
        for directory, size in sorted(needed.items()):
            free_bytes, free_inodes = _free_space(directory)
            # A new file takes at least one block, and the old one is freed only after the rename.
            if free_bytes is not None and free_bytes < size + 8192:
                problems.append("%s has %d bytes free, the new files need about %d"
                                % (directory, free_bytes, size + 8192))
            elif free_inodes is not None and free_inodes < inodes[directory]:
                problems.append("%s has %d free inodes, the new files need %d"
                                % (directory, free_inodes, inodes[directory]))
        for key in sorted(self.backend._runtime_changes()):
            if not os.access(self.backend._write_path(key), os.W_OK):
                problems.append("%s: not writable here" % key)
        if problems:
            raise ApplyError("nothing was changed: " + "; ".join(problems),
                             {"rolled_back": [], "rollback_errors": [], "failed_key": None})

    def apply(self):
        """Preflight, then the record, runtime (ordered) and files under one journal: any failure
        (a full disk, an immutable file, a failing backup, a value that does not read back when
        restoring) puts back everything this run wrote and raises ApplyError.

        The order is what a run killed midway (SIGKILL: no undo runs) relies on: a record being
        written goes first, so the originals are on disk before anything changes; a record being
        removed (a rollback) goes last, with the directories it created in the same step, so a
        rollback killed midway still finds it and can be run again."""
        self.preflight()
        journal = _Journal(self.backend)
        record = self.backend.record
        removing_record = bool(record and record["changed"] and record["after"] is None)
        step = "writing the tuning record"
        failed_key = None
        try:
            if not removing_record:
                self._write_record(journal)
            changes = self.backend._runtime_changes()
            befores = dict((k, v["before"]) for k, v in changes.items())
            for key in self.backend._write_order(dict((k, v["after"]) for k, v in changes.items()), befores):
                step, failed_key = "writing %s=%d" % (key, changes[key]["after"]), key
                journal.runtime(key, befores[key])
                self.backend._write_runtime(key, changes[key]["after"])
                journal.did(key)
            step, failed_key = "reading the values back", None
            self._read_back(changes)
            for info in self.backend._changed_files():
                if info is self.backend.record:
                    continue
                step = "writing %s" % info["path"]
                self._apply_file(info, journal)
            # Debris of a killed run, not configuration: removed once everything else is written.
            step = "removing what a killed run left"
            for leftover in self.backend.leftovers:
                files.remove_leftover(leftover)
            step = "removing empty directories"
            removable = [self.backend._host(d) for d in self.backend._removable_directories()]
            chain = self._record_chain(removable) if removing_record else []
            for full in removable:
                if full not in chain:
                    os.rmdir(full)
                    journal.removed_directory(full)
            if removing_record:
                step = "removing the tuning record"
                self._remove_record(journal, chain)
        except Exception as exc:  # whatever went wrong, the host goes back to how it was found
            errors = journal.undo()
            reason = getattr(exc, "strerror", None) or str(exc)
            if not journal.done and not errors:
                msg = "nothing was changed: %s failed (%s)" % (step, reason)
            else:
                msg = "%s failed (%s); " % (step, reason)
                msg += ("rolled back %s" % ", ".join(journal.done)) if journal.done else "nothing had been changed"
                if errors:
                    msg += "; ROLLBACK FAILED for %s" % "; ".join(errors)
                else:
                    msg += ": the host is as it was before this run"
            raise ApplyError(msg, {"rolled_back": list(journal.done), "rollback_errors": errors,
                                   "failed_key": failed_key})

    def _read_back(self, changes):
        for key in sorted(changes):
            actual = self.backend._read_runtime(key)
            if actual != changes[key]["after"]:
                if self.backend.from_record or self.backend.restore is not None:
                    raise ApplyError("%s reads back %s after writing %d" % (key, actual, changes[key]["after"]), {})
                self.backend.warnings.append("%s reads back %s after writing %d" % (key, actual, changes[key]["after"]))
                self.backend.runtime[key]["after"] = actual
                self.backend.mismatches[key] = {"desired": changes[key]["after"], "actual": actual}

    def _apply_file(self, info, journal):
        full = info["full"]
        old = files.read_regular(full)
        if self.backend.backup and old is not None:
            dest = self.backend.backup_func(full)
            journal.created_file(dest)
            info["backup"] = dest
        self._replace(info["path"], full, old, info["after"], journal)

    @staticmethod
    def _replace(path, full, old, content, journal):
        # Journaled before the attempt, parents first, so that the undo runs innermost first.
        journal.directories(files.missing_directories(os.path.dirname(full)) if content is not None else [])
        journal.file(path, full, old)
        if content is None:
            os.unlink(full)
            files.fsync_directory(os.path.dirname(full))
        else:
            write_atomic(full, content.encode("utf-8"))
        journal.did(path)

    def _record_chain(self, removable):
        """The directories around the record that go with it (innermost first): its own directory
        and each parent up to the last one this run removes."""
        chain = []
        directory = os.path.dirname(self.backend.record["full"])
        while directory in removable:
            chain.append(directory)
            directory = os.path.dirname(directory)
        return chain

    def _remove_record(self, journal, chain):
        """The record, and the directories of ``chain`` with it, in one rename: the outermost is
        moved aside (.<name>.XXXXXXXX) and then deleted, so a kill leaves the record in place or
        only a stage that the next run removes (files.leftovers)."""
        full = self.backend.record["full"]
        if not chain:
            self._write_record(journal)
            return
        top = chain[-1]
        journal.file(self.backend.record["path"], full, files.read_regular(full))
        stage = files.retire_directory(top)
        journal.retired(top, stage)
        journal.did(self.backend.record["path"])
        journal.done.extend(chain)
        try:
            files.remove_leftover(stage)
        except (IOError, OSError) as exc:  # the rollback is done; the next run removes the rest
            self.backend.warnings.append("could not delete %s (%s): the next run removes it" % (
                stage, exc.strerror or exc))

    def _write_record(self, journal):
        if not self.backend.record or not self.backend.record["changed"]:
            return
        full = self.backend.record["full"]
        self._replace(self.backend.record["path"], full, files.read_regular(full), self.backend.record["after"], journal)


class _Journal(object):
    """What a run changed, in order, and how to undo each step."""

    def __init__(self, backend):
        self.backend = backend
        self.steps = []
        self.done = []

    # A step is journaled before it is tried (undoing an untried step is harmless: it writes
    # what is there), and listed as done once it succeeded.
    def runtime(self, key, before):
        self.steps.append(("runtime", key, before))

    def file(self, path, full, old):
        self.steps.append(("file", full, old))

    def did(self, what):
        self.done.append(what)

    def created_file(self, full):
        self.steps.append(("created", full, None))

    def directories(self, created):
        for each in created or ():
            self.steps.append(("directory", each, None))

    def removed_directory(self, full):
        self.steps.append(("rmdir", full, None))
        self.done.append(full)

    def retired(self, top, stage):
        self.steps.append(("retired", top, stage))

    def undo(self):
        """Undo every step, newest first. A step that left things as they were (it failed before
        it took effect, say an EPERM on an immutable file) needs no undo and is skipped."""
        errors = []
        for kind, what, old in reversed(self.steps):
            try:
                if kind == "runtime":
                    if self.backend._read_runtime(what) != old:
                        self.backend._write_runtime(what, old)
                elif kind == "file" and _unchanged(what, old):
                    continue
                elif kind == "file" and old is None:
                    os.unlink(what)
                elif kind == "file":
                    write_atomic(what, old)
                elif kind == "created" and os.path.lexists(what):
                    os.unlink(what)
                elif kind == "directory" and os.path.isdir(what):
                    os.rmdir(what)
                elif kind == "rmdir":
                    os.mkdir(what, 0o755)
                elif kind == "retired" and os.path.isdir(old) and not os.path.lexists(what):
                    os.rename(old, what)
            except (IOError, OSError) as exc:
                errors.append("%s: %s" % (what, exc.strerror or exc))
        return errors


def kube_proxy_outcome(key, value, current, intended=None, version=None):
    """One sentence: whether ``value`` for ``key`` survives a kube-proxy restart.

    ``intended``: what kube-proxy's configuration asks for (None: unknown to this module, the
    recommend module's kube_proxy result knows it); ``version``: its release, None when unknown
    (kernel.after_kube_proxy_restart says what each release does).
    """
    since = kernel.KEYS[key].kube_proxy
    who = "kube-proxy" if since == kernel.KUBE_PROXY_FIRST else "kube-proxy %d.%d and newer" % since
    if not kernel.KEYS[key].kube_proxy_by_default:
        who += ", when its conntrack configuration sets it,"
    if intended is not None:
        after = kernel.after_kube_proxy_restart(key, intended, value, version)
        if after == value:
            return "%s=%d survives kube-proxy restarts: %s asks for %d, which does not replace it" % (
                key, value, who, intended)
        return "%s=%d does not survive a kube-proxy restart: %s writes %d" % (key, value, who, after)
    if kernel.kube_proxy_raises_only(key, version):
        return ("%s=%d survives kube-proxy restarts unless kube-proxy's own value is higher: %s only raises it"
                % (key, value, who))
    changed = "lowered from %d to %d" % (current, value) if current is not None and value < current else (
        "set to %d" % value)
    return ("%s %s: %s writes its own value back at each start (1.29 and newer whether ours is lower or higher; "
            "1.22 to 1.28 only when ours is lower); set it in kube-proxy's conntrack configuration instead "
            "(the recommend module's kube_proxy result gives the block)" % (key, changed, who))


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
    if path.startswith(FACTS_DIR + "/") and (os.path.dirname(path) != FACTS_DIR or not path.endswith(".fact")):
        return ("record_file: %r: in %s the record must be a file directly in it ending in .fact (what Ansible's "
                "local facts read), for example %s/netfilter_conntrack.fact" % (path, FACTS_DIR, FACTS_DIR))
    return None


def validate_undo(undo):
    """The shape of a restore option (the undo of an earlier result)."""
    if not isinstance(undo, dict) or not set(undo) <= set(("runtime", "files", "directories")):
        raise SettingsError("restore: expected the undo dict of an earlier settings result "
                            "({runtime, files, directories}), got %r" % (undo,))
    runtime = undo.get("runtime") or {}
    if not isinstance(runtime, dict):
        raise SettingsError("restore.runtime: expected a dict of kernel keys to integers, got %r" % (runtime,))
    undo["runtime"] = validate_settings(runtime)
    entries = undo.get("files") or {}
    if not isinstance(entries, dict) or not all(
            isinstance(v, dict) and (v.get("content") is None or isinstance(v.get("content"), str))
            and (v.get("sha256_after") is None or isinstance(v.get("sha256_after"), str)) for v in entries.values()):
        raise SettingsError("restore.files: expected {path: {content, sha256_after}}, got %r" % (entries,))
    undo["files"] = entries
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
    undo["directories"] = directories


def _unchanged(full, old):
    """Whether the managed file at ``full`` still holds ``old`` (None: still absent)."""
    try:
        return files.read_regular(full) == old
    except files.UnsafeFile:
        return False


def _sha256(text):
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _free_space(directory):
    """(free bytes, free inodes) as root sees them (the reserve included); None when unknown."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None, None
    # f_files == 0: the file system does not count inodes (btrfs, some FUSE).
    return st.f_bfree * st.f_frsize, (st.f_ffree if st.f_files else None)


def render_record(data):
    """The record as the role's to_nice_json(sort_keys=true) wrote it, so old records compare equal."""
    return json.dumps(data, indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


write_atomic = files.write_atomic
