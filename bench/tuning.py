"""Run our tune and rollback playbooks against localhost for B1, and leave /etc as it was."""
import json
import os
import stat
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common
from support.ansible import run_module, run_playbook
from support.kernel import read_int

# Where a tune run may write on this machine (drop-ins, the boot-order fix, the local fact).
WATCHED_DIRS = ("/etc/sysctl.d", "/etc/modprobe.d", "/etc/modules-load.d", "/etc/udev/rules.d",
                "/etc/ansible/facts.d", "/etc/ansible")
GLOBALS = ("nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_expect_max")
NETFILTER = "/proc/sys/net/netfilter"
RECORD_FILE = "/etc/ansible/facts.d/netfilter_conntrack.fact"  # the tune role's default tune_record_file


def writable_keys():
    """Every writable nf_conntrack_* sysctl of the initial namespace: a tune run may touch any."""
    keys = []
    for name in sorted(os.listdir(NETFILTER)):
        path = os.path.join(NETFILTER, name)
        if name.startswith("nf_conntrack_") and os.stat(path).st_mode & 0o200:
            keys.append(name)
    return keys


class FileGuard(object):
    """Snapshot the watched /etc directories; on exit, remove new entries and put changed ones back.

    Entries are compared by lstat(): Debian ships symlinks here (99-sysctl.conf ->
    ../sysctl.conf), which must be recorded as links, never followed.
    """

    @staticmethod
    def _entry(path):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(path), None)
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                return ("file", f.read(), st.st_mode & 0o7777)
        return ("other", None, None)

    def _scan(self):
        entries = {}
        for d in WATCHED_DIRS:
            if os.path.isdir(d) and not os.path.islink(d):
                for name in os.listdir(d):
                    path = os.path.join(d, name)
                    entries[path] = self._entry(path)
        return entries

    def __enter__(self):
        self.dirs = {d: os.path.isdir(d) for d in WATCHED_DIRS}
        self.entries = self._scan()
        self.restored = None
        return self

    def changes(self):
        now = self._scan()
        return {"added": sorted(p for p in now if p not in self.entries),
                "changed": sorted(p for p in now if p in self.entries and now[p] != self.entries[p]),
                "removed": sorted(p for p in self.entries if p not in now)}

    def _put_back(self, path):
        kind, data, mode = self.entries[path]
        if kind == "other":
            return
        if os.path.lexists(path) and not os.path.isdir(path):
            os.unlink(path)
        if kind == "link":
            os.symlink(data, path)
        else:
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, mode)

    def __exit__(self, *exc):
        left = self.changes()
        for path in left["added"]:
            if not os.path.isdir(path) or os.path.islink(path):
                os.unlink(path)
        for path in left["changed"] + left["removed"]:
            self._put_back(path)
        for d in sorted(WATCHED_DIRS, reverse=True):  # deepest first
            if not self.dirs[d] and os.path.isdir(d) and not os.listdir(d):
                os.rmdir(d)
        if any(left.values()):
            common.log("put /etc back after the tune run: %s" % left)
        self.restored = left
        return False


def recommendation_inputs(tcp_new_per_second, profile):
    """The recommendation inputs the tune role takes: a profile and the declared rate."""
    return {"profile": profile, "tcp_new_per_second": tcp_new_per_second}


def tune_vars(tcp_new_per_second, profile):
    return {"tune_profile": profile, "tune_rates": {"tcp_new_per_second": tcp_new_per_second}}


def tune_localhost(tcp_new_per_second, profile="nat_gateway", gateway=None):
    """ansible-playbook netfilter.conntrack.tune against localhost; returns what was applied.

    The applied values are read back from the kernel and from the tuning record the
    role writes, never assumed from our inputs.
    """
    before = {k: read_int(k) for k in GLOBALS}
    # What the recommend module says for the same inputs, for the report (memory, driver).
    preview = run_module("recommend", recommendation_inputs(tcp_new_per_second, profile), env=common.ansible_env())
    start = time.monotonic()
    proc, recap = run_playbook("netfilter.conntrack.tune", extra_vars=tune_vars(tcp_new_per_second, profile),
                               env=common.ansible_env())
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError("tune playbook failed (%s):\n%s\n%s" % (proc.returncode, proc.stdout[-4000:],
                                                                   proc.stderr[-2000:]))
    with open(RECORD_FILE) as f:
        record = json.load(f)
    applied = dict(record.get("applied") or {})
    applied_globals = {k: read_int(k) for k in GLOBALS}
    rec = preview.get("recommendation") or {}
    out = {"declared_tcp_new_per_second": tcp_new_per_second, "profile": profile,
           "playbook_seconds": round(seconds, 2), "recap": recap, "before": before,
           "applied": applied, "applied_globals": applied_globals,
           "runtime_matches_record": all(applied_globals[k] == applied[k] for k in GLOBALS if k in applied),
           "recommendation_preview": {"entries": rec.get("entries"), "memory": rec.get("memory"),
                                      "verdict": rec.get("verdict"), "settings": rec.get("settings")}}
    if gateway is not None:
        out["gateway_namespace_keys"] = apply_namespace_keys(gateway, applied)
    return out


def apply_namespace_keys(ns, settings):
    """Per-namespace keys (timeouts) of the recommendation, into the gateway's own namespace.

    The tune run against localhost sets them in the initial namespace; the lab's DNAT
    happens in the gateway namespace, which has its own copies. The values come from
    the same recommendation, not from this file.
    """
    written = {}
    for key, value in sorted(settings.items()):
        if key in GLOBALS or not key.startswith("nf_conntrack_"):
            continue
        try:
            ns.sysctl(key, value)
            written[key] = value
        except RuntimeError:
            pass
    return written


def rollback_localhost():
    """netfilter.conntrack.rollback, which restores the recorded values and removes our drop-ins."""
    proc, recap = run_playbook("netfilter.conntrack.rollback", env=common.ansible_env())
    return {"rollback_exit_code": proc.returncode, "recap": recap,
            "rollback_output_tail": proc.stdout[-1500:] if proc.returncode else None}
