# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kernel's runtime values as the settings module reads and writes them.

Private to this collection. Every path is below ``root`` so that unit tests run against a
temporary tree. Standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

NETFILTER_DIR = "proc/sys/net/netfilter"
HASHSIZE_PARAM = "sys/module/nf_conntrack/parameters/hashsize"


def host_path(root, path):
    """A host path under root."""
    return os.path.join(root, path.lstrip("/"))


def read_bytes(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except (IOError, OSError) as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def read_int(path):
    data = read_bytes(path)
    if data is None:
        return None
    try:
        return int(data.split()[0])
    except (ValueError, IndexError):
        return None


def read_only_mount(path):
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def write_order(keys, before):
    """Growing: buckets before max, so chains never get deeper than planned; shrinking: the reverse."""
    rest = sorted(k for k in keys if k not in ("nf_conntrack_buckets", "nf_conntrack_max"))
    head = [k for k in ("nf_conntrack_buckets", "nf_conntrack_max") if k in keys]
    b = before.get("nf_conntrack_buckets")
    if len(head) == 2 and b is not None and keys["nf_conntrack_buckets"] < b:
        head.reverse()
    return head + rest


class Runtime(object):
    """Read and write nf_conntrack keys under /proc/sys/net/netfilter (below ``root``)."""

    def __init__(self, root):
        self.root = root

    def path(self, key):
        return host_path(self.root, os.path.join(NETFILTER_DIR, key))

    def write_path(self, key):
        path = self.path(key)
        # Before Linux 4.7 the buckets sysctl is read-only; the module parameter resizes too.
        if key == "nf_conntrack_buckets" and not (os.path.exists(path) and os.stat(path).st_mode & 0o222):
            path = host_path(self.root, HASHSIZE_PARAM)
        return path

    def read(self, key):
        value = read_int(self.path(key))
        if key == "nf_conntrack_buckets" and value is None:
            value = read_int(host_path(self.root, HASHSIZE_PARAM))
        return value

    def write(self, key, value):
        with open(self.write_path(key), "w") as f:
            f.write("%d\n" % value)
