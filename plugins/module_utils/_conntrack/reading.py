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

import datetime
import errno
import fnmatch
import os
import re
import shutil
import stat as stat_module
import subprocess
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import files, kernel, tuning_record
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import table as table_walk

SCHEMA_VERSION = 1

NETFILTER = "/proc/sys/net/netfilter"
# Where the tune role keeps its record (an Ansible local fact).
RECORD_FILE = "/etc/ansible/facts.d/netfilter_conntrack.fact"
STAT_FILE = "/proc/net/stat/nf_conntrack"
TABLE_FILE = "/proc/net/nf_conntrack"
MODULE_DIR = "/sys/module/nf_conntrack"
SLAB_DIR = "/sys/kernel/slab/nf_conntrack"

# init_net's fixed inode since Linux 5.x (PROC_NET_INIT_INO); older kernels allocate it.
PROC_NET_INIT_INO = 0xEFFFFFF9
# Outside init_net the kernel makes these 0444.
GLOBAL_KEYS = kernel.GLOBAL_KEYS

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

TABLE_FULL = re.compile(r"table full(?: in netns (\d+))?, dropping packet")
DMESG_TIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


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


class Reader(object):
    """File access below ``root``, collecting warnings instead of raising."""

    def __init__(self, root="/", run_command=None, which=None, popen=None):
        self.root = root or "/"
        self.live = os.path.abspath(self.root) == "/"
        if run_command is None:
            run_command = default_run_command if self.live else _no_commands
        self.run_command = run_command
        if which is None:
            which = shutil.which if self.live else (lambda name: None)
        self.which = which
        self.popen = popen or subprocess.Popen
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
        settable = not read_only_mode and all(
            os.access(r.path(NETFILTER + "/" + key), os.W_OK)
            for key in GLOBAL_KEYS if os.path.exists(r.path(NETFILTER + "/" + key)))
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


# ------------------------------------------------------------------ kernel log

def _boot_time(r):
    text = r.read("/proc/stat")
    if text:
        m = re.search(r"^btime (\d+)", text, re.M)
        if m:
            return int(m.group(1))
    return None


def scan_log_lines(pairs):
    """pairs of (seconds_since_boot or None, message) → (count, last seconds, netns ids)."""
    count, last, netns = 0, None, []
    for seconds, message in pairs:
        m = TABLE_FULL.search(message)
        if not m:
            continue
        count += 1
        if seconds is not None and (last is None or seconds >= last):
            last = seconds
        if m.group(1) and int(m.group(1)) not in netns:
            netns.append(int(m.group(1)))
    return count, last, netns


def _kmsg_records(text):
    # "prio,seq,usec,flags;message" with continuation lines starting with a space.
    for line in text.splitlines():
        if not line or line[0] == " " or ";" not in line:
            continue
        head, message = line.split(";", 1)
        fields = head.split(",")
        seconds = None
        if len(fields) >= 3 and fields[2].isdigit():
            seconds = int(fields[2]) / 1000000.0
        yield seconds, message


def read_kmsg(r):
    """All of /dev/kmsg without blocking, or raises OSError."""
    fd = os.open(r.path("/dev/kmsg"), os.O_RDONLY | os.O_NONBLOCK)
    chunks = []
    try:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break  # the end of the ring buffer
                if exc.errno == errno.EPIPE:
                    continue  # a record was overwritten while we read; go on
                raise
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def _dmesg_records(text):
    for line in text.splitlines():
        m = DMESG_TIME.match(line)
        yield (float(m.group(1)) if m else None), line


def read_kernel_log(r):
    result = {"readable": False, "source": None, "table_full_count": 0, "last_seen": None,
              "last_seen_seconds_since_boot": None, "netns": []}
    failures = []
    records = None
    try:
        records = list(_kmsg_records(read_kmsg(r)))
        result["source"] = "kmsg"
    except (IOError, OSError) as exc:
        failures.append("/dev/kmsg: %s" % (exc.strerror or exc))
    if records is None:
        res = r.command(["dmesg"])
        if res is None:
            failures.append("dmesg: not installed")
        elif res[0] != 0:
            failures.append("dmesg: %s" % (res[2].strip() or res[0]))
        else:
            records = list(_dmesg_records(res[1]))
            result["source"] = "dmesg"
    if records is None:
        res = r.command(["journalctl", "-k", "-b", "--no-pager", "-q", "-o", "short-monotonic"])
        if res is None:
            failures.append("journalctl: not installed")
        elif res[0] != 0:
            failures.append("journalctl: %s" % (res[2].strip() or res[0]))
        else:
            records = list(_dmesg_records(res[1]))
            result["source"] = "journal"
    if records is None:
        r.warn("cannot read the kernel log, so table-full events are unknown (%s)" % "; ".join(failures))
        result["table_full_count"] = None
        return result
    count, last, netns = scan_log_lines(records)
    result.update(readable=True, table_full_count=count, netns=netns,
                  last_seen_seconds_since_boot=last)
    btime = _boot_time(r)
    if last is not None and btime is not None:
        # Monotonic time since boot: suspend periods make this an estimate.
        when = datetime.datetime.fromtimestamp(btime + last, tz=datetime.timezone.utc)
        result["last_seen"] = when.replace(microsecond=0).isoformat()
    return result


