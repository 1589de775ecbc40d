# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every network namespace on the host, seen from where the module runs.

Private to this collection: not an API. Stdlib only, no ``setns`` and no command per
namespace: a namespace is read through a process inside it (``/proc/PID/net/...``
follows that process's namespace). A namespace kept only by a bind mount
(``ip netns add`` with nothing running in it) has no such process: it is listed, with
``readable: false`` and the reason.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import re
import socket
import struct

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import reading
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import table as table_walk

NS_LINK = re.compile(r"^net:\[(\d+)\]$")
# Where runtimes keep their bind mounts: ip netns (and podman/CNI's netns-* and cni-*), Docker.
NETNS_DIRS = ("/run/netns", "/var/run/netns", "/run/docker/netns", "/var/run/docker/netns")
PIDS_KEPT = 2
# A host with more than this many namespaces gets the first ones and a warning.
MAX_NAMESPACES = 10000
POD_LOG_DIR = "/var/log/pods"              # <namespace>_<name>_<uid>, written by the kubelet
DOCKER_CONTAINERS = "/var/lib/docker/containers"
PODMAN_CONTAINERS = "/var/lib/containers/storage/overlay-containers/containers.json"

# cgroup path patterns, most specific first: (kind, runtime, regex with group "id").
_HEX64 = r"(?P<id>[0-9a-f]{64})"
CGROUP_PATTERNS = (
    ("container", "containerd", re.compile(r"cri-containerd-" + _HEX64 + r"\.scope")),
    ("container", "cri-o", re.compile(r"crio-(?:conmon-)?" + _HEX64 + r"\.scope")),
    ("container", "podman", re.compile(r"libpod-(?:conmon-)?" + _HEX64 + r"\.scope")),
    ("container", "docker", re.compile(r"docker-" + _HEX64 + r"\.scope")),
    ("container", "docker", re.compile(r"/docker/" + _HEX64 + r"(?:/|$)")),
    ("container", "podman", re.compile(r"/libpod_parent/libpod-" + _HEX64)),
    # cgroupfs driver under kubepods: /kubepods/burstable/pod<uid>/<id>
    ("container", None, re.compile(r"/kubepods[^\n]*/pod[0-9a-f_-]{36}/" + _HEX64 + r"(?:/|$)")),
)
POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
LXC = re.compile(r"/lxc(?:\.payload)?[./](?P<name>[^/\n]+)")
SERVICE = re.compile(r"/(?P<unit>[^/\n]+\.service)(?:/|$)")

# rtnetlink: ask the kernel which id (nsid) the current namespace gave a peer namespace.
RTM_NEWNSID, RTM_GETNSID = 88, 90
NETNSA_NSID, NETNSA_PID, NETNSA_FD = 1, 2, 3
NLM_F_REQUEST, NLMSG_ERROR = 1, 2
NETLINK_ROUTE = 0


def _inode(r, path):
    try:
        target = os.readlink(r.path(path))
    except (IOError, OSError):
        # A recorded tree keeps the link's target as a file's text (no dangling links in git).
        target = None if r.live else (r.read(path) or "").strip()
        if not target:
            return None
    m = NS_LINK.match(target)
    return int(m.group(1)) if m else None


def _unescape(path):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def bind_mounts(r):
    """{inode: [paths]} of the namespaces bind-mounted in this mount namespace."""
    found = {}
    text = r.read("/proc/self/mountinfo") or ""
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 5:
            continue
        fstype = fields[fields.index("-") + 1] if fields.index("-") + 1 < len(fields) else ""
        m = NS_LINK.match(fields[3])
        if m and fstype in ("nsfs", "proc"):
            found.setdefault(int(m.group(1)), []).append(_unescape(fields[4]))
    if r.live:
        # A runtime in another mount namespace (or an unreadable mountinfo): stat the usual
        # places; an nsfs file shares the device of our own ns link.
        try:
            nsfs_dev = os.stat("/proc/self/ns/net").st_dev
        except OSError:
            nsfs_dev = None
        for d in NETNS_DIRS:
            for name in r.listdir(d):
                path = d + "/" + name
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                paths = found.setdefault(st.st_ino, []) if st.st_dev == nsfs_dev else None
                if paths is not None and path not in paths and os.path.realpath(path) not in paths:
                    paths.append(path)
    return found


def discover(r):
    """{inode: {pids, process_count, bind_mounts}}: every namespace a process or a bind mount holds."""
    spaces = {}
    pids = sorted(int(p) for p in r.listdir("/proc") if p.isdigit())
    for pid in pids:
        inode = _inode(r, "/proc/%d/ns/net" % pid)
        if inode is None:
            continue  # gone, a kernel thread, or not ours to see
        entry = spaces.get(inode)
        if entry is None:
            entry = spaces[inode] = {"pids": [], "process_count": 0, "bind_mounts": []}
        entry["process_count"] += 1
        if len(entry["pids"]) < PIDS_KEPT:
            entry["pids"].append(pid)
    for inode, paths in bind_mounts(r).items():
        entry = spaces.setdefault(inode, {"pids": [], "process_count": 0, "bind_mounts": []})
        entry["bind_mounts"] = sorted(set(paths))
    return spaces


# ----------------------------------------------------------------------- nsid

class NsidLookup(object):
    """RTM_GETNSID over one rtnetlink socket, like ``ip netns list-id`` / ``ip -n``: the id
    this namespace gave a peer (the one ``ip link`` prints as link-netnsid), or None."""

    def __init__(self):
        self.sock = None
        self.error = None
        self.seq = 0
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
            self.sock.settimeout(1.0)
        except (AttributeError, OSError) as exc:
            self.error = "no rtnetlink socket: %s" % exc

    def close(self):
        if self.sock is not None:
            self.sock.close()

    def ask(self, attr, value):
        """(nsid or None, reason or None)."""
        if self.sock is None:
            return None, self.error
        self.seq += 1
        payload = struct.pack("=BxxxHHI", socket.AF_UNSPEC, 8, attr, value)
        self.sock.send(struct.pack("=IHHII", 16 + len(payload), RTM_GETNSID, NLM_F_REQUEST, self.seq, 0) + payload)
        data = self.sock.recv(8192)
        length, kind = struct.unpack("=IH", data[:6])
        if kind == NLMSG_ERROR:
            code = -struct.unpack("=i", data[16:20])[0]
            return None, "RTM_GETNSID: %s" % os.strerror(code)
        offset = 20  # nlmsghdr (16) + rtgenmsg padded to 4
        while offset + 4 <= min(length, len(data)):
            alen, atype = struct.unpack("=HH", data[offset:offset + 4])
            if alen < 4:
                break
            if atype == NETNSA_NSID and alen >= 8:
                nsid = struct.unpack("=i", data[offset + 4:offset + 8])[0]
                return (nsid, None) if nsid >= 0 else (None, "the kernel assigned no id to it")
            offset += (alen + 3) & ~3
        return None, "the kernel's answer held no id"

    def for_namespace(self, pids, paths):
        for pid in pids:
            try:
                return self.ask(NETNSA_PID, pid)
            except (IOError, OSError) as exc:
                reason = str(exc)
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as exc:
                reason = "cannot open %s: %s" % (path, exc.strerror)
                continue
            try:
                return self.ask(NETNSA_FD, fd)
            except (IOError, OSError) as exc:
                reason = str(exc)
            finally:
                os.close(fd)
        return None, reason if (pids or paths) else "nothing to ask by"


# ---------------------------------------------------------------------- owner

def owner_from_cgroup(text):
    """Who owns a process, from /proc/PID/cgroup: a dict with kind and what the path names."""
    owner = {"kind": None, "runtime": None, "container_id": None, "container_name": None, "pod_uid": None, "service": None,
             "cgroup": None}
    paths = [line.split(":", 2)[2] for line in (text or "").splitlines() if line.count(":") >= 2]
    # cgroup v2's single line, else the systemd hierarchy, else the longest v1 path.
    chosen = next((p for line, p in zip((text or "").splitlines(), paths) if line.startswith("0::")), None)
    if chosen is None and paths:
        chosen = max(paths, key=len)
    owner["cgroup"] = chosen
    joined = "\n".join(paths)
    pod = POD_UID.search(joined)
    if pod:
        owner["pod_uid"] = pod.group(1).replace("_", "-")
    for kind, runtime, pattern in CGROUP_PATTERNS:
        m = pattern.search(joined)
        if m:
            owner.update(kind=kind, runtime=runtime or ("kubernetes" if pod else None), container_id=m.group("id"))
            break
    else:
        lxc = LXC.search(joined)
        unit = SERVICE.search(chosen or "")
        if lxc:
            owner.update(kind="container", runtime="lxc", container_name=lxc.group("name"))
        elif unit:
            owner.update(kind="service", service=unit.group("unit"))
    if owner["pod_uid"] and owner["kind"] is None:
        owner["kind"] = "container"
    if owner["pod_uid"]:
        owner["kind"] = "pod"
    return owner


class Names(object):
    """The runtimes' own files, read once and only when an owner needs them."""

    def __init__(self, r):
        self.r = r
        self._pods = None
        self._podman = None

    def pod(self, uid):
        if self._pods is None:
            self._pods = {}
            for name in self.r.listdir(POD_LOG_DIR):
                parts = name.rsplit("_", 2)
                if len(parts) == 3:
                    self._pods[parts[2]] = {"namespace": parts[0], "name": parts[1]}
        return self._pods.get(uid)

    def docker(self, cid):
        text = self.r.read_config("%s/%s/config.v2.json" % (DOCKER_CONTAINERS, cid))
        try:
            name = json.loads(text).get("Name") if text else None
        except ValueError:
            return None
        return name.lstrip("/") if isinstance(name, str) else None

    def podman(self, cid):
        if self._podman is None:
            self._podman = {}
            text = self.r.read_config(PODMAN_CONTAINERS)
            try:
                items = json.loads(text) if text else []
            except ValueError:
                items = []
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and item.get("names"):
                    self._podman[item.get("id")] = item["names"][0]
        return self._podman.get(cid)


def describe_owner(r, names, pid, bind_paths, initial):
    text = r.read("/proc/%d/cgroup" % pid) if pid is not None else None
    owner = owner_from_cgroup(text) if text is not None else owner_from_cgroup("")
    owner.setdefault("container_name", None)
    owner.update(pod_name=None, pod_namespace=None, netns_name=None)
    if owner["pod_uid"]:
        pod = names.pod(owner["pod_uid"])
        if pod:
            owner.update(pod_name=pod["name"], pod_namespace=pod["namespace"])
    if owner["container_id"] and owner["runtime"] == "docker":
        owner["container_name"] = names.docker(owner["container_id"])
    elif owner["container_id"] and owner["runtime"] == "podman":
        owner["container_name"] = names.podman(owner["container_id"])
    for path in bind_paths:
        directory, base = os.path.split(path)
        if directory in ("/run/netns", "/var/run/netns"):
            owner["netns_name"] = base
            break
        if directory.endswith("/docker/netns"):
            owner["netns_name"] = base
            owner["runtime"] = owner["runtime"] or "docker"
    if initial:
        owner["kind"] = "host"
    elif owner["kind"] is None and owner["netns_name"]:
        owner["kind"] = "ip-netns"
    owner["kind"] = owner["kind"] or "unknown"
    return owner


# ---------------------------------------------------------------- per namespace

def read_counters(r, pid):
    """(stats dict, None) or (None, reason), from /proc/PID/net/stat/nf_conntrack."""
    path = "/proc/%d/net/stat/nf_conntrack" % pid
    try:
        with open(r.path(path), "rb") as f:
            text = f.read().decode("ascii", "replace")
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ESRCH):
            return None, "%s is missing (the process left, or no conntrack here)" % path
        return None, "cannot read %s: %s" % (path, exc.strerror or exc)
    try:
        columns, rows = reading.parse_stat_file(text)
    except ValueError as exc:
        return None, "cannot parse %s: %s" % (path, exc)
    stats = reading.build_stats("proc", columns, rows)
    stats.pop("sample", None)
    return stats, None


