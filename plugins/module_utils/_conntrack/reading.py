# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read everything the kernel says about connection tracking into one dict.

Private to this collection: not an API. The dict's shape is the contract in
CONTRIBUTING.md ("The facts dict"). Every path is read below ``root`` so that
unit tests can point it at a recorded tree. Nothing here raises on an
unreadable file: the fact becomes null and a warning says why.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fnmatch
import os
import re
import shutil
import stat as stat_module
import subprocess
import time
from collections import namedtuple

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import files, kernel

SCHEMA_VERSION = 1

NETFILTER = "/proc/sys/net/netfilter"
# Where the tune role keeps its record (an Ansible local fact).
RECORD_FILE = "/etc/ansible/facts.d/netfilter_conntrack.fact"
STAT_FILE = "/proc/net/stat/nf_conntrack"
TABLE_FILE = "/proc/net/nf_conntrack"
MODULE_DIR = "/sys/module/nf_conntrack"

# init_net's fixed inode since Linux 5.x (PROC_NET_INIT_INO); older kernels allocate it.
PROC_NET_INIT_INO = 0xEFFFFFF9

# The proc header names some columns differently from conntrack-tools (and from
# the kernel's own struct fields); totals carry both names.
STAT_ALIASES = {"clashres": "clash_resolve", "chainlength": "chaintoolong", "icmp_error": "error"}
RATE_KEYS = ("count", "drop", "insert_failed", "early_drop", "chaintoolong")

# sysctl --system (procps-ng) reads these directories; a file name in an earlier
# directory masks the same name in later ones; all files apply in name order;
# /etc/sysctl.conf comes last. systemd-sysctl uses the same directories and order
# but does not read /etc/sysctl.conf itself (Debian links it as 99-sysctl.conf).
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d")
MODULES_LOAD_DIRS = ("/etc/modules-load.d", "/run/modules-load.d", "/usr/local/lib/modules-load.d",
                     "/usr/lib/modules-load.d", "/lib/modules-load.d")
MODULES_FILE = "/etc/modules"  # Debian's list, read by systemd-modules-load too
CONNTRACK_MODULES = ("nf_conntrack", "nf_conntrack_ipv4", "nf_conntrack_ipv6")