# ---------------------------------------------------------------------- memory

def _first_int(text):
    try:
        return int(text.split()[0])
    except (ValueError, IndexError, AttributeError):
        return None


def read_memory(r, buckets):
    mem = {"source": "none", "object_size_bytes": None, "slab_size_bytes": None,
           "active_objects": None, "total_objects": None, "slab_bytes_in_use": None,
           "slab_merged": None}
    if r.exists(SLAB_DIR):
        values = {}
        for name in ("object_size", "slab_size", "objects", "total_objects"):
            values[name] = _first_int(r.read(SLAB_DIR + "/" + name, missing_ok=False))
        if values["slab_size"] is not None:
            mem.update(source="sysfs", object_size_bytes=values["object_size"],
                       slab_size_bytes=values["slab_size"], active_objects=values["objects"],
                       total_objects=values["total_objects"])
            # A merged cache is a symlink to a shared one: its counts include other users.
            mem["slab_merged"] = os.path.islink(r.path(SLAB_DIR))
    if mem["source"] == "none":
        text = r.read("/proc/slabinfo", missing_ok=True)
        if text is not None:
            for line in text.splitlines():
                words = line.split()
                if words and words[0] == "nf_conntrack" and len(words) >= 4:
                    # name active_objs num_objs objsize ...: objsize is the slab stride.
                    mem.update(source="slabinfo", active_objects=int(words[1]), total_objects=int(words[2]),
                               slab_size_bytes=int(words[3]))
                    break
    if mem["total_objects"] is not None and mem["slab_size_bytes"] is not None:
        mem["slab_bytes_in_use"] = mem["total_objects"] * mem["slab_size_bytes"]
    if mem["source"] == "none":
        r.warn("no nf_conntrack slab found in /sys/kernel/slab or /proc/slabinfo: per-entry memory is unknown")
    bucket_size = kernel.HOST_BUCKET_BYTES
    mem["bucket_size_bytes"] = bucket_size
    mem["hash_table_bytes"] = buckets * bucket_size if buckets is not None else None
    mem["mem_total_bytes"] = kernel.mem_total_bytes(r.read("/proc/meminfo"))
    mem["cpu_count"] = read_cpu_count(r)
    mem["page_size_bytes"] = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    return mem


def _count_cpu_list(text):
    total = 0
    for part in text.strip().split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            total += int(b) - int(a) + 1
        elif part:
            total += 1
    return total


def read_cpu_count(r):
    text = r.read("/sys/devices/system/cpu/online")
    if text and text.strip():
        try:
            return _count_cpu_list(text)
        except ValueError:
            pass
    cpuinfo = r.read("/proc/cpuinfo")
    if cpuinfo:
        n = len(re.findall(r"^processor\s*:", cpuinfo, re.M))
        if n:
            return n
    return os.cpu_count() if r.live else None


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


NAT_STATEMENT = re.compile(r"\b(masquerade|snat|dnat|redirect)\b", re.I)
NFT_TABLE = re.compile(r"^table (\S+) (\S+) \{")


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


