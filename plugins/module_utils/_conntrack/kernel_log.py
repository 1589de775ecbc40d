# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Table-full events in the kernel log: /dev/kmsg, else dmesg, else the journal.

Private to this collection: not an API.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import errno
import os
import re

TABLE_FULL = re.compile(r"table full(?: in netns (\d+))?, dropping packet")
DMESG_TIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


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
    # The fallbacks, in order: (source, argv); both print "[seconds] message" lines.
    for source, argv in (("dmesg", ["dmesg"]),
                         ("journal", ["journalctl", "-k", "-b", "--no-pager", "-q", "-o", "short-monotonic"])):
        if records is not None:
            break
        res = r.command(argv)
        if res is None:
            failures.append("%s: not installed" % argv[0])
        elif res[0] != 0:
            failures.append("%s: %s" % (argv[0], res[2].strip() or res[0]))
        else:
            records = list(_dmesg_records(res[1]))
            result["source"] = source
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
