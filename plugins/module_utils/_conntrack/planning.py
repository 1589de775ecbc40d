# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The planning half of a settings run: what this host is, and what would change.

Private to this collection. ``Planner.plan()`` reads only and returns a ``Plan``, the value
the transaction carries out. Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import hashlib
import os

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import (
    boot_files, files, kernel, reading, runtime, settings_input, tuning_record,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.settings_input import SettingsError

# What kube-proxy writes when it starts with its default configuration; the newer keys it
# writes only when configured (kernel.kube_proxy_keys()).
KUBE_PROXY_KEYS = kernel.kube_proxy_keys(by_default_only=True)
KUBE_PROXY_OPTIONAL_KEYS = tuple(k for k in kernel.kube_proxy_keys() if k not in KUBE_PROXY_KEYS)

# A finished plan. runtime: {key: {before, after}} of every key considered at runtime; files:
# {name: {path, full, before, after, changed, fix_attrs}}; record: like a files entry plus
# "data" (the record dict), or None; target: the settings read back at the end; applicable:
# the target without the skipped keys; skipped: {key: why}; created: directories this run
# creates; remove_directories: created by earlier runs, removed once empty; leftovers: what
# killed runs left; strict_read_back: a value that does not read back fails the run
# (restoring); backup: keep a copy of each replaced file.
Plan = collections.namedtuple("Plan", (
    "environment", "runtime", "files", "record", "target", "applicable", "skipped", "created",
    "remove_directories", "leftovers", "strict_read_back", "backup"))


def empty_plan():
    """The plan of a run that has not planned (yet): nothing to change, nothing to report."""
    return Plan(environment={}, runtime={}, files={}, record=None, target={}, applicable={}, skipped={}, created=[],
                remove_directories=[], leftovers=[], strict_read_back=False, backup=False)


def sha256(text):
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _no_commands(argv):
    return None


def runtime_changes(plan):
    return dict((k, v) for k, v in plan.runtime.items() if v["before"] != v["after"])


def changed_files(plan):
    """The files that change, by name, then the record."""
    out = [plan.files[name] for name in sorted(plan.files) if plan.files[name]["changed"]]
    if plan.record and plan.record["changed"]:
        out.append(plan.record)
    return out


def removable_directories(plan, root):
    """Directories an earlier run created that are empty now or will be after this run (innermost first)."""
    leaving = set(info["full"] for info in changed_files(plan) if info["after"] is None)
    leaving.update(plan.leftovers)
    out = []
    for directory in sorted(plan.remove_directories, key=len, reverse=True):
        full = runtime.host_path(root, directory)
        try:
            names = os.listdir(full)
        except OSError:
            continue
        rest = [n for n in names if os.path.join(full, n) not in leaving
                and os.path.join(full, n) not in [runtime.host_path(root, d) for d in out]]
        if not rest and os.path.isdir(full) and not os.path.islink(full):
            out.append(directory)
    return out


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


def _earlier_name(path):
    """For a restore: the name of a boot file of ours at ``path`` that a run removed because the
    record had moved it (Planner._plan_moved_files), or None."""
    for name in sorted(settings_input.MANAGED_DIRS):
        if settings_input.managed_path_problem(name, path) is None:
            return "previous_" + name
    return None


class Planner(object):
    """Works out, for one validated request, every change a run would make. Reads only."""

    def __init__(self, root, options, request, seams):
        """``seams``: {granularity, now} (the bucket rounding, the record's clock)."""
        self.root = root
        self.options = options
        self.paths = dict(options.paths)
        self.request = request
        self.granularity = seams["granularity"]
        self.now = seams["now"]
        self.proc = runtime.Runtime(root)
        # The facts module's reader over the same tree, without commands (settings runs none).
        self.reader = reading.Reader(root, run_command=_no_commands)
        self.environment = {}
        self.warnings = []
        self.notes = []
        self.skipped = {}
        self.runtime = {}
        self.files = {}
        self.record = None
        self.missing = set()
        self.from_record = False
        self.remove_directories = []

    def host(self, path):
        return runtime.host_path(self.root, path)

    def detect(self):
        """What kind of place this is, by the same rules the facts module uses."""
        r = self.reader
        available = r.exists(reading.NETFILTER + "/nf_conntrack_max")
        initial = reading.read_namespace(r)[0] if available else None
        release = (r.read("/proc/sys/kernel/osrelease") or "").strip() or None
        self.environment = {
            "available": available,
            "initial_netns": initial,
            "proc_sys_read_only": available and runtime.read_only_mount(self.host(runtime.NETFILTER_DIR)),
            "module": reading.read_module_type(r, release),
            "kube_proxy_running": reading.kube_proxy_running(r),
            "kernel_release": release,
        }
        return self.environment

    def plan(self):
        """The Plan: skipped keys, runtime before/after and every file's content."""
        env = self.detect()
        opts = self.options
        if self.request.restore is not None:
            return self._plan_restore(self.request.restore)
        if opts.state == "absent" and opts.record_file is not None and not self.request.requested:
            self._take_record_originals()
        self._check_memory()
        applicable = dict(self.request.target)
        if env["kube_proxy_running"]:
            self._plan_kube_proxy(applicable, env)
        if env["initial_netns"] is False:
            for key in kernel.GLOBAL_KEYS:
                if key in applicable:
                    self.skipped[key] = ("global key, read-only outside the initial network namespace "
                                         "(container or netns): set it on the host")
                    del applicable[key]
        if opts.runtime:
            self._plan_runtime(applicable, env)
        if env["available"]:
            count = runtime.read_int(self.proc.path("nf_conntrack_count"))
            settings_input.check_sane_max(applicable, opts, count)
            new_max = self.runtime.get("nf_conntrack_max", {}).get("after")
            if count and new_max and new_max < count:
                self.warnings.append("nf_conntrack_max %d is below the %d entries tracked now: new connections are "
                                     "dropped until the table drains" % (new_max, count))
        if opts.strict and self.skipped:
            raise SettingsError("strict: would skip %s" % "; ".join(
                "%s (%s)" % (k, v) for k, v in sorted(self.skipped.items())))
        planned, warnings, notes = boot_files.BootFiles(self.reader, opts, self.paths, self.granularity).plan(
            applicable, env, self.missing)
        self.files.update(planned)
        self.warnings.extend(warnings)
        self.notes.extend(notes)
        if opts.record_file is not None and opts.state == "present":
            self._plan_moved_files()
        if opts.record_file is not None:
            self._plan_record()
        created = self._directories_to_create() if opts.state == "present" else []
        return self._finish(applicable, created, self._find_leftovers(), strict_read_back=self.from_record)

    def _finish(self, applicable, created, leftovers, strict_read_back):
        return Plan(environment=self.environment, runtime=self.runtime, files=self.files, record=self.record,
                    target=self.request.target, applicable=applicable, skipped=self.skipped, created=created,
                    remove_directories=self.remove_directories, leftovers=leftovers,
                    strict_read_back=strict_read_back, backup=self.options.backup)

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

    def _plan_kube_proxy(self, applicable, env):
        """kube-proxy writes its keys when it starts: say what survives a restart."""
        owned = sorted(k for k in KUBE_PROXY_KEYS if k in applicable)
        optional = sorted(k for k in KUBE_PROXY_OPTIONAL_KEYS if k in applicable)
        if self.options.kube_proxy == "respect":
            for key in owned:
                self.skipped[key] = ("kube-proxy runs here and writes this key to its own value when it starts "
                                     "(kube_proxy=respect): set it in kube-proxy's conntrack configuration")
                del applicable[key]
            if owned:
                self.warnings.append("kube-proxy is running: left %s alone; set kube_proxy=override to manage "
                                     "them anyway" % ", ".join(owned))
            owned = []
        for key in owned + optional:
            current = self.proc.read(key) if env["available"] else None
            self.warnings.append(kube_proxy_outcome(key, applicable[key], current))

    def _load_record(self):
        """(record dict, its text) or (None, None); a record that exists but cannot be used stops the run."""
        record_file = self.options.record_file
        data, text, problem = tuning_record.load_record(self.host(record_file))
        if problem:
            raise SettingsError(tuning_record.record_error_message(record_file, problem))
        return data, text

    def _take_record_originals(self):
        """state=absent with a record: restore its originals and remove the files it names."""
        record_file = self.options.record_file
        record = self._load_record()[0]
        if record is None:
            self.notes.append("no tuning record at %s: removing our drop-ins only, runtime values stay as they are"
                              % record_file)
            return
        self.from_record = True
        for name, path in sorted(record.get("files", {}).items()):
            if name not in self.paths:
                continue
            problem = settings_input.managed_path_problem(name, path)
            if problem:
                raise SettingsError("the tuning record %s names files.%s: %s" % (record_file, name, problem))
            self.paths[name] = path
        try:
            requested = settings_input.validate_settings(record.get("original", {}))
        except SettingsError as exc:
            raise SettingsError("the tuning record %s holds an original value that cannot be applied: %s"
                                % (record_file, exc.detail))
        self.request = self.request._replace(requested=requested,
                                             target=settings_input.target_of(requested, self.granularity))
        unknown = sorted(k for k, v in record.get("original_source", {}).items() if v == "unknown")
        if unknown:
            self.notes.append("the values before the first tune of %s are not known (nf_conntrack was not loaded "
                              "then): they return to the kernel defaults at the next boot" % ", ".join(unknown))
        self.remove_directories = list(record.get("created_directories", []))

    def _plan_moved_files(self):
        """A boot file of ours that the record names at another path than this run's: the record
        will name the new path only, so nothing (rollback included) would remove the old one, and
        it would apply the earlier values at every boot. It goes in this same run."""
        previous = self._load_record()[0] or {}
        for name, old in sorted(previous.get("files", {}).items()):
            if name not in self.paths or old == self.paths[name]:
                continue
            problem = settings_input.managed_path_problem(name, old)
            if problem:
                raise SettingsError("the tuning record %s names files.%s: %s"
                                    % (self.options.record_file, name, problem))
            full = self.host(old)
            before = boot_files.read_managed("%s_file" % name, old, full)
            if before is None:
                continue
            if boot_files.OWN_MARKER not in before:
                self.warnings.append("%s, named by the tuning record as an earlier %s_file, was not written by this "
                                     "collection (no %r line): left alone" % (old, name, boot_files.OWN_MARKER))
                continue
            self.files["previous_" + name] = {"path": old, "full": full, "before": before, "after": None,
                                              "changed": True, "fix_attrs": False}

    def _plan_record(self):
        """The record's new content (None: removed), and whether it changes."""
        opts = self.options
        full = self.host(opts.record_file)
        previous, before = self._load_record()
        data = None
        if opts.state == "present":
            extra = {"pressure_entries": opts.record_pressure_entries, "files": self.paths,
                     "created_directories": self._directories_to_create()}
            data = tuning_record.build(previous, self.request.requested, self._originals, self.now(), extra)
        content = tuning_record.render_record(data) if data is not None else None
        self.record = {"path": opts.record_file, "full": full, "before": before, "after": content,
                       "data": data, "changed": before != content, "fix_attrs": False}

    def _originals(self, previous):
        available = self.environment.get("available")
        return tuning_record.originals(previous, self.request.requested,
                                       lambda key: self.proc.read(key) if available else None, self._boot_values)

    def _boot_values(self):
        """{key: (value, source)}: what nf_conntrack gets when it loads without our files."""
        r = self.reader
        persistent = reading.read_persistent(r, exclude=set(self.paths.values()))
        mem_total_bytes = kernel.mem_total_bytes(r.read("/proc/meminfo"))
        defaults = kernel.boot_defaults(self.environment.get("kernel_release"), mem_total_bytes or 0,
                                        tuning_record.hashsize_value(persistent),
                                        self.granularity * kernel.HOST_BUCKET_BYTES, kernel.HOST_BUCKET_BYTES)
        return tuning_record.boot_values(persistent, defaults, mem_total_bytes is not None, self.granularity)

    def _directories_to_create(self):
        """Host paths of the directories the planned writes would create."""
        targets = [info for info in self.files.values() if info["changed"] and info["after"] is not None]
        full_paths = [info["full"] for info in targets]
        if self.options.state == "present" and self.options.record_file is not None:
            full_paths.append(self.host(self.options.record_file))
        out = set()
        for full in full_paths:
            for directory in files.missing_directories(os.path.dirname(full)):
                out.add("/" + os.path.relpath(directory, self.root))
        return sorted(out)

    def _check_memory(self, option="settings"):
        """A hash table bigger than half the RAM would fail (or wake the OOM killer) midway: refuse it now."""
        buckets = self.request.target.get("nf_conntrack_buckets")
        mem_total_bytes = kernel.mem_total_bytes(runtime.read_bytes(self.host("proc/meminfo")))
        if buckets is None or mem_total_bytes is None:
            return
        table_bytes = buckets * kernel.HOST_BUCKET_BYTES
        if table_bytes > mem_total_bytes // 2:
            raise SettingsError("%s.nf_conntrack_buckets: %d needs a %d MiB hash table, more than half of "
                                "this host's %d MiB of RAM" % (option, buckets, table_bytes >> 20,
                                                               mem_total_bytes >> 20))

    def _plan_runtime(self, applicable, env):
        if not env["available"]:
            for key in sorted(applicable):
                self.skipped.setdefault(key, "nf_conntrack is not loaded: not applied at runtime")
            if applicable:
                self.warnings.append("nf_conntrack is not loaded here: nothing applied at runtime; the boot files "
                                     "apply the values when it loads")
            return
        for key in sorted(applicable):
            before = self.proc.read(key)
            if before is None:
                self.skipped[key] = "not present in this kernel (%s)" % (env["kernel_release"] or "unknown release")
                self.missing.add(key)
                self.warnings.append("%s does not exist in this kernel: skipped" % key)
                continue
            if env["proc_sys_read_only"]:
                self.skipped[key] = "/proc/sys is mounted read-only here (a container without unmask=/proc/sys)"
                continue
            self.runtime[key] = {"before": before, "after": applicable[key]}
        if env["proc_sys_read_only"] and applicable:
            self.warnings.append("/proc/sys is read-only in this container: runtime values were not applied")

    def _plan_restore(self, undo):
        """Put back what an earlier run found, only where that run's writes are still in place."""
        by_path = dict((path, name) for name, path in self.paths.items())
        if self.options.record_file is not None:
            by_path[self.options.record_file] = "record"
        for path in sorted(undo.get("files", {})):
            entry = undo["files"][path]
            name = by_path.get(path) or _earlier_name(path)
            if name is None:
                raise SettingsError("restore: %s is not one of this call's files (sysctl_file, modprobe_file, "
                                    "modules_load_file, udev_rule_file, record_file)" % path)
            full = self.host(path)
            now = boot_files.read_managed("restore", path, full)
            if sha256(now) != entry.get("sha256_after"):
                raise SettingsError("restore: %s changed since the run that wrote it (another run or an edit): "
                                    "not putting anything back" % path)
            info = {"path": path, "full": full, "before": now, "after": entry.get("content"), "fix_attrs": False,
                    "data": None}
            info["changed"] = info["before"] != info["after"]
            if name == "record":
                self.record = info
            else:
                self.files[name] = info
        if self.options.runtime and self.environment["available"]:
            for key, value in sorted(undo.get("runtime", {}).items()):
                before = self.proc.read(key)
                if before is not None:
                    self.runtime[key] = {"before": before, "after": value}
        self.request = self.request._replace(target=dict(undo.get("runtime", {})))
        self._check_memory("restore.runtime")
        self.remove_directories = list(undo.get("directories", []))
        # A restore puts back only what it names: debris of killed runs waits for a normal run.
        return self._finish(dict(self.request.target), [], [], strict_read_back=True)