def default_run_command(argv):
    """Run argv (a list, never a shell) and return (rc, stdout, stderr) as text."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ, LC_ALL="C"))
        out, err = proc.communicate()
    except OSError as exc:
        return 127, "", str(exc)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _no_commands(argv):
    return 127, "", "commands are not run against a recorded tree"


# The reader's clock: a seam, so that a test can step through a sample without sleeping.
Clock = namedtuple("Clock", ["monotonic", "sleep"])
SYSTEM_CLOCK = Clock(time.monotonic, time.sleep)


class Reader(object):
    """File access below ``root``, collecting warnings instead of raising. It carries the seams
    that unit tests replace: the root of the paths, the command runner (``run_command``, ``which``,
    ``popen``) and the clock."""

    def __init__(self, root="/", run_command=None, which=None, popen=None, clock=SYSTEM_CLOCK):
        self.root = root or "/"
        self.live = os.path.abspath(self.root) == "/"
        if run_command is None:
            run_command = default_run_command if self.live else _no_commands
        self.run_command = run_command
        if which is None:
            which = shutil.which if self.live else (lambda name: None)
        self.which = which
        self.popen = popen or subprocess.Popen
        self.clock = clock
        self.warnings = []

    def path(self, path):
        if self.live:
            return path
        return os.path.join(self.root, path.lstrip("/"))

    def warn(self, message):
        if message not in self.warnings:
            self.warnings.append(message)

    def exists(self, path):
        return os.path.exists(self.path(path))

    def read(self, path, missing_ok=True):
        """File text, or None. A missing file is silent when missing_ok; any other error warns."""
        try:
            with open(self.path(path), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (IOError, OSError) as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR) and missing_ok:
                return None
            self.warn("cannot read %s: %s" % (path, exc.strerror or exc))
            return None

    def read_config(self, path):
        """A configuration file's text (links followed, as the boot follows them), or None. A FIFO,
        device or huge file there is reported and skipped: reading it could hang or exhaust memory."""
        full = self.path(path)
        try:
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                self.warn("cannot read %s: %s" % (path, exc.strerror or exc))
            return None
        try:
            st = os.fstat(fd)
            if not stat_module.S_ISREG(st.st_mode) or st.st_size > files.MAX_MANAGED_BYTES:
                self.warn("%s is %s of %d bytes: not read" % (path, files.kind_of(st.st_mode), st.st_size))
                return None
            with os.fdopen(os.dup(fd), "rb") as f:
                return f.read(files.MAX_MANAGED_BYTES).decode("utf-8", "replace")
        except (IOError, OSError) as exc:
            self.warn("cannot read %s: %s" % (path, exc.strerror or exc))
            return None
        finally:
            os.close(fd)

    def read_int(self, path, missing_ok=True):
        text = self.read(path, missing_ok)
        if text is None:
            return None
        try:
            return int(text.split()[0])
        except (ValueError, IndexError):
            self.warn("%s does not hold an integer: %r" % (path, text.strip()[:40]))
            return None

    def listdir(self, path):
        try:
            return sorted(os.listdir(self.path(path)))
        except (IOError, OSError) as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                self.warn("cannot list %s: %s" % (path, exc.strerror or exc))
            return []

    def command(self, argv):
        """Run a command if its binary exists; (rc, out, err) or None when absent."""
        binary = self.which(argv[0])
        if binary is None:
            return None
        try:
            # The resolved path: a module's PATH often lacks /usr/sbin, where nft and conntrack live.
            return self.run_command([binary] + list(argv[1:]))
        except Exception as exc:  # a runner must never take the facts down
            return 1, "", str(exc)


def _typed(text):
    text = text.strip()
    if re.match(r"^-?\d+$", text):
        return int(text)
    if text in ("Y", "N"):
        return text == "Y"
    return text


# ---------------------------------------------------------------- availability

def read_module_type(r, release):
    if r.exists(MODULE_DIR + "/initstate"):
        return "loadable"  # initstate only exists for loadable modules
    modules = r.read("/proc/modules")
    if modules is not None and re.search(r"^nf_conntrack ", modules, re.M):
        return "loadable"
    if r.exists(MODULE_DIR) or r.exists(NETFILTER + "/nf_conntrack_max"):
        return "builtin"
    if release:
        builtin = r.read("/lib/modules/%s/modules.builtin" % release)
        if builtin is not None and "/nf_conntrack.ko" in builtin:
            return "builtin"
        dep = r.read("/lib/modules/%s/modules.dep" % release)
        if dep is not None:
            return "loadable" if re.search(r"/nf_conntrack\.ko[^:]*:", dep) else "absent"
    return "absent" if modules is not None else "unknown"


def _ns_inode(r, path):
    try:
        link = os.readlink(r.path(path))
    except (IOError, OSError):
        return None
    m = re.match(r"^net:\[(\d+)\]$", link)
    return int(m.group(1)) if m else None


def read_namespace(r):
    """(initial_netns, host_settable)."""
    max_path = r.path(NETFILTER + "/nf_conntrack_max")
    try:
        mode = os.stat(max_path).st_mode
    except (IOError, OSError):
        mode = None
    read_only_mode = mode is not None and not (mode & (stat_module.S_IWUSR | stat_module.S_IWGRP | stat_module.S_IWOTH))
    own = _ns_inode(r, "/proc/self/ns/net")
    init = _ns_inode(r, "/proc/1/ns/net")
    if read_only_mode:
        initial = False  # the kernel makes the global keys 0444 outside init_net
    elif own is not None and own == PROC_NET_INIT_INO:
        initial = True
    elif own is not None and init is not None:
        initial = own == init
    else:
        initial = None
    settable = None
    if mode is not None:
        # Outside init_net the kernel makes the global keys 0444.
        settable = not read_only_mode and all(
            os.access(r.path(NETFILTER + "/" + key), os.W_OK)
            for key in kernel.GLOBAL_KEYS if os.path.exists(r.path(NETFILTER + "/" + key)))
        if initial is False:
            settable = False
    return initial, settable


# -------------------------------------------------------------------- settings

def read_settings(r):
    settings = {}
    for name in r.listdir(NETFILTER):
        if not name.startswith("nf_conntrack_"):
            continue
        text = r.read(NETFILTER + "/" + name, missing_ok=False)
        if text is not None:
            settings[name] = _typed(text)
    return settings


def read_module_parameters(r):
    params = {}
    base = MODULE_DIR + "/parameters"
    for name in r.listdir(base):
        text = r.read(base + "/" + name, missing_ok=False)
        if text is not None:
            params[name] = _typed(text)
    return params


def _ratio(a, b):
    if a is None or not b:
        return None
    return a / b


def build_usage(settings):
    count = settings.get("nf_conntrack_count")
    maximum = settings.get("nf_conntrack_max")
    buckets = settings.get("nf_conntrack_buckets")
    ratio = _ratio(count, maximum)  # max 0 means unlimited
    return {
        "count": count,
        "max": maximum,
        "buckets": buckets,
        "expect_max": settings.get("nf_conntrack_expect_max"),
        "usage_ratio": ratio,
        "usage_percent": None if ratio is None else round(ratio * 100, 2),
        "chain_depth_avg": _ratio(count, buckets),
        "chain_depth_at_max": _ratio(maximum, buckets) if maximum else None,
    }


# ----------------------------------------------------------------------- stats

def parse_stat_file(text):
    """/proc/net/stat/nf_conntrack → (columns, per-cpu rows of ints)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty")
    columns = lines[0].split()
    rows = []
    for line in lines[1:]:
        values = line.split()
        if len(values) != len(columns):
            raise ValueError("row has %d values for %d columns" % (len(values), len(columns)))
        rows.append([int(v, 16) for v in values])
    return columns, rows


