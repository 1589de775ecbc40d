# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's files, written on the controller by the cache_audit action.

Everything is rendered and every destination checked before the first byte is written, so a
refusal (a symlink, a FIFO, a directory where a report belongs) leaves the directory as it was.
Each file is replaced in one rename, and a file whose content is unchanged is not touched."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import stat
import tempfile

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import files
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit_render

# The fleet-wide formats and their file names; prometheus is one file per host in prometheus/.
FILES = (("json", "report.json"), ("csv", "report.csv"), ("markdown", "report.md"), ("html", "report.html"))
PROMETHEUS_DIR = "prometheus"


class ReportFileError(Exception):
    pass


# Far above the reports of ten thousand hosts (about 100 MB of JSON): an old file bigger than
# this is not one of ours.
MAX_REPORT_BYTES = 4 << 30


def _existing(path):
    """The bytes at path, None when nothing is there; refuses what is not a plain file (the
    managed-file reader: no link followed, no FIFO blocked on)."""
    try:
        return files.read_regular(path, limit=MAX_REPORT_BYTES)
    except files.UnsafeFile as exc:
        raise ReportFileError("%s is refused: %s; the audit replaces only plain files it can read, so nothing was "
                              "written" % (path, exc))


def _directory(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise ReportFileError("%s is not a directory (it is %s); nothing was written" % (path, files.kind_of(st.st_mode)))
    return True


def _digest(data):
    return "sha256:%s %d bytes" % (hashlib.sha256(data).hexdigest()[:16], len(data))


def plan(report, directory, formats, templates=None, extra=None):
    """[(path, new bytes, old bytes or None)] for every file of the report, nothing written.
    ``extra`` is {file name: text} for more files in ``directory`` (the query result)."""
    templates = templates or {}
    directory = os.path.abspath(directory)
    _directory(directory)
    wanted = [(os.path.join(directory, name), _audit_render.render(report, fmt, template=templates.get(fmt) or None))
              for fmt, name in FILES if fmt in formats]
    wanted += [(os.path.join(directory, name), text) for name, text in sorted((extra or {}).items())]
    if "prometheus" in formats:
        prom = os.path.join(directory, PROMETHEUS_DIR)
        _directory(prom)
        wanted += [(os.path.join(prom, "%s.prom" % h["host"]), _audit_render.render(report, "prometheus", host=h["host"]))
                   for h in report["hosts"]]
    return [(path, text.encode("utf-8"), _existing(path)) for path, text in wanted]


def _stage(path, data, mode=0o644):
    """A temporary file beside path holding data, synced; its name."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def write(planned, check_mode=False):
    """Writes the planned files that differ; returns (changed paths, diff list).

    Every new file is staged beside its destination first: a full disk or a read-only file
    system fails while staging, the staged files are removed, and no report file has changed.
    Only then is each renamed over its destination."""
    changed = [(path, new, old) for path, new, old in planned if new != old]
    diff = [{"before_header": path, "after_header": path, "before": "" if old is None else _digest(old) + "\n",
             "after": _digest(new) + "\n"} for path, new, old in changed]
    paths = [path for path, _new, _old in changed]
    if check_mode or not changed:
        return paths, diff
    made = []
    for directory in sorted(set(os.path.dirname(p) for p in paths)):
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
            made.append(directory)
    staged = []
    try:
        for path, new, _old in changed:
            staged.append((_stage(path, new), path))
    except BaseException:
        for tmp, _path in staged:
            _unlink(tmp)
        for directory in reversed(made):
            try:
                os.rmdir(directory)
            except OSError:
                pass
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    return paths, diff
