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

import errno
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import reading

NETFILTER_DIR = "proc/sys/net/netfilter"
HASHSIZE_PARAM = "sys/module/nf_conntrack/parameters/hashsize"
SYSCTL_PREFIX = "net.netfilter."

DEFAULT_SYSCTL_FILE = "/etc/sysctl.d/90-netfilter-conntrack.conf"
DEFAULT_MODPROBE_FILE = "/etc/modprobe.d/netfilter-conntrack.conf"
DEFAULT_MODULES_LOAD_FILE = "/etc/modules-load.d/netfilter-conntrack.conf"
DEFAULT_UDEV_RULE_FILE = "/etc/udev/rules.d/90-netfilter-conntrack.rules"

# The method systemd's sysctl.d(5) gives for keys that only exist once a module loads.
UDEV_RULE = ('ACTION=="add", SUBSYSTEM=="module", KERNEL=="nf_conntrack", '
             'RUN+="/usr/lib/systemd/systemd-sysctl --prefix=/net/netfilter"')

HEADER = ("# Managed by Ansible (netfilter.conntrack.settings). Local edits are overwritten.\n")

INT_MAX = 2 ** 31 - 1
# proc_dointvec_jiffies refuses seconds above INT_MAX / HZ; HZ is at most 1000.
TIMEOUT_MAX_SECONDS = INT_MAX // 1000
# nf_ct_alloc_hashtable refuses more than INT_MAX / sizeof(pointer) buckets.
BUCKETS_MAX = INT_MAX // 8

KEY_RE = re.compile(r"^nf_conntrack_[a-z0-9_]+$")

# The kind of each writable key any kernel has had: (kind, minimum, maximum).
_BOOL = ("bool", 0, 1)
_TIMEOUT = ("timeout", 1, TIMEOUT_MAX_SECONDS)
KEYS = {
    "nf_conntrack_max": ("int", 0, INT_MAX),
    "nf_conntrack_buckets": ("buckets", 1, BUCKETS_MAX),
    "nf_conntrack_expect_max": ("int", 1, INT_MAX),
    "nf_conntrack_acct": _BOOL,
    "nf_conntrack_timestamp": _BOOL,
    "nf_conntrack_checksum": _BOOL,
    "nf_conntrack_helper": _BOOL,
    "nf_conntrack_tcp_loose": _BOOL,
    "nf_conntrack_tcp_be_liberal": _BOOL,
    "nf_conntrack_tcp_ignore_invalid_rst": _BOOL,
    "nf_conntrack_dccp_loose": _BOOL,
    "nf_conntrack_events": ("int", 0, 2),
    "nf_conntrack_log_invalid": ("int", 0, 255),
    "nf_conntrack_tcp_max_retrans": ("int", 0, 255),
    "nf_conntrack_frag6_high_thresh": ("int", 0, 2 ** 62),
    "nf_conntrack_frag6_low_thresh": ("int", 0, 2 ** 62),
    "nf_conntrack_frag6_timeout": _TIMEOUT,
}
for _name in ("generic_timeout", "icmp_timeout", "icmpv6_timeout", "udp_timeout", "udp_timeout_stream",
              "gre_timeout", "gre_timeout_stream",
              "tcp_timeout_syn_sent", "tcp_timeout_syn_recv", "tcp_timeout_established",
              "tcp_timeout_fin_wait", "tcp_timeout_close_wait", "tcp_timeout_last_ack",
              "tcp_timeout_time_wait", "tcp_timeout_close", "tcp_timeout_max_retrans",
              "tcp_timeout_unacknowledged",
              "sctp_timeout_closed", "sctp_timeout_cookie_wait", "sctp_timeout_cookie_echoed",
              "sctp_timeout_established", "sctp_timeout_shutdown_sent", "sctp_timeout_shutdown_recd",
              "sctp_timeout_shutdown_ack_sent", "sctp_timeout_heartbeat_sent", "sctp_timeout_heartbeat_acked",
              "dccp_timeout_request", "dccp_timeout_respond", "dccp_timeout_partopen", "dccp_timeout_open",
              "dccp_timeout_closereq", "dccp_timeout_closing", "dccp_timeout_timewait"):
    KEYS["nf_conntrack_" + _name] = _TIMEOUT

