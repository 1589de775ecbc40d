# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stream and summarise the conntrack table with bounded memory.

Private to this collection: not an API.

``/proc/net/nf_conntrack`` and ``conntrack -L -o extended`` print the same line
format::

    ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=... [ASSURED] mark=0 use=1
    ipv4     2 udp      17 29 src=10.0.0.1 dst=... [UNREPLIED] src=... mark=0 use=1
    ipv4     2 tcp      6 ESTABLISHED src=...        (offloaded: no timeout)

/proc's seq_file answers every read with one page (4 KiB) at most, whatever size
is asked, and formatting those pages is most of what reading the table costs. So
the walk hands the open file to a ``cat`` of its own, which does those reads on
the other core and writes them into a pipe of a megabyte, while Python counts
the blocks it takes from the pipe: the kernel's formatting and the counting run
side by side, and the walk costs about what the slower of the two does. (A
reading thread cannot do that: every page read needs the GIL back, and counting
a block holds it.) Without ``cat`` the walk reads the file itself. Each block
then costs a few C calls: newlines become ``" src="``, one split gives per line
the part before its first ``" src="`` (family, protocol, timeout, state: it
repeats a lot and is counted as a whole, then parsed once per distinct value at
the end), the original source address and the rest; flags are counted with
``bytes.count``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import errno
import io
import ipaddress
import subprocess
import sys
import threading

try:
    import queue
except ImportError:  # Python 2, for the sanity import test
    import Queue as queue  # pylint: disable=import-error

CHUNK_BYTES = 1 << 20
# Blocks read ahead and not yet counted; with the block in hand this bounds the walk's memory.
READ_AHEAD_BLOCKS = 2
# The reading thread needs the GIL back after every page it reads: with Python's default
# 5 ms switch interval it would wait for most of each block's counting, so the kernel
# would format nothing meanwhile. A short interval hands it over promptly during the walk.
SWITCH_INTERVAL_SECONDS = 0.0001
# The pipe between the reading cat and the walk holds this much (Linux's F_SETPIPE_SZ, which
# Python names only from 3.10 on), so that cat rarely waits for the walk to take a block.
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031
READER_ARGV = ["cat"]
# Distinct source addresses kept while walking. Past it the rarest are dropped,
# which keeps memory bounded on tables with millions of sources; the top list is
# then marked approximate.
SOURCE_CAP = 100000

PROC_TABLE = "/proc/net/nf_conntrack"
CONNTRACK_ARGV = ["conntrack", "-L", "-o", "extended"]

_ASSURED = b"[ASSURED]"
_UNREPLIED = b"[UNREPLIED]"
_SRC = b" src="


def _text(value):
    return value.decode("ascii", "replace")


def _normal_address(address):
    # /proc prints IPv6 in full hex groups, conntrack-tools compresses them.
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


class TableSummary(object):
    """Accumulates counts over chunks of complete lines."""

    def __init__(self, limit=None, top_sources=10):
        self.limit = limit
        self.top_sources = top_sources
        self.entries = 0
        self.assured = 0
        self.unreplied = 0
        self.truncated = False
        self.approximate = False
        self._heads = collections.Counter()
        self._sources = collections.Counter()

    @property
    def full(self):
        return self.limit is not None and self.entries >= self.limit

    def feed(self, block):
        """Count one block of complete lines (it must end at a line boundary)."""
        lines = block.count(b"\n")
        if self.limit is not None and self.entries + lines > self.limit:
            keep = max(self.limit - self.entries, 0)
            cut = 0
            for dummy in range(keep):
                cut = block.index(b"\n", cut) + 1
            block, lines = block[:cut], keep
            self.truncated = True
        self.entries += lines
        self.assured += block.count(_ASSURED)
        self.unreplied += block.count(_UNREPLIED)
        # Fast path: every entry has exactly two " src=" (original and reply tuple); with each
        # newline turned into one more, one split gives three segments per line: the head,
        # the original source address and its tuple, the reply tuple.
        segments = block.replace(b"\n", _SRC).split(_SRC)
        if len(segments) == 3 * lines + 1:
            heads = segments[0:-1:3]
            sources = [seg[:seg.find(b" ")] for seg in segments[1::3]]
        else:
            parts = [line.partition(_SRC) for line in block.split(b"\n")[:lines]]
            heads = [p[0] for p in parts if p[1]]
            sources = [p[2][:p[2].find(b" ")] for p in parts if p[1]]
        self._heads.update(heads)
        counter = self._sources
        counter.update(sources)
        if len(counter) > SOURCE_CAP:
            keep_top = counter.most_common(SOURCE_CAP // 2)
            counter.clear()
            counter.update(dict(keep_top))
            self.approximate = True

    def result(self, source):
        by_family = collections.Counter()
        by_protocol = collections.Counter()
        tcp_states = collections.Counter()
        no_timeout = 0
        for head, count in self._heads.items():
            words = head.split()
            if len(words) < 4:
                continue
            family, proto = _text(words[0]), _text(words[2])
            by_family[family] += count
            by_protocol[proto] += count
            rest = words[4:]
            if rest and rest[0].isdigit():
                rest = rest[1:]
            else:
                no_timeout += count
            if proto == "tcp" and rest:
                tcp_states[_text(rest[0])] += count
        top = collections.Counter()
        for address, count in self._sources.most_common(max(self.top_sources, 0) * 2 + 10):
            top[_normal_address(_text(address))] += count
        return {
            "walked": True,
            "source": source,
            "entries_read": self.entries,
            "limit": self.limit,
            "truncated": self.truncated,
            "by_family": dict(by_family),
            "by_protocol": dict(by_protocol),
            "tcp_states": dict(tcp_states),
            "assured": self.assured,
            "unreplied": self.unreplied,
            "without_timeout": no_timeout,
            "top_sources": [{"address": a, "count": c} for a, c in top.most_common(max(self.top_sources, 0))],
            "top_sources_approximate": self.approximate,
        }


def _blocks(read):
    """The stream as blocks of at least CHUNK_BYTES (the last one may be shorter): seq_file
    returns one page per read, so the pages are joined and counted a block at a time."""
    parts, size = [], 0
    while True:
        data = read(CHUNK_BYTES)
        if not data:
            break
        parts.append(data)
        size += len(data)
        if size >= CHUNK_BYTES:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def _filled_blocks(readinto):
    """_blocks for a raw file: each read lands in place in one reused buffer, so that the
    40 thousand page-sized reads of a big table allocate nothing."""
    buf = bytearray(CHUNK_BYTES)
    view = memoryview(buf)
    pos = 0
    while True:
        n = readinto(view[pos:])
        if not n:
            break
        pos += n
        if pos == CHUNK_BYTES:
            yield bytes(buf)
            pos = 0
    if pos:
        yield bytes(view[:pos])


class _ReadAhead(object):
    """Iterates over ``blocks`` made by a thread of its own, at most READ_AHEAD_BLOCKS
    ahead. close() stops the thread and waits for it."""

    def __init__(self, blocks):
        self._queue = queue.Queue(READ_AHEAD_BLOCKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(blocks,))
        self._thread.daemon = True
        self._thread.start()

    def _fill(self, blocks):
        try:
            for block in blocks:
                if self._stop.is_set():
                    return
                self._queue.put(block)
            self._queue.put(None)
        except Exception as exc:  # handed to the reading side, which raises it
            self._queue.put(exc)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is None:
            self._queue.put(None)  # the end stays the end
            raise StopIteration
        if isinstance(item, Exception):
            raise item
        return item

    next = __next__

    def close(self):
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)  # unblocks a put waiting for room
            except queue.Empty:
                pass
        self._thread.join()


