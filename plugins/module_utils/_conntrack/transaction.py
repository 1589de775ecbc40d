# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The writing half of a settings run: preflight, then apply a finished plan under a journal.

Private to this collection. ``Transaction`` carries out a ``planning.Plan`` and changes
nothing the plan did not name; every step is journaled before it is tried, so any failure
puts the host back as it was found. Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import errors, files, planning, runtime


class ApplyError(errors.ConntrackError):
    """A write failed; ``result`` says what was rolled back."""

    def __init__(self, msg, result):
        super(ApplyError, self).__init__(msg)
        self.result = result


def _nothing_rolled_back():
    return {"rolled_back": [], "rollback_errors": [], "failed_key": None}


def _free_space(directory):
    """(free bytes, free inodes) as root sees them (the reserve included); None when unknown."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None, None
    # f_files == 0: the file system does not count inodes (btrfs, some FUSE).
    return st.f_bfree * st.f_frsize, (st.f_ffree if st.f_files else None)


def _unchanged(full, old):
    """Whether the managed file at ``full`` still holds ``old`` (None: still absent)."""
    try:
        return files.read_regular(full) == old
    except files.UnsafeFile:
        return False


def preflight(plan, proc):
    """Refuse up front what would fail midway (a read-only or full /etc, an unwritable key): nothing changes."""
    problems = []
    needed, inodes = {}, {}
    for info in planning.changed_files(plan):
        directory = os.path.dirname(info["full"])
        while not os.path.isdir(directory):
            directory = os.path.dirname(directory)
        if runtime.read_only_mount(directory):
            problems.append("%s: %s is on a read-only file system" % (info["path"], directory))
        elif not os.access(directory, os.W_OK):
            problems.append("%s: no permission to write in %s" % (info["path"], directory))
        elif info["after"] is not None:
            size = len(info["after"].encode("utf-8"))
            if plan.backup and info["before"] is not None:
                size += len(info["before"].encode("utf-8"))
            needed[directory] = needed.get(directory, 0) + size
            # The temporary file, a backup, and each directory still to be made.
            inodes[directory] = (inodes.get(directory, 0) + 1 + (1 if plan.backup and info["before"] else 0)
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
    for key in sorted(planning.runtime_changes(plan)):
        if not os.access(proc.write_path(key), os.W_OK):
            problems.append("%s: not writable here" % key)
    if problems:
        raise ApplyError("nothing was changed: " + "; ".join(problems), _nothing_rolled_back())


class Transaction(object):
    """Carries out one Plan. ``outcome`` afterwards: mismatches {key: {desired, actual}},
    backups {path: backup path} and warnings, for the result."""

    def __init__(self, plan, root, proc, backup_func):
        self.plan = plan
        self.root = root
        self.proc = proc
        self.backup_func = backup_func
        self.journal = Journal(proc)
        self.outcome = {"mismatches": {}, "backups": {}, "warnings": []}

    def apply(self):
        """Preflight, then the record, runtime (ordered) and files under one journal: any failure
        (a full disk, an immutable file, a failing backup, a value that does not read back when
        restoring) puts back everything this run wrote and raises ApplyError.

        The order is what a run killed midway (SIGKILL: no undo runs) relies on: a record being
        written goes first, so the originals are on disk before anything changes; a record being
        removed (a rollback) goes last, with the directories it created in the same step, so a
        rollback killed midway still finds it and can be run again."""
        plan, journal = self.plan, self.journal
        preflight(plan, self.proc)
        record = plan.record
        removing_record = bool(record and record["changed"] and record["after"] is None)
        step = "writing the tuning record"
        failed_key = None
        try:
            if not removing_record:
                self._write_record()
            changes = planning.runtime_changes(plan)
            befores = dict((k, v["before"]) for k, v in changes.items())
            for key in runtime.write_order(dict((k, v["after"]) for k, v in changes.items()), befores):
                step, failed_key = "writing %s=%d" % (key, changes[key]["after"]), key
                journal.runtime(key, befores[key])
                self.proc.write(key, changes[key]["after"])
                journal.did(key)
            step, failed_key = "reading the values back", None
            self._read_back(changes)
            for info in planning.changed_files(plan):
                if info is record:
                    continue
                step = "writing %s" % info["path"]
                self._apply_file(info)
            # Debris of a killed run, not configuration: removed once everything else is written.
            step = "removing what a killed run left"
            for leftover in plan.leftovers:
                files.remove_leftover(leftover)
            step = "removing empty directories"
            removable = [runtime.host_path(self.root, d) for d in planning.removable_directories(plan, self.root)]
            chain = self._record_chain(removable) if removing_record else []
            for full in removable:
                if full not in chain:
                    os.rmdir(full)
                    journal.removed_directory(full)
            if removing_record:
                step = "removing the tuning record"
                self._remove_record(chain)
        except Exception as exc:  # whatever went wrong, the host goes back to how it was found
            raise self._rolled_back(step, exc, failed_key)
        return self.outcome

    def _rolled_back(self, step, exc, failed_key):
        """Undo the journal; the ApplyError that says what happened."""
        journal = self.journal
        undo_errors = journal.undo()
        reason = getattr(exc, "strerror", None) or str(exc)
        if not journal.done and not undo_errors:
            msg = "nothing was changed: %s failed (%s)" % (step, reason)
        else:
            msg = "%s failed (%s); " % (step, reason)
            msg += ("rolled back %s" % ", ".join(journal.done)) if journal.done else "nothing had been changed"
            if undo_errors:
                msg += "; ROLLBACK FAILED for %s" % "; ".join(undo_errors)
            else:
                msg += ": the host is as it was before this run"
        return ApplyError(msg, {"rolled_back": list(journal.done), "rollback_errors": undo_errors,
                                "failed_key": failed_key})

    def _read_back(self, changes):
        for key in sorted(changes):
            actual = self.proc.read(key)
            if actual != changes[key]["after"]:
                if self.plan.strict_read_back:
                    raise ApplyError("%s reads back %s after writing %d" % (key, actual, changes[key]["after"]), {})
                self.outcome["warnings"].append("%s reads back %s after writing %d"
                                                % (key, actual, changes[key]["after"]))
                self.outcome["mismatches"][key] = {"desired": changes[key]["after"], "actual": actual}

    def _apply_file(self, info):
        full = info["full"]
        old = files.read_regular(full)
        if self.plan.backup and old is not None:
            dest = self.backup_func(full)
            self.journal.created_file(dest)
            self.outcome["backups"][info["path"]] = dest
        self._replace(info["path"], full, old, info["after"])

    def _replace(self, path, full, old, content):
        # Journaled before the attempt, parents first, so that the undo runs innermost first.
        self.journal.directories(files.missing_directories(os.path.dirname(full)) if content is not None else [])
        self.journal.file(full, old)
        if content is None:
            os.unlink(full)
            files.fsync_directory(os.path.dirname(full))
        else:
            files.write_atomic(full, content.encode("utf-8"))
        self.journal.did(path)

    def _record_chain(self, removable):
        """The directories around the record that go with it (innermost first): its own directory
        and each parent up to the last one this run removes."""
        chain = []
        directory = os.path.dirname(self.plan.record["full"])
        while directory in removable:
            chain.append(directory)
            directory = os.path.dirname(directory)
        return chain

    def _remove_record(self, chain):
        """The record, and the directories of ``chain`` with it, in one rename: the outermost is
        moved aside (.<name>.XXXXXXXX) and then deleted, so a kill leaves the record in place or
        only a stage that the next run removes (files.leftovers)."""
        record = self.plan.record
        if not chain:
            self._write_record()
            return
        top = chain[-1]
        self.journal.file(record["full"], files.read_regular(record["full"]))
        stage = files.retire_directory(top)
        self.journal.retired(top, stage)
        self.journal.did(record["path"])
        self.journal.done.extend(chain)
        try:
            files.remove_leftover(stage)
        except (IOError, OSError) as exc:  # the rollback is done; the next run removes the rest
            self.outcome["warnings"].append("could not delete %s (%s): the next run removes it" % (
                stage, exc.strerror or exc))

    def _write_record(self):
        record = self.plan.record
        if not record or not record["changed"]:
            return
        self._replace(record["path"], record["full"], files.read_regular(record["full"]), record["after"])


class Journal(object):
    """What a run changed, in order, and how to undo each step."""

    def __init__(self, proc):
        self.proc = proc
        self.steps = []
        self.done = []

    # A step is journaled before it is tried (undoing an untried step is harmless: it writes
    # what is there), and listed as done once it succeeded.
    def runtime(self, key, before):
        self.steps.append(("runtime", key, before))

    def file(self, full, old):
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
        problems = []
        for kind, what, old in reversed(self.steps):
            try:
                if kind == "runtime":
                    if self.proc.read(what) != old:
                        self.proc.write(what, old)
                elif kind == "file" and _unchanged(what, old):
                    continue
                elif kind == "file" and old is None:
                    os.unlink(what)
                elif kind == "file":
                    files.write_atomic(what, old)
                elif kind == "created" and os.path.lexists(what):
                    os.unlink(what)
                elif kind == "directory" and os.path.isdir(what):
                    os.rmdir(what)
                elif kind == "rmdir":
                    os.mkdir(what, 0o755)
                elif kind == "retired" and os.path.isdir(old) and not os.path.lexists(what):
                    os.rename(old, what)
            except (IOError, OSError) as exc:
                problems.append("%s: %s" % (what, exc.strerror or exc))
        return problems