# Read-only outside the initial network namespace (containers included).
GLOBAL_KEYS = reading.GLOBAL_KEYS
# What kube-proxy sets itself when it starts (its conntrack settings).
KUBE_PROXY_KEYS = ("nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_tcp_timeout_established",
                   "nf_conntrack_tcp_timeout_close_wait")


class SettingsError(Exception):
    """Bad input, found before anything was touched."""


class FileWriteError(Exception):
    """A file write failed; the files listed in ``restored`` were put back."""

    def __init__(self, cause, restored, rollback_errors):
        super(FileWriteError, self).__init__(str(cause))
        self.cause = cause
        self.restored = restored
        self.rollback_errors = rollback_errors


class ApplyError(Exception):
    """A write failed; ``result`` says what was rolled back."""

    def __init__(self, msg, result):
        super(ApplyError, self).__init__(msg)
        self.result = result


def bucket_granularity():
    """The kernel rounds buckets up to whole pages of hlist_nulls_head pointers."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        page = 4096
    return max(1, page // struct.calcsize("P"))


def round_buckets(value, granularity=None):
    """What the kernel will read back after writing ``value`` buckets (100000 -> 100352)."""
    granularity = granularity or bucket_granularity()
    return -(-value // granularity) * granularity


def coerce_value(key, value):
    """Validate one value for one key; returns the int or raises SettingsError."""
    kind, low, high = KEYS[key]
    if isinstance(value, bool):
        if kind != "bool":
            raise SettingsError("%s: expected an integer, got a boolean (%r)" % (key, value))
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.match(r"^\s*-?[0-9]+\s*$", value):
        number = int(value.strip())
    else:
        raise SettingsError("%s: expected an integer, got %s %r" % (key, type(value).__name__, value))
    if not low <= number <= high:
        unit = " seconds" if kind == "timeout" else ""
        raise SettingsError("%s: %d is out of range (%d..%d%s)" % (key, number, low, high, unit))
    return number


def validate_settings(settings):
    """All keys and values checked, nothing touched; returns {key: int}."""
    if not isinstance(settings, dict):
        raise SettingsError("settings must be a dict of kernel key names to integers")
    problems, clean = [], {}
    for key in sorted(settings, key=str):
        if not isinstance(key, str) or not KEY_RE.match(key):
            problems.append("%r is not an nf_conntrack sysctl name (use names like nf_conntrack_max)" % (key,))
            continue
        if key not in KEYS:
            problems.append("%s is not on the allowlist of writable nf_conntrack keys" % key)
            continue
        try:
            clean[key] = coerce_value(key, settings[key])
        except SettingsError as exc:
            problems.append(str(exc))
    low, high = clean.get("nf_conntrack_frag6_low_thresh"), clean.get("nf_conntrack_frag6_high_thresh")
    if low is not None and high is not None and low > high:
        problems.append("nf_conntrack_frag6_low_thresh must not exceed nf_conntrack_frag6_high_thresh")
    if problems:
        raise SettingsError("refused before any change: " + "; ".join(problems))
    return clean


def parse_sysctl_file(text):
    """{dotted key: value string} as sysctl reads a sysctl.d file."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().lstrip("-").strip()
        if key[:1] == "/" or ("/" in key and key.index("/") < (key.index(".") if "." in key else len(key))):
            key = key.strip("/").replace("/", ".")
        values[key] = value.strip()
    return values


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