def read_one(r, inode, entry, ctx):
    pids = entry["pids"]
    ns = {"inode": inode, "nsid": None, "nsid_note": None, "current": inode == ctx["own"],
          "initial": (inode == ctx["init"]) if ctx["init"] is not None else None,
          "pids": list(pids), "process_count": entry["process_count"], "process": None,
          "bind_mounts": entry["bind_mounts"], "owner": None, "readable": False, "reason": None,
          "entries": None, "stats": None, "table": None}
    if pids:
        comm = r.read("/proc/%d/comm" % pids[0])
        ns["process"] = comm.strip() if comm else None
    ns["owner"] = describe_owner(r, ctx["names"], pids[0] if pids else None, entry["bind_mounts"], ns["initial"])
    if ctx["nsid"] is not None and not ns["current"]:
        ns["nsid"], ns["nsid_note"] = ctx["nsid"].for_namespace(pids, entry["bind_mounts"])
    elif ctx["nsid"] is None:
        ns["nsid_note"] = ctx["nsid_off"]
    else:
        ns["nsid_note"] = "the namespace the module runs in"
    if not pids:
        ns["reason"] = ("no process runs in it (kept by the bind mount %s): its counters can only be read from"
                        " inside (ip netns exec NAME conntrack -C)" % ", ".join(entry["bind_mounts"]))
        return ns
    reasons = []
    for pid in pids:
        stats, why = read_counters(r, pid)
        if stats is not None:
            ns.update(readable=True, stats=stats, entries=stats["totals"].get("entries"))
            if ctx["table"]:
                ns["table"] = _walk(r, pid, ctx)
            return ns
        reasons.append(why)
    ns["reason"] = "; ".join(reasons)
    return ns


