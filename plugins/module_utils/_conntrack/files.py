# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Careful file access for the files this collection manages.

Private to this collection. Every managed file (a drop-in, the tuning record) is read
without following a link and without blocking on a FIFO, and only when it is a regular
file of sane size; writes are atomic; a lock serialises read-modify-write across runs.
Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
import time

# Far above any record or drop-in we write (a few KiB); below what could hurt a host.
MAX_MANAGED_BYTES = 1 << 20

# Set by a module (set_labeller) to give each new file the security context its final path
# should have, before it becomes visible. This backend imports nothing from Ansible, so the
# SELinux knowledge (AnsibleModule.selinux_default_context) comes in from the module.
_labeller = None


def set_labeller(labeller):
    """labeller(temp_path, final_path) or None; raises OSError when it cannot label."""
    global _labeller
    _labeller = labeller


_KINDS = ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class UnsafeFile(Exception):
    """A managed path that must not be read or replaced; the message says why."""


def kind_of(mode):
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def inspect(full):
    """lstat() of a managed path: None when absent; UnsafeFile unless a regular file."""
    try:
        st = os.lstat(full)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise UnsafeFile("cannot inspect it (%s)" % (exc.strerror or exc))
    if not stat.S_ISREG(st.st_mode):
        what = kind_of(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeFile("it is a symlink (to %s); refusing to follow it" % _link_target(full))
        raise UnsafeFile("it is %s, not a regular file" % what)
    return st


def _link_target(full):
    try:
        return os.readlink(full)
    except OSError:
        return "?"


def read_regular(full, limit=MAX_MANAGED_BYTES):
    """Bytes of a regular file, or None when absent. Never follows a link, never blocks on a
    FIFO, never reads past ``limit``: anything else raises UnsafeFile."""
    if inspect(full) is None:
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(full, flags)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        if exc.errno == errno.ELOOP:
            raise UnsafeFile("it is a symlink; refusing to follow it")
        raise UnsafeFile("cannot read it (%s)" % (exc.strerror or exc))
    try:
        # The type again on the open file: the path may have been swapped since lstat().
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile("it is %s, not a regular file" % kind_of(st.st_mode))
        if st.st_size > limit:
            raise UnsafeFile("it is %d bytes, more than the %d a file of ours can be" % (st.st_size, limit))
        chunks, size = [], 0
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError as exc:
                raise UnsafeFile("cannot read it (%s)" % (exc.strerror or exc))
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise UnsafeFile("it grew past %d bytes while being read" % limit)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def missing_directories(directory):
    """The directories that write_atomic() would create, outermost first."""
    created = []
    while directory and directory != os.path.dirname(directory) and not os.path.isdir(directory):
        created.append(directory)
        directory = os.path.dirname(directory)
    return list(reversed(created))


def write_atomic(path, data, mode=0o644):
    """Temp file in the same directory, fsync, rename: readers see the old or the new file,
    never half. Returns the directories it created (outermost first), for an undo.

    Missing directories are built aside with the file in them and renamed into place at once
    (_write_staged), so that a run killed midway never leaves a directory that no record names.

    Not AnsibleModule.atomic_move: that one may fall back to a non-atomic copy, does not fsync
    the file or the directory, and would need a module object in this backend. Its SELinux part
    (the default context of the final path) is reused through set_labeller()."""
    directory = os.path.dirname(path)
    created = missing_directories(directory)
    if created:
        _write_staged(path, data, mode, created)
        return created
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
        _fill(fd, tmp, path, data, mode)
        os.rename(tmp, path)
        tmp = None
        fsync_directory(directory)
    except BaseException:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return created


def _fill(fd, tmp, path, data, mode):
    """Write, mode, owner, fsync and label a new file that is not visible yet."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fchmod(f.fileno(), mode)
        if os.geteuid() == 0:
            os.fchown(f.fileno(), 0, 0)
        os.fsync(f.fileno())
    if _labeller is not None:
        _labeller(tmp, path)


def _write_staged(path, data, mode, created):
    """``created`` (outermost first) and the file, built in ``.<top>.XXXXXXXX`` beside the outermost
    missing directory and renamed into place in one step. Killed before that, the host shows only
    the stage, which the next run removes (leftovers())."""
    top = created[0]
    parent = os.path.dirname(top)
    stage = tempfile.mkdtemp(prefix=".%s." % os.path.basename(top), dir=parent)
    try:
        os.chmod(stage, 0o755)
        inner = [stage] + [os.path.join(stage, os.path.relpath(each, top)) for each in created[1:]]
        for each in inner[1:]:
            os.mkdir(each, 0o755)
        staged = os.path.join(inner[-1], os.path.basename(path))
        _fill(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), staged, path, data, mode)
        for each, final in reversed(list(zip(inner, created))):
            if _labeller is not None:
                _labeller(each, final)
            fsync_directory(each)
        if os.path.lexists(top):
            raise OSError(errno.EEXIST, "%s appeared while this run was writing it" % top)
        os.rename(stage, top)
        stage = None
        fsync_directory(parent)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


# What tempfile adds to a prefix (mkstemp and mkdtemp alike), and the stamp of our backups
# (backup_path() writes it, leftovers() recognises a killed backup's temporary file by it).
_TEMP_TAIL = r"\.[a-z0-9_]{8}"
_BACKUP_STAMP = r"\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~"


def backup_path(full):
    """Where a backup of ``full`` goes: NAME.PID.YYYY-mm-dd@HH:MM:SS~ beside it."""
    return "%s.%d.%s~" % (full, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S"))


def leftovers(path):
    """What a run killed while writing ``path`` left behind, for the next run to remove: its
    temporary file (or a backup's) beside it, and a directory stage (_write_staged) beside the
    outermost missing directory that holds nothing but that chain and the file. Only regular
    files and directories of exactly our names; never a symlink or anything else."""
    directory, name = os.path.split(path)
    found = _named(directory, re.compile(r"^\.%s(%s)?%s$" % (re.escape(name), _BACKUP_STAMP, _TEMP_TAIL)),
                   stat.S_ISREG)
    created = missing_directories(directory)
    if created:
        top = created[0]
        allowed = set(os.path.relpath(each, top) for each in created[1:])
        allowed.add(os.path.relpath(path, top))
        stage_name = re.compile(r"^\.%s%s$" % (re.escape(os.path.basename(top)), _TEMP_TAIL))
        for stage in _named(os.path.dirname(top), stage_name, stat.S_ISDIR):
            if _holds_only(stage, allowed):
                found.append(stage)
    return found


def _named(directory, pattern, kind):
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for each in names:
        full = os.path.join(directory, each)
        try:
            if pattern.match(each) and kind(os.lstat(full).st_mode):
                out.append(full)
        except OSError:
            continue
    return out


def _holds_only(stage, allowed):
    for dirpath, dirs, names in os.walk(stage):
        for each in dirs + names:
            full = os.path.join(dirpath, each)
            if os.path.islink(full) or os.path.relpath(full, stage) not in allowed:
                return False
            if each in names and not stat.S_ISREG(os.lstat(full).st_mode):
                return False
    return True


def retire_directory(directory):
    """Move ``directory`` (and all it holds) aside in one rename, to ``.<name>.XXXXXXXX`` beside
    it; returns that path. What was in it disappears at once; remove_leftover() deletes it."""
    parent = os.path.dirname(directory)
    stage = tempfile.mkdtemp(prefix=".%s." % os.path.basename(directory), dir=parent)
    try:
        os.rename(directory, stage)  # onto the empty stage: atomic on Linux
    except BaseException:
        os.rmdir(stage)
        raise
    fsync_directory(parent)
    return stage


def remove_leftover(path):
    """Remove one entry that leftovers() found (a file, or a stage directory and what it holds)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    fsync_directory(os.path.dirname(path))


def fsync_directory(directory):
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def copy_regular(full, dest):
    """A backup copy with the original's mode, written atomically: a full disk leaves no half copy."""
    data = read_regular(full)
    st = os.lstat(full)
    write_atomic(dest, data, stat.S_IMODE(st.st_mode))
    return dest


class ExclusiveLock(object):
    """flock() on a file under /run/lock, so that two runs on one host take turns."""

    def __init__(self, path, timeout_seconds=60.0, create=True, clock=time.monotonic, sleep=time.sleep):
        self.path = path
        self.timeout_seconds = timeout_seconds
        self.create = create
        self.clock = clock
        self.sleep = sleep
        self.fd = None

    def acquire(self):
        """True when held; False when the lock file is absent and create is off (check mode)."""
        flags = os.O_RDWR | (os.O_CREAT if self.create else 0) | getattr(os, "O_NOFOLLOW", 0)
        if self.create:
            # Two runs may make it at once: it is outside the lock it is for.
            os.makedirs(os.path.dirname(self.path), 0o755, exist_ok=True)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOENT and not self.create:
                return False
            raise
        deadline = self.clock() + self.timeout_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if self.clock() >= deadline:
                os.close(fd)
                raise LockTimeout(self.path, self.timeout_seconds)
            self.sleep(0.2)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False


class LockTimeout(Exception):
    def __init__(self, path, seconds):
        super(LockTimeout, self).__init__(
            "another run holds %s (waited %g s; raise lock_timeout to wait longer)" % (path, seconds))