class ConntrackSettings(object):
    """Desired nf_conntrack state on one host, the community.crypto backend way."""

    def __init__(self, settings, root="/", state="present", runtime=True,
                 persist_sysctl=True, sysctl_file=DEFAULT_SYSCTL_FILE,
                 persist_modprobe=True, modprobe_file=DEFAULT_MODPROBE_FILE,
                 boot_fix="auto", modules_load_file=DEFAULT_MODULES_LOAD_FILE,
                 udev_rule_file=DEFAULT_UDEV_RULE_FILE,
                 kube_proxy="respect", strict=False, backup=False, backup_func=None,
                 granularity=None, record_file=None, record_pressure_entries=None, now=None):
        self.root = root or "/"
        self.state = state
        self.runtime_enabled = runtime
        self.persist_sysctl = persist_sysctl
        self.persist_modprobe = persist_modprobe
        self.boot_fix = boot_fix
        self.paths = {"sysctl": sysctl_file, "modprobe": modprobe_file,
                      "modules_load": modules_load_file, "udev_rule": udev_rule_file}
        self.kube_proxy = kube_proxy
        self.strict = strict
        self.backup = backup
        self.backup_func = backup_func or self._backup_copy
        self.granularity = granularity or bucket_granularity()
        self.raw_settings = settings if settings is not None else {}
        self.settings = None
        self.warnings = []
        self.notes = []
        self.skipped = {}
        self.runtime = {}      # key -> {"before": int|None, "after": int}
        self.files = {}        # logical name -> dict(path, before, after)
        self.environment = {}
        self._missing = set()
        self.wanted = {}
        self._planned = False
        # The tuning record (CONTRIBUTING.md) kept in the same call, so rollback needs no extra round trips.
        self.record_file = record_file
        self.record_pressure_entries = record_pressure_entries
        self.now = now or (lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.record = None     # like a files entry, plus "data" (the record dict or None)
        self.requested = {}    # validated settings before bucket rounding: the record's "applied"

    # ---------------------------------------------------------------- paths
    def _host(self, path):
        """A host path under root."""
        return os.path.join(self.root, path.lstrip("/"))

    def _netfilter(self, key):
        return self._host(os.path.join(NETFILTER_DIR, key))

    # ----------------------------------------------------------- validation
    def validate(self):
        """Every input checked before anything is read for writing or touched."""
        if self.state not in ("present", "absent"):
            raise SettingsError("state must be present or absent")
        if self.kube_proxy not in ("respect", "override"):
            raise SettingsError("kube_proxy must be respect or override")
        if self.boot_fix not in ("auto", "always", "never"):
            raise SettingsError("boot_fix must be auto, always or never")
        suffix = {"sysctl": ".conf", "modprobe": ".conf", "modules_load": ".conf", "udev_rule": ".rules"}
        for name, path in self.paths.items():
            if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/") \
                    or not path.endswith(suffix[name]) or path.endswith("/" + suffix[name]):
                raise SettingsError("%s_file must be an absolute path ending in %s (the only files the %s "
                                    "loader reads), got %r" % (name, suffix[name], name.replace("_", "-"), path))
        if self.record_file is not None and (not isinstance(self.record_file, str) or not self.record_file.startswith("/")
                                             or ".." in self.record_file.split("/") or self.record_file.endswith("/")):
            raise SettingsError("record_file must be an absolute file path, got %r" % (self.record_file,))
        if self.record_pressure_entries is not None and int(self.record_pressure_entries) < 0:
            raise SettingsError("record_pressure_entries must not be negative")
        self.settings = validate_settings(self.raw_settings)
        self.requested = dict(self.settings)
        if self.state == "present" and not self.settings:
            raise SettingsError("settings is empty: nothing to apply")
        if "nf_conntrack_buckets" in self.settings:
            self.settings["nf_conntrack_buckets"] = round_buckets(self.settings["nf_conntrack_buckets"],
                                                                  self.granularity)
            if self.settings["nf_conntrack_buckets"] > BUCKETS_MAX:
                raise SettingsError("refused before any change: nf_conntrack_buckets rounds up past %d" % BUCKETS_MAX)
        return self.settings

    # ---------------------------------------------------------- environment
    def detect(self):
        """What kind of place this is, by the same rules the facts module uses."""
        r = reading.Reader(self.root, run_command=_no_commands)
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
        self._check_memory()
        wanted = dict(self.settings)
        if env["kube_proxy_running"]:
            owned = sorted(k for k in KUBE_PROXY_KEYS if k in wanted)
            if owned and self.kube_proxy == "respect":
                for key in owned:
                    self.skipped[key] = "kube-proxy runs here and owns this key (kube_proxy=respect)"
                    del wanted[key]
                self.warnings.append("kube-proxy is running: left %s alone; set kube_proxy=override to manage "
                                     "them anyway" % ", ".join(owned))
            elif owned:
                self.warnings.append("kube-proxy is running and may reset %s when it restarts "
                                     "(kube_proxy=override)" % ", ".join(owned))
        if env["initial_netns"] is False:
            for key in GLOBAL_KEYS:
                if key in wanted:
                    self.skipped[key] = ("global key, read-only outside the initial network namespace "
                                         "(container or netns): set it on the host")
                    del wanted[key]
        self.wanted = wanted
        if self.runtime_enabled:
            self._plan_runtime(wanted, env)
        if self.strict and self.skipped:
            raise SettingsError("strict: would skip %s" % "; ".join(
                "%s (%s)" % (k, v) for k, v in sorted(self.skipped.items())))
        self._plan_files(wanted, env)
        if self.record_file is not None:
            self._plan_record()
        self._planned = True
        return self

    def _plan_record(self):
        """The record's new content: originals from the first run kept, times kept when nothing changed."""
        full = self._host(self.record_file)
        raw = _read(full)
        before = raw.decode("utf-8", "replace") if raw is not None else None
        previous = {}
        if before is not None:
            try:
                previous = json.loads(before)
            except ValueError:
                previous = None
            if not isinstance(previous, dict):
                self.warnings.append("%s is not a JSON object: starting a new tuning record" % self.record_file)
                previous = {}
        data = None
        if self.state == "present":
            seen = {}
            for key in sorted(self.requested):
                value = self._read_runtime(key)
                if value is not None:
                    seen[key] = value
            original = dict(seen)
            original.update(previous.get("original") or {})
            now = self.now()
            unchanged = previous.get("applied") == self.requested and previous.get("original") == original
            data = {
                "schema_version": 1,
                "original": original,
                "recorded_at": previous.get("recorded_at") or now,
                "applied": dict(self.requested),
                "applied_at": previous["applied_at"] if unchanged and previous.get("applied_at") else now,
                "pressure_entries": self.record_pressure_entries or previous.get("pressure_entries"),
                "files": dict(self.paths),
            }
        content = render_record(data) if data is not None else None
        self.record = {"path": self.record_file, "full": full, "before": before, "after": content,
                       "data": data, "changed": before != content, "fix_attrs": False}

    def _check_memory(self):
        """A hash table bigger than half the RAM would fail (or wake the OOM killer) midway: refuse it now."""
        buckets = self.settings.get("nf_conntrack_buckets")
        meminfo = _read(self._host("proc/meminfo")) or b""
        m = re.search(br"^MemTotal:\s+(\d+) kB", meminfo, re.M)
        if buckets is None or not m:
            return
        mem_total_bytes = int(m.group(1)) * 1024
        table_bytes = buckets * struct.calcsize("P")
        if table_bytes > mem_total_bytes // 2:
            raise SettingsError("refused before any change: nf_conntrack_buckets %d needs a %d MiB hash table, "
                                "more than half of this host's %d MiB of RAM"
                                % (buckets, table_bytes >> 20, mem_total_bytes >> 20))

    def _plan_runtime(self, wanted, env):
        if not env["available"]:
            for key in sorted(wanted):
                self.skipped.setdefault(key, "nf_conntrack is not loaded: not applied at runtime")
            self.warnings.append("nf_conntrack is not loaded here: nothing applied at runtime; the boot files "
                                 "apply the values when it loads")
            return
        for key in sorted(wanted):
            path = self._netfilter(key)
            before = _read_int(path)
            if key == "nf_conntrack_buckets" and before is None:
                before = _read_int(self._host(HASHSIZE_PARAM))
            if before is None:
                self.skipped[key] = "not present in this kernel (%s)" % (env["kernel_release"] or "unknown release")
                self._missing.add(key)
                self.warnings.append("%s does not exist in this kernel: skipped" % key)
                continue
            if env["proc_sys_read_only"]:
                self.skipped[key] = "/proc/sys is mounted read-only here (a container without unmask=/proc/sys)"
                continue
            self.runtime[key] = {"before": before, "after": wanted[key]}
        count = _read_int(self._netfilter("nf_conntrack_count"))
        new_max = self.runtime.get("nf_conntrack_max", {}).get("after")
        if count and new_max and new_max < count:
            self.warnings.append("nf_conntrack_max %d is below the %d entries tracked now: new connections are "
                                 "dropped until the table drains" % (new_max, count))
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
        if present and env["module"] == "builtin" and "nf_conntrack_buckets" in persisted:
            self.notes.append("nf_conntrack is built in: nf_conntrack_buckets persists through the sysctl drop-in; "
                              "the kernel command line nf_conntrack.hashsize=N is the other way")
        if present and (self.persist_sysctl and persisted):
            self._check_sysctl_order(persisted)

    def _plan_file(self, name, content, leave_alone):
        """content None: the file must not exist; leave_alone: not managed this run."""
        if leave_alone:
            return
        path = self.paths[name]
        full = self._host(path)
        before = _read(full)
        info = {"path": path, "full": full, "before": before.decode("utf-8", "replace") if before is not None else None,
                "after": content, "fix_attrs": False}
        if content is not None and before is not None:
            st = os.lstat(full)
            want_owner = os.geteuid() == 0
            info["fix_attrs"] = (stat.S_IMODE(st.st_mode) != 0o644 or not stat.S_ISREG(st.st_mode)
                                 or (want_owner and (st.st_uid, st.st_gid) != (0, 0)))
        info["changed"] = info["before"] != content or info["fix_attrs"]
        self.files[name] = info

    def _render_sysctl(self, keys):
        lines = [HEADER, "# Applied at boot by systemd-sysctl and sysctl --system.\n"]
        if "nf_conntrack_buckets" in keys:
            lines.append("# The kernel rounds nf_conntrack_buckets up to a multiple of %d.\n" % self.granularity)
        for key in self._write_order(keys, dict((k, None) for k in keys)):
            lines.append("%s%s = %d\n" % (SYSCTL_PREFIX, key, keys[key]))
        return "".join(lines)

    def sysctl_order(self):
        """Files in the order sysctl --system applies them, ours included; the last value for a key wins."""
        files = reading.sysctl_files(reading.Reader(self.root, run_command=_no_commands))
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
        if os.path.dirname(ours) not in reading.SYSCTL_DIRS:
            self.warnings.append("%s is not in a directory sysctl reads at boot (%s)"
                                 % (ours, ", ".join(reading.SYSCTL_DIRS)))
            return
        if ours not in order:
            self.warnings.append("%s is masked by a file of the same name in a directory sysctl prefers: %s"
                                 % (ours, [f for f in order if os.path.basename(f) == os.path.basename(ours)][0]))
            return
        later = order[order.index(ours) + 1:]
        for path in later:
            full = self._host(path)
            if os.path.realpath(full) == ours_real:
                continue
            data = _read(full)
            if data is None:
                continue
            theirs = parse_sysctl_file(data.decode("utf-8", "replace"))
            for key in sorted(keys):
                if SYSCTL_PREFIX + key in theirs:
                    self.warnings.append("%s%s is also set in %s, which sysctl applies after %s: its value (%s) "
                                         "wins at boot" % (SYSCTL_PREFIX, key, path, ours, theirs[SYSCTL_PREFIX + key]))

    # ------------------------------------------------------------- answers
    def _runtime_changes(self):
        return dict((k, v) for k, v in self.runtime.items() if v["before"] != v["after"])

    def needs_change(self):
        if not self._planned:
            self.plan()
        return (bool(self._runtime_changes()) or any(f["changed"] for f in self.files.values())
                or bool(self.record and self.record["changed"]))

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
        """Refuse up front what would fail midway (a read-only /etc, an unwritable key): nothing changes."""
        problems = []
        managed = [self.files[name] for name in sorted(self.files)] + ([self.record] if self.record else [])
        for info in managed:
            if not info["changed"]:
                continue
            directory = os.path.dirname(info["full"])
            while not os.path.isdir(directory):
                directory = os.path.dirname(directory)
            if _read_only_mount(directory):
                problems.append("%s: %s is on a read-only file system" % (info["path"], directory))
            elif not os.access(directory, os.W_OK):
                problems.append("%s: no permission to write in %s" % (info["path"], directory))
        for key in sorted(self._runtime_changes()):
            if not os.access(self._write_path(key), os.W_OK):
                problems.append("%s: not writable here" % key)
        if problems:
            raise ApplyError("nothing was changed: " + "; ".join(problems),
                             {"rolled_back": [], "rollback_errors": [], "failed_key": None})

    def _rollback_runtime(self, done, befores):
        errors = []
        for key in reversed(done):
            try:
                self._write_runtime(key, befores[key])
            except (IOError, OSError) as exc:
                errors.append("%s: %s" % (key, exc))
        return errors

    def apply_runtime(self):
        """Write the changed keys in a safe order; on a failure restore those written and raise."""
        changes = self._runtime_changes()
        befores = dict((k, v["before"]) for k, v in changes.items())
        order = self._write_order(dict((k, v["after"]) for k, v in changes.items()), befores)
        done = []
        for key in order:
            try:
                self._write_runtime(key, changes[key]["after"])
                done.append(key)
            except (IOError, OSError) as exc:
                rollback_errors = self._rollback_runtime(done, befores)
                msg = "writing %s=%d failed (%s)" % (key, changes[key]["after"], exc.strerror or exc)
                if done:
                    msg += "; rolled back %s" % ", ".join(done)
                if rollback_errors:
                    msg += "; ROLLBACK FAILED for %s" % "; ".join(rollback_errors)
                raise ApplyError(msg, {"rolled_back": done, "rollback_errors": rollback_errors, "failed_key": key})
        for key in order:
            actual = _read_int(self._netfilter(key))
            if key == "nf_conntrack_buckets" and actual is None:
                actual = _read_int(self._host(HASHSIZE_PARAM))
            if actual != changes[key]["after"]:
                self.warnings.append("%s reads back %s after writing %d" % (key, actual, changes[key]["after"]))
                self.runtime[key]["after"] = actual
        return done, befores

    def _backup_copy(self, full):
        dest = "%s.%d.%s~" % (full, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S"))
        shutil.copy2(full, dest)
        return dest

    def apply_files(self):
        """Each file atomically; if one fails, the ones already written get their old content back."""
        undo = []
        try:
            for name in sorted(self.files):
                info = self.files[name]
                if not info["changed"]:
                    continue
                full = info["full"]
                old = _read(full)
                if self.backup and old is not None:
                    info["backup"] = self.backup_func(full)
                if info["after"] is None:
                    os.unlink(full)
                else:
                    write_atomic(full, info["after"].encode("utf-8"))
                undo.append((info["path"], full, old))
        except (IOError, OSError) as exc:
            errors = []
            for path, full, old in reversed(undo):
                try:
                    if old is None:
                        os.unlink(full)
                    else:
                        write_atomic(full, old)
                except (IOError, OSError) as rexc:
                    errors.append("%s: %s" % (path, rexc))
            raise FileWriteError(exc, [u[0] for u in undo], errors)

    def apply(self):
        """Preflight, runtime (ordered), then files; any failure puts back what was written and raises."""
        if not self._planned:
            self.plan()
        self.preflight()
        # The record goes first, so that the originals are on disk before anything changes.
        record_old = self._write_record()
        try:
            done, befores = self.apply_runtime()
        except ApplyError as exc:
            exc.result["rollback_errors"].extend(self._restore_record(record_old))
            raise
        try:
            self.apply_files()
        except FileWriteError as exc:
            errors = self._rollback_runtime(done, befores) + exc.rollback_errors + self._restore_record(record_old)
            msg = "writing files failed (%s); rolled back %s" % (exc.cause, ", ".join(done + exc.restored) or "nothing")
            if errors:
                msg += "; ROLLBACK FAILED for %s" % "; ".join(errors)
            raise ApplyError(msg, {"rolled_back": done + exc.restored, "rollback_errors": errors, "failed_key": None})

    def _write_record(self):
        """Write (or remove) the record; returns what to put back on a later failure (False: nothing)."""
        if not self.record or not self.record["changed"]:
            return False
        full = self.record["full"]
        old = _read(full)
        try:
            if self.record["after"] is None:
                os.unlink(full)
            else:
                write_atomic(full, self.record["after"].encode("utf-8"))
        except (IOError, OSError) as exc:
            raise ApplyError("writing the tuning record %s failed (%s); nothing was changed"
                             % (self.record["path"], exc.strerror or exc),
                             {"rolled_back": [], "rollback_errors": [], "failed_key": None})
        return old

    def _restore_record(self, old):
        if old is False:
            return []
        try:
            if old is None:
                os.unlink(self.record["full"])
            else:
                write_atomic(self.record["full"], old)
        except (IOError, OSError) as exc:
            return ["%s: %s" % (self.record["path"], exc)]
        return []

    # -------------------------------------------------------------- report
    def result(self):
        files = {}
        for name, info in self.files.items():
            entry = {"changed": info["changed"], "state": "absent" if info["after"] is None else "present"}
            entry["backup"] = info.get("backup")
            files[info["path"]] = entry
        out = {
            "runtime": dict((k, dict(v)) for k, v in self.runtime.items()),
            # Not "skipped": ansible reads a truthy "skipped" in a result as a skipped task.
            "skipped_keys": dict(self.skipped),
            "files": files,
            "desired": dict((k, self.runtime[k]["after"] if k in self.runtime else v)
                            for k, v in self.wanted.items() if k not in self.skipped),
            "environment": dict(self.environment),
            "notes": list(self.notes),
        }
        if self.runtime_enabled and self.environment.get("available"):
            # Read again now, so that a verify step needs no second facts call.
            read_back = {}
            for key in sorted(self.settings or {}):
                value = self._read_runtime(key)
                if value is not None:
                    read_back[key] = value
            out["read_back"] = read_back
        if self.record is not None:
            out["record"] = {"path": self.record["path"], "changed": self.record["changed"],
                             "state": "absent" if self.record["after"] is None else "present",
                             "content": self.record["data"]}
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
        for name in sorted(self.files):
            info = self.files[name]
            diffs.append({"before_header": info["path"] if info["before"] is not None else "%s (absent)" % info["path"],
                          "after_header": info["path"] if info["after"] is not None else "%s (absent)" % info["path"],
                          "before": info["before"] or "", "after": info["after"] or ""})
        if self.record is not None and self.record["changed"]:
            info = self.record
            diffs.append({"before_header": info["path"] if info["before"] is not None else "%s (absent)" % info["path"],
                          "after_header": info["path"] if info["after"] is not None else "%s (absent)" % info["path"],
                          "before": info["before"] or "", "after": info["after"] or ""})
        return diffs


def render_record(data):
    """The record as the role's to_nice_json(sort_keys=true) wrote it, so old records compare equal."""
    return json.dumps(data, indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def write_atomic(path, data, mode=0o644):
    """Temp file in the same directory, fsync, rename: readers see the old or the new file, never half."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if os.geteuid() == 0:
                os.fchown(f.fileno(), 0, 0)
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