def _nft_nat(r, notes):
    """True/False from nftables, or None. Lists chains first (no rules, cheap even with
    a big ruleset), then only the tables that have a nat base chain. Not at all when
    nf_tables is not loaded: then there are no nftables rules, and nft would load it."""
    if not module_present(r, "nf_tables"):
        return False
    res = r.command(["nft", "list", "chains"])
    if res is None:
        return None
    if res[0] != 0:
        notes.append("nft list chains: %s" % (res[2].strip() or res[0]))
        return None
    tables, current = [], None
    for line in res[1].splitlines():
        m = NFT_TABLE.match(line.strip())
        if m:
            current = (m.group(1), m.group(2))
        elif "type nat hook" in line and current and current not in tables:
            tables.append(current)
    for family, name in tables:
        res = r.command(["nft", "list", "table", family, name])
        if res is None or res[0] != 0:
            notes.append("nft list table %s %s: %s" % (family, name, res and (res[2].strip() or res[0])))
            continue
        rules = [line for line in res[1].splitlines() if "type nat hook" not in line]
        if any(NAT_STATEMENT.search(line) for line in rules):
            return True
    return False


def read_nat(r):
    """(present, source). nftables first; the legacy iptables nat table only when the
    kernel already has it (/proc/net/ip_tables_names), because iptables-save would
    load the nat module otherwise."""
    notes = []
    present = _nft_nat(r, notes)
    source = "nftables" if present is not None else None
    if present:
        return present, source
    for names_file, tools in (("/proc/net/ip_tables_names", ("iptables-legacy-save", "iptables-save")),
                              ("/proc/net/ip6_tables_names", ("ip6tables-legacy-save", "ip6tables-save"))):
        if "nat" not in (r.read(names_file) or "").split():
            continue
        for tool in tools:
            res = r.command([tool, "-t", "nat"])
            if res is None:
                continue
            if res[0] != 0:
                notes.append("%s: %s" % (tool, res[2].strip() or res[0]))
            elif re.search(r"^-A ", res[1], re.M):
                return True, "iptables"
            else:
                present, source = False, source or "iptables"
            break
    if present is None and r.live and r.which("nft") is None:
        notes.append("nft is not installed")
    if present is None and notes:
        r.warn("cannot tell whether NAT rules exist: %s" % "; ".join(notes))
    return present, source


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


def read_environment(r, settings, module_type, page_size, record_file=RECORD_FILE):
    ip_forward = r.read_int("/proc/sys/net/ipv4/ip_forward")
    present, source = read_nat(r)
    persistent = read_persistent(r)
    record, record_error = tuning_record.read_tuning_record(r, record_file)
    return {
        "tuning_record": record,
        "tuning_record_error": record_error,
        "kube_proxy_running": kube_proxy_running(r),
        "nat_rules_present": present,
        "nat_rules_source": source,
        "ip_forward": None if ip_forward is None else bool(ip_forward),
        "persistent": persistent,
        "drift": build_drift(settings, persistent, module_type, page_size),
    }


# ----------------------------------------------------------------------- table

def read_table(r, limit=None, top_sources=10, source="auto"):
    if source in ("auto", "proc") and r.exists(TABLE_FILE):
        try:
            return table_walk.walk_proc(r.path(TABLE_FILE), limit=limit, top_sources=top_sources)
        except (IOError, OSError) as exc:
            r.warn("cannot read %s: %s" % (TABLE_FILE, exc.strerror or exc))
    if source in ("auto", "conntrack") and not module_present(r, "nf_conntrack_netlink"):
        r.warn("cannot walk the table: %s is missing, and conntrack -L would load nf_conntrack_netlink" % TABLE_FILE)
    elif source in ("auto", "conntrack"):
        binary = r.which("conntrack")
        if binary:
            try:
                return table_walk.walk_conntrack([binary, "-L", "-o", "extended"], limit=limit,
                                                 top_sources=top_sources, popen=r.popen)
            except (IOError, OSError) as exc:
                r.warn("conntrack -L failed: %s" % exc)
        else:
            r.warn("cannot walk the table: %s is missing and conntrack-tools is not installed" % TABLE_FILE
                   if source == "auto" else "cannot walk the table: conntrack-tools is not installed")
    elif source == "proc":
        r.warn("cannot walk the table: %s is missing" % TABLE_FILE)
    return None


# ---------------------------------------------------------------------- gather

def empty_facts():
    return {
        "schema_version": SCHEMA_VERSION, "available": False, "active": False, "module": "unknown",
        "kernel_release": None, "initial_netns": None, "host_settable": None, "settings": {},
        "module_parameters": {}, "usage": None, "stats": None, "kernel_log": None, "memory": None,
        "table": None, "environment": None, "warnings": [],
    }