def _totals(columns, rows):
    totals = {}
    for i, name in enumerate(columns):
        if name == "entries":
            # The same (per-namespace) count on every CPU line: not a per-CPU counter.
            totals[name] = rows[0][i] if rows else 0
        else:
            totals[name] = sum(row[i] for row in rows)
    for name, alias in STAT_ALIASES.items():
        if name in totals and alias not in totals:
            totals[alias] = totals[name]
    return totals


def parse_conntrack_s(text):
    """``conntrack -S`` → (columns, per-cpu rows)."""
    columns, rows = [], []
    for line in text.splitlines():
        pairs = [w.split("=", 1) for w in line.split() if "=" in w]
        pairs = [(k, v) for k, v in pairs if k != "cpu"]
        if not pairs:
            continue
        if not columns:
            columns = [k for k, v in pairs]
        values = dict(pairs)
        rows.append([int(values.get(k, 0)) for k in columns])
    if not columns:
        raise ValueError("no counters")
    return columns, rows


def read_stats_raw(r):
    """(source, columns, rows) or (none, [], [])."""
    text = r.read(STAT_FILE)
    if text is not None:
        try:
            columns, rows = parse_stat_file(text)
            return "proc", columns, rows
        except ValueError as exc:
            r.warn("cannot parse %s: %s" % (STAT_FILE, exc))
    # conntrack -S talks ctnetlink, which the kernel loads on demand: facts stay read-only.
    res = r.command(["conntrack", "-S"]) if module_present(r, "nf_conntrack_netlink") else None
    if res is not None:
        rc, out, err = res
        if rc == 0:
            try:
                columns, rows = parse_conntrack_s(out)
                return "conntrack", columns, rows
            except ValueError as exc:
                r.warn("cannot parse conntrack -S output: %s" % exc)
        else:
            r.warn("conntrack -S failed: %s" % (err.strip() or rc))
    elif text is None and not module_present(r, "nf_conntrack_netlink"):
        r.warn("no conntrack statistics: %s is missing, and conntrack -S would load nf_conntrack_netlink" % STAT_FILE)
    elif text is None:
        r.warn("no conntrack statistics: %s is missing and conntrack-tools is not installed" % STAT_FILE)
    return "none", [], []


def build_stats(source, columns, rows):
    return {
        "source": source,
        "cpus": len(rows) if rows else None,
        "columns": list(columns),
        "totals": _totals(columns, rows),
        "sample": None,
    }


def build_sample(seconds, before, after, count_before, count_after):
    """Deltas between two raw stat readings. Per-CPU counters are 32 bits: deltas wrap."""
    columns, rows_a = before[1], before[2]
    columns_b, rows_b = after[1], after[2]
    deltas = {}
    if columns == columns_b and len(rows_a) == len(rows_b):
        for i, name in enumerate(columns):
            if name == "entries":
                continue
            deltas[name] = sum((b[i] - a[i]) % (1 << 32) for a, b in zip(rows_a, rows_b))
        for name, alias in STAT_ALIASES.items():
            if name in deltas and alias not in deltas:
                deltas[alias] = deltas[name]
    if count_before is not None and count_after is not None:
        deltas["count"] = count_after - count_before
    rates = {}
    for key in RATE_KEYS:
        rates[key] = round(deltas[key] / seconds, 3) if key in deltas and seconds > 0 else None
    return {"seconds": seconds, "deltas": deltas, "rates_per_second": rates}


# ----------------------------------------------------------------- environment

