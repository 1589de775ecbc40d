# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Apply nf_conntrack settings at runtime and in boot-time files: the settings module's backend.

Private to this collection. ``ConntrackSettings`` ties the pieces of one run together:
the input checks (``settings_input``), the plan (``planning``, with ``boot_files`` and
``tuning_record``), and the transaction that writes it (``transaction``), and reports before
and after for diff mode. Everything is relative to ``root`` so unit tests run against a
temporary tree. Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import (
    files, kernel, planning, runtime, settings_input, transaction,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.settings_input import SettingsError

LOCK_FILE = "/run/lock/netfilter-conntrack.lock"


def _backup_copy(full):
    return files.copy_regular(full, files.backup_path(full))


class ConntrackSettings(object):
    """Desired nf_conntrack state on one host, the community.crypto backend way.

    One run is a transaction: validate (no I/O), then under the host lock read and plan,
    preflight, and apply with a journal, so that any failure puts back every runtime value,
    file, record, backup and directory this run touched.
    """

    def __init__(self, settings, root="/", **options):
        """``settings``: the given settings dict; ``options``: the module's (argument_spec(),
        defaults from there) and the seams unit tests use: ``backup_func`` (makes a backup,
        returns its path), ``granularity`` (the bucket rounding) and ``now`` (the record's clock)."""
        unknown = sorted(set(options) - set(settings_input.OPTION_DEFAULTS) - set(settings_input.TEST_SEAMS))
        if unknown:
            raise TypeError("ConntrackSettings: unknown options %s" % ", ".join(unknown))
        self.root = root or "/"
        self.given = settings if settings is not None else {}
        self.options = settings_input.options_from(
            dict((k, v) for k, v in options.items() if k not in settings_input.TEST_SEAMS))
        self.backup_func = options.get("backup_func") or _backup_copy
        self.seams = {"granularity": options.get("granularity") or kernel.host_granularity(),
                      "now": options.get("now") or (lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))}
        self.proc = runtime.Runtime(self.root)
        self.request = None    # settings_input.Request, once validated
        self.planned = None    # planning.Plan, once planned
        self.outcome = {"mismatches": {}, "backups": {}, "warnings": []}
        self.warnings = []
        self.notes = []

    @classmethod
    def from_params(cls, params):
        """The backend for a module's params (validated against argument_spec())."""
        options = dict((name, params[name]) for name in settings_input.OPTION_DEFAULTS if name in params)
        return cls(params.get("settings"), root=params.get("root") or "/", **options)

    def validate(self):
        """Every input checked before anything is read for writing or touched."""
        self.request = settings_input.validate(self.given, self.options, self.seams["granularity"])
        return self.request.target

    def run(self, check_mode=False):
        """The whole transaction under the host lock; returns changed. Check mode locks only
        when a lock file exists already (it creates nothing) and writes nothing."""
        if self.request is None:
            self.validate()
        lock = files.ExclusiveLock(runtime.host_path(self.root, LOCK_FILE), self.options.lock_timeout,
                                   create=not check_mode)
        try:
            lock.acquire()
        except files.LockTimeout as exc:
            raise SettingsError(str(exc))
        except (IOError, OSError) as exc:
            raise SettingsError("cannot take the lock %s (%s)" % (LOCK_FILE, exc.strerror or exc))
        try:
            self.plan()
            changed = self.needs_change()
            if self.planned.leftovers:
                self.warnings.append("an earlier run of this module was killed midway and left %s; %s" % (
                    ", ".join(self.planned.leftovers), "check mode removes nothing" if check_mode else "removed"))
            if changed:
                self.preflight()
                if not check_mode:
                    self.apply()
            return changed
        finally:
            lock.release()

    def plan(self):
        """Work out skipped keys, runtime before/after and every file's content. Reads only."""
        if self.request is None:
            self.validate()
        planner = planning.Planner(self.root, self.options, self.request, self.seams)
        self.planned = planner.plan()
        self.warnings.extend(planner.warnings)
        self.notes.extend(planner.notes)
        return self

    def needs_change(self):
        if self.planned is None:
            self.plan()
        plan = self.planned
        return (bool(planning.runtime_changes(plan)) or any(f["changed"] for f in plan.files.values())
                or bool(plan.record and plan.record["changed"])
                or bool(planning.removable_directories(plan, self.root)) or bool(plan.leftovers))

    def preflight(self):
        """Refuse up front what would fail midway (a read-only or full /etc, an unwritable key): nothing changes."""
        transaction.preflight(self.planned, self.proc)

    def apply(self):
        """Carry out the plan as one transaction: written, or all put back."""
        if self.planned is None:
            self.plan()
        self.outcome = transaction.Transaction(self.planned, self.root, self.proc, self.backup_func).apply()
        self.warnings.extend(self.outcome["warnings"])

    # -------------------------------------------------------------- report
    def _plan(self):
        return self.planned or planning.empty_plan()

    def _runtime(self):
        """Every key considered at runtime, {before, after}; after is what read back where it differed."""
        out = dict((k, dict(v)) for k, v in self._plan().runtime.items())
        for key, mismatch in self.outcome["mismatches"].items():
            out[key]["after"] = mismatch["actual"]
        return out

    def undo(self):
        """What this run found, for the restore option after a later failure (verify, health gate)."""
        changes = dict((k, v) for k, v in self._runtime().items() if v["before"] != v["after"])
        out = {"runtime": dict((k, v["before"]) for k, v in sorted(changes.items())),
               "files": {}, "directories": list(self._plan().created)}
        for info in planning.changed_files(self._plan()):
            out["files"][info["path"]] = {"content": info["before"], "sha256_after": planning.sha256(info["after"])}
        return out

    def result(self):
        plan, runtime_values = self._plan(), self._runtime()
        files_out = {}
        for info in plan.files.values():
            files_out[info["path"]] = {"changed": info["changed"],
                                       "state": "absent" if info["after"] is None else "present",
                                       "backup": self.outcome["backups"].get(info["path"])}
        out = {
            "runtime": runtime_values,
            # Not "skipped": ansible reads a truthy "skipped" in a result as a skipped task.
            "skipped_keys": dict(plan.skipped),
            "files": files_out,
            "desired": dict((k, runtime_values[k]["after"] if k in runtime_values else v)
                            for k, v in plan.applicable.items() if k not in plan.skipped),
            "environment": dict(plan.environment),
            "notes": list(self.notes),
            "undo": self.undo(),
        }
        if self.options.runtime and plan.environment.get("available"):
            # Read again now, so that a verify step needs no second facts call.
            out["read_back"] = dict((key, value) for key, value in ((key, self.proc.read(key))
                                                                    for key in sorted(plan.target))
                                    if value is not None)
        out["mismatches"] = dict(self.outcome["mismatches"])
        out["leftovers"] = list(plan.leftovers)
        if plan.record is not None:
            out["record"] = {"path": plan.record["path"], "changed": plan.record["changed"],
                             "state": "absent" if plan.record["after"] is None else "present",
                             "content": plan.record.get("data")}
        return out

    def diff(self):
        plan, runtime_values = self._plan(), self._runtime()
        diffs = []
        if runtime_values:
            keys = sorted(runtime_values)
            header = "runtime (/proc/sys/net/netfilter)"
            diffs.append({
                "before_header": header, "after_header": header,
                "before": "".join("%s%s = %s\n" % (kernel.SYSCTL_PREFIX, k, runtime_values[k]["before"]) for k in keys),
                "after": "".join("%s%s = %s\n" % (kernel.SYSCTL_PREFIX, k, runtime_values[k]["after"]) for k in keys),
            })
        for info in [plan.files[name] for name in sorted(plan.files)] + (
                [plan.record] if plan.record is not None and plan.record["changed"] else []):
            diffs.append({"before_header": info["path"] if info["before"] is not None else "%s (absent)" % info["path"],
                          "after_header": info["path"] if info["after"] is not None else "%s (absent)" % info["path"],
                          "before": info["before"] or "", "after": info["after"] or ""})
        for leftover in plan.leftovers:
            diffs.append({"before_header": "%s (left by a killed run)" % leftover,
                          "after_header": "%s (absent)" % leftover, "before": "", "after": ""})
        return diffs
