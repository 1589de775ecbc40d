"""Snapshots of what a run may change on a host, and the exact change between two of them.

A snapshot holds every value under /proc/sys/net/netfilter (but the live count), a few other
sysctls a bad key could reach, and the five directories our modules write to (names, file
type, mode and sha256, without following symlinks; a missing directory stays ``None``), plus
any extra paths a test names. Nothing is ever opened unless it is a regular file, so a FIFO or
a device in a watched directory cannot hang the snapshot.

Run as a script (``python hoststate.py [EXTRA_PATH...]``) it prints a snapshot as JSON: the
adversarial tests take snapshots inside the private mount namespace a try runs in.
"""
import contextlib
import hashlib
import json
import os
import shutil
import stat
import sys

NETFILTER = "/proc/sys/net/netfilter"
# Reachable through a path trick in a key name (../../ipv4/ip_forward); watched too.
OTHER_SYSCTLS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")
VOLATILE = ("nf_conntrack_count",)
WATCHED_DIRS = ("/etc/sysctl.d", "/etc/modprobe.d", "/etc/modules-load.d", "/etc/udev/rules.d",
                "/etc/ansible/facts.d")
# Distribution files a path trick could aim at: never changed by any try.
DISTRIBUTION_FILES = ("/etc/sysctl.conf", "/etc/resolv.conf", "/etc/hosts", "/etc/passwd", "/etc/modules",
                      "/etc/udev/udev.conf", "/etc/fstab")
MAX_HASHED = 64 << 20


def _kind(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "chardev"),
                       (stat.S_ISBLK, "blockdev")):
        if test(mode):
            return name
    return "other"


def entry(path):
    """(type, mode, sha256 | link target | None) of one path, or None when it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    kind = _kind(st.st_mode)
    detail = None
    if kind == "symlink":
        detail = os.readlink(path)
    elif kind == "file":
        digest = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            left = MAX_HASHED
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        detail = "%s:%d" % (digest.hexdigest(), st.st_size)
    return [kind, "%04o" % stat.S_IMODE(st.st_mode), detail]


def tree(root):
    """{relative name: entry} of everything below root (not following symlinks), or None if missing."""
    top = entry(root)
    if top is None:
        return None
    if top[0] != "dir":
        return {".": top}
    out = {".": top}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = entry(full)
    return out


def sysctls():
    out = {}
    for dirpath, _dirs, files in os.walk(NETFILTER):
        for name in files:
            if name in VOLATILE:
                continue
            path = os.path.join(dirpath, name)
            try:
                with open(path) as f:
                    out[path] = f.read().strip()
            except OSError:
                continue
    for path in OTHER_SYSCTLS:
        try:
            with open(path) as f:
                out[path] = f.read().strip()
        except OSError:
            pass
    return out


def snapshot(extra_paths=()):
    paths = list(WATCHED_DIRS) + list(DISTRIBUTION_FILES) + [p for p in extra_paths if p not in WATCHED_DIRS]
    return {"sysctls": sysctls(), "paths": dict((p, tree(p)) for p in paths)}


def delta(before, after):
    """The exact change: {"sysctls": {path: [before, after]}, "files": {path: [before entry, after entry]}}."""
    out = {"sysctls": {}, "files": {}}
    for key in sorted(set(before["sysctls"]) | set(after["sysctls"])):
        b, a = before["sysctls"].get(key), after["sysctls"].get(key)
        if b != a:
            out["sysctls"][key] = [b, a]
    for root in sorted(set(before["paths"]) | set(after["paths"])):
        b, a = before["paths"].get(root) or {}, after["paths"].get(root) or {}
        for name in sorted(set(b) | set(a)):
            if b.get(name) != a.get(name):
                path = root if name == "." else os.path.join(root, name)
                out["files"][path] = [b.get(name), a.get(name)]
    return out


def summary(change):
    """{path: created | removed | modified | retyped, sysctl path: new value}: what a test states it expects."""
    out = {}
    for path, (b, a) in change["files"].items():
        if b is None:
            out[path] = "created"
        elif a is None:
            out[path] = "removed"
        elif b[0] != a[0]:
            out[path] = "retyped"
        else:
            out[path] = "modified"
    for path, (_b, a) in change["sysctls"].items():
        out[os.path.basename(path) if path.startswith(NETFILTER) else path] = a
    return out


def check_unchanged(before, extra_paths=(), sysctls_too=True):
    """The real host (this mount namespace) must be as in ``before``; entries that appeared are removed.

    Tries run in private mount namespaces, so their writes never reach the real /etc. This check
    proves it, and cleans up what a run that escaped its namespace left behind in the watched
    places (only entries that did not exist before: never someone else's file).
    """
    after = snapshot(extra_paths)
    change = delta(before, after)
    if change["files"]:
        for path, (b, _a) in sorted(change["files"].items(), reverse=True):
            if b is None and os.path.lexists(path):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)
    assert not change["files"], "the real host changed outside the try's namespace: %s" % change["files"]
    if sysctls_too:
        # The caller holds saved_sysctls(), which puts the values back after this assertion.
        assert not change["sysctls"], "host sysctls changed outside the try's namespace: %s" % change["sysctls"]


@contextlib.contextmanager
def unchanged_host(extra_paths=(), sysctls_too=True):
    """check_unchanged() around a block."""
    before = snapshot(extra_paths)
    yield before
    check_unchanged(before, extra_paths, sysctls_too)


if __name__ == "__main__":
    json.dump(snapshot(sys.argv[1:]), sys.stdout)