def kube_proxy_running(r):
    # comm only (one small read per process); old clusters ran it as "hyperkube proxy".
    for pid in r.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(r.path("/proc/%s/comm" % pid), "rb") as f:
                comm = f.read().strip()
            if comm == b"kube-proxy":
                return True
            if comm == b"hyperkube":
                with open(r.path("/proc/%s/cmdline" % pid), "rb") as f:
                    argv = f.read().split(b"\0")
                if len(argv) > 1 and argv[1] in (b"kube-proxy", b"proxy"):
                    return True
        except (IOError, OSError):
            continue  # processes come and go
    return False


def module_present(r, name):
    """Whether running a tool that needs kernel module ``name`` loads nothing new: the module is
    loaded or built in, or this kernel cannot load modules at all. A read-only fact must not load one."""
    if r.exists("/sys/module/%s" % name):
        return True
    modules = r.read("/proc/modules")
    if modules is None:
        return True  # no loadable module support: nothing can be loaded
    if re.search(r"^%s " % re.escape(name), modules, re.M):
        return True
    release = (r.read("/proc/sys/kernel/osrelease") or "").strip()
    builtin = r.read("/lib/modules/%s/modules.builtin" % release) if release else None
    return builtin is not None and re.search(r"/%s\.ko\b" % re.escape(name), builtin) is not None


def _conf_files(r, dirs, pattern="*.conf"):
    """Files by basename across dirs, earlier dirs masking later ones, in name order."""
    chosen = {}
    for d in dirs:
        for name in r.listdir(d):
            if fnmatch.fnmatch(name, pattern) and name not in chosen:
                chosen[name] = d + "/" + name
    return [chosen[name] for name in sorted(chosen)]


def sysctl_files(r):
    files = _conf_files(r, SYSCTL_DIRS)
    if r.exists(SYSCTL_CONF):
        files.append(SYSCTL_CONF)
    return files


def read_persistent(r, exclude=()):
    """What the boot files set; ``exclude``: paths to leave out (ours, to see what the boot
    would give without them)."""
    conf_files = [f for f in sysctl_files(r) if f not in exclude]
    sysctl = {}
    for path in conf_files:
        text = r.read_config(path)
        for key, value in kernel.parse_sysctl_file(text).items():
            name = kernel.conntrack_name(key)
            if name:
                sysctl[name] = {"value": _typed(value), "file": path}
    modprobe = {}
    for path in _conf_files(r, MODPROBE_DIRS):
        if path in exclude:
            continue
        text = r.read_config(path)
        for line in (text or "").splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "options" and words[1] in ("nf_conntrack", "nf-conntrack"):
                for opt in words[2:]:
                    if "=" in opt:
                        k, v = opt.split("=", 1)
                        modprobe[k] = {"value": _typed(v), "file": path}
    cmdline = r.read("/proc/cmdline") or ""
    for word in cmdline.split():
        # nf_conntrack.hashsize= on the kernel command line: the only way for a built-in module.
        if word.startswith("nf_conntrack.") and "=" in word:
            k, v = word[len("nf_conntrack."):].split("=", 1)
            modprobe[k] = {"value": _typed(v), "file": "/proc/cmdline"}
    modules_load = []
    for path in _conf_files(r, MODULES_LOAD_DIRS) + ([MODULES_FILE] if r.exists(MODULES_FILE) else []):
        text = r.read_config(path) or ""
        names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        if any(n in CONNTRACK_MODULES for n in names):
            modules_load.append(path)
    return {"sysctl_files": conf_files, "sysctl": sysctl, "modprobe": modprobe, "modules_load": modules_load}


def _round_buckets(value, page_size):
    return kernel.round_buckets(value, kernel.bucket_granularity(page_size, kernel.HOST_BUCKET_BYTES))


def build_drift(settings, persistent, module_type, page_size):
    drift = {}
    for key, entry in sorted(persistent["sysctl"].items()):
        runtime = settings.get(key)
        persisted = entry["value"]
        if runtime is None or not isinstance(persisted, int):
            continue
        expected = persisted
        if key == "nf_conntrack_buckets" and persisted > 0:
            expected = _round_buckets(persisted, page_size)
        if runtime != expected:
            drift[key] = {"runtime": runtime, "persisted": persisted, "file": entry["file"]}
    hashsize = persistent["modprobe"].get("hashsize")
    buckets = settings.get("nf_conntrack_buckets")
    applies = module_type == "loadable" or (hashsize and hashsize["file"] == "/proc/cmdline")
    if (hashsize and applies and isinstance(hashsize["value"], int) and buckets is not None
            and "nf_conntrack_buckets" not in persistent["sysctl"]
            and buckets != _round_buckets(hashsize["value"], page_size)):
        drift["nf_conntrack_buckets"] = {"runtime": buckets, "persisted": hashsize["value"], "file": hashsize["file"]}
    return drift