def summarize_blocks(blocks, limit=None, top_sources=10):
    """Walk an iterator of byte blocks; returns a TableSummary."""
    summary = TableSummary(limit=limit, top_sources=top_sources)
    tail = b""
    for block in blocks:
        block = tail + block
        cut = block.rfind(b"\n") + 1
        tail = block[cut:]
        if cut:
            summary.feed(block[:cut])
        if summary.full:
            break
    if tail and not summary.full:
        summary.feed(tail + b"\n")
    if summary.full and not summary.truncated:
        # Exactly at the cap: say truncated only if anything is left.
        more = tail or next(blocks, b"")[:1]
        summary.truncated = bool(more and more.strip())
    return summary


def summarize_stream(read, limit=None, top_sources=10):
    """Walk a byte stream given by ``read(size)``; returns a TableSummary."""
    return summarize_blocks(_blocks(read), limit, top_sources)


def _set_pipe_size(fd):
    try:
        import fcntl
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError, IOError):
        pass  # a smaller pipe only means more, shorter reads


def _end_reader(proc, finished):
    """Stops (when the walk stopped early) and reaps the cat this walk started; raises what
    it reported when it failed before the walk had read everything."""
    if not finished and proc.poll() is None:
        proc.kill()  # only the child we started: the cap (or an error) ended the walk first
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    rc = proc.wait()
    if finished and rc != 0:
        raise OSError(errno.EIO, "reading the table through %s failed (exit %s): %s"
                      % (READER_ARGV[0], rc, _text(err).strip()))


def walk_proc(path, limit=None, top_sources=10, popen=subprocess.Popen):
    with open(path, "rb", buffering=0) as stream:
        try:
            # The file is opened here, so a namespace's table stays that namespace's.
            proc = popen(list(READER_ARGV), stdin=stream, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         bufsize=0, close_fds=True)
        except OSError:
            return _walk_in_process(stream, limit, top_sources)
        summary = None
        try:
            _set_pipe_size(proc.stdout.fileno())
            pipe = io.FileIO(proc.stdout.fileno(), "rb", closefd=False)
            summary = summarize_blocks(_filled_blocks(pipe.readinto), limit, top_sources)
        finally:
            _end_reader(proc, finished=summary is not None and not summary.full)
        return summary.result("proc")


def _walk_in_process(stream, limit, top_sources):
    """The walk without a cat: a thread of ours reads while the walk counts."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    blocks = _ReadAhead(_filled_blocks(stream.readinto))
    try:
        return summarize_blocks(blocks, limit, top_sources).result("proc")
    finally:
        blocks.close()
        sys.setswitchinterval(previous)


def walk_conntrack(argv=None, limit=None, top_sources=10, popen=subprocess.Popen):
    """Fallback: ``conntrack -L -o extended`` (argv list, never a shell), streamed."""
    proc = popen(list(argv or CONNTRACK_ARGV), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        summary = summarize_stream(proc.stdout.read, limit, top_sources)
    finally:
        if proc.poll() is None:
            proc.kill()  # only the child we started, when the cap stopped the walk early
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        rc = proc.wait()
    if rc != 0 and not summary.truncated:
        raise OSError("%s exited with %s: %s" % (" ".join(argv or CONNTRACK_ARGV), rc, _text(err).strip()))
    return summary.result("conntrack")