def _walk(r, pid, ctx):
    path = "/proc/%d/net/nf_conntrack" % pid
    try:
        return table_walk.walk_proc(r.path(path), limit=ctx["table_limit"], top_sources=ctx["top_sources"])
    except (IOError, OSError) as exc:
        r.warn("cannot walk %s: %s" % (path, exc.strerror or exc))
        return None


def _sort_key(ns):
    return (0 if ns["current"] else 1, -(ns["entries"] or 0), ns["inode"])


def read_namespaces(r, table=False, table_limit=None, top_sources=10, nsid=True):
    """The ``namespaces`` fact: a list, the module's own namespace first, then by entries."""
    spaces = discover(r)
    if len(spaces) > MAX_NAMESPACES:
        r.warn("%d network namespaces: only the first %d are read" % (len(spaces), MAX_NAMESPACES))
    init = _inode(r, "/proc/1/ns/net")
    ctx = {"own": _inode(r, "/proc/self/ns/net"), "init": init, "names": Names(r), "table": table,
           "table_limit": table_limit, "top_sources": top_sources, "nsid": None,
           "nsid_off": "not asked (recorded tree)" if not r.live else "not asked"}
    if ctx["own"] is not None and ctx["own"] == reading.PROC_NET_INIT_INO:
        ctx["init"] = ctx["own"]
    if nsid and r.live:
        ctx["nsid"] = NsidLookup()
        if ctx["nsid"].sock is None:
            ctx["nsid_off"], ctx["nsid"] = ctx["nsid"].error, None
    try:
        result = [read_one(r, inode, spaces[inode], ctx) for inode in sorted(spaces)[:MAX_NAMESPACES]]
    finally:
        if ctx["nsid"] is not None:
            ctx["nsid"].close()
    result.sort(key=_sort_key)
    return result