def _guarded(r, what, fn, *args, **kwargs):
    """Run one section; an unexpected error becomes a warning and a null fact, never a traceback."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # partial facts beat no facts
        r.warn("could not read %s: %s: %s" % (what, type(exc).__name__, exc))
        return None


MAX_SAMPLE_SECONDS = 300
MAX_TOP_SOURCES = 1000


def option_problem(table_limit=None, top_sources=10, sample_seconds=0):
    """Why the reading options are refused (a message for fail_json), or None: the one rule for
    the facts module and for recommend when it reads the host itself."""
    if table_limit is not None and table_limit < 1:
        return "table_limit must be at least 1 (leave it unset for the whole table)"
    if not 0 <= top_sources <= MAX_TOP_SOURCES:
        return "top_sources must be between 0 and %d" % MAX_TOP_SOURCES
    if not 0 <= sample_seconds <= MAX_SAMPLE_SECONDS:
        return "sample_seconds must be between 0 and %d" % MAX_SAMPLE_SECONDS
    return None


def host_commands(module):
    """The command seams of a reader on the managed node, through an AnsibleModule: commands run
    with its run_command (LC_ALL=C, so that their output parses), found with its get_bin_path."""

    def run_command(argv):
        return module.run_command(argv, check_rc=False, environ_update={"LC_ALL": "C"})

    return {"run_command": run_command, "which": module.get_bin_path}


def gather_on_host(module, **options):
    """gather() on the managed node through an AnsibleModule (host_commands)."""
    return gather(root="/", **dict(options, **host_commands(module)))


# The facts module's options (root, table walk, sample, sections) plus the seams unit tests
# use (run_command, which, popen, sleep): all keyword arguments with defaults, so the count
# is over the rule of 7 on purpose.
def gather(root="/", table=False, table_limit=None, top_sources=10, sample_seconds=0,
           run_command=None, which=None, popen=None, kernel_log=True, environment=True,
           table_source="auto", sleep=time.sleep, record_file=RECORD_FILE):
    """Read the facts dict (CONTRIBUTING.md, schema_version 1); returns (facts, warnings)."""
    r = Reader(root, run_command=run_command, which=which, popen=popen)
    facts = empty_facts()
    release = r.read("/proc/sys/kernel/osrelease")
    facts["kernel_release"] = release.strip() if release else None
    facts["module"] = _guarded(r, "the module type", read_module_type, r, facts["kernel_release"]) or "unknown"
    facts["available"] = r.exists(NETFILTER + "/nf_conntrack_max") or r.exists(STAT_FILE)
    facts["initial_netns"], facts["host_settable"] = _guarded(r, "the namespace", read_namespace, r) or (None, None)
    page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    if not facts["available"]:
        facts["host_settable"] = False
        if kernel_log:
            facts["kernel_log"] = _guarded(r, "the kernel log", read_kernel_log, r)
        if environment:
            facts["environment"] = _guarded(r, "the environment", read_environment, r, {}, facts["module"],
                                            page_size, record_file=record_file)
        facts["warnings"] = list(r.warnings)
        return facts, facts["warnings"]

    facts["settings"] = _guarded(r, "the settings", read_settings, r) or {}
    facts["module_parameters"] = _guarded(r, "the module parameters", read_module_parameters, r) or {}
    facts["usage"] = build_usage(facts["settings"])
    raw = _guarded(r, "the statistics", read_stats_raw, r) or ("none", [], [])
    facts["stats"] = build_stats(*raw)
    facts["active"] = raw[0] != "none" or facts["usage"]["count"] is not None
    if sample_seconds and sample_seconds > 0 and raw[0] != "none":
        start = time.monotonic()
        sleep(sample_seconds)
        after = _guarded(r, "the statistics", read_stats_raw, r) or ("none", [], [])
        elapsed = max(time.monotonic() - start, sample_seconds) if r.live else sample_seconds
        count_after = r.read_int(NETFILTER + "/nf_conntrack_count")
        facts["stats"]["sample"] = build_sample(round(elapsed, 3), raw, after,
                                                facts["usage"]["count"], count_after)
    if kernel_log:
        facts["kernel_log"] = _guarded(r, "the kernel log", read_kernel_log, r)
    facts["memory"] = _guarded(r, "the memory figures", read_memory, r, facts["usage"]["buckets"])
    if table:
        facts["table"] = _guarded(r, "the table", read_table, r, limit=table_limit,
                                  top_sources=top_sources, source=table_source)
    if environment:
        facts["environment"] = _guarded(r, "the environment", read_environment, r, facts["settings"],
                                        facts["module"], page_size, record_file=record_file)
    facts["warnings"] = list(r.warnings)
    return facts, facts["warnings"]
