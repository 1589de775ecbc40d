"""The table walk: counts per family, protocol, TCP state and flag, top sources, the cap."""
import io
import os
import signal
import subprocess
import sys
import threading

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import table

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures")
LINUX_618 = os.path.join(FIXTURES, "linux-6.18", "proc", "net", "nf_conntrack")
LINUX_419 = os.path.join(FIXTURES, "linux-4.19", "proc", "net", "nf_conntrack")
CONNTRACK_L = os.path.join(FIXTURES, "linux-6.18", "conntrack-L-extended.txt")


def test_recorded_ipv4_ipv6_tcp_udp_icmp_lines_are_counted():
    t = table.walk_proc(LINUX_618)
    assert t["entries_read"] == 7
    assert t["by_family"] == {"ipv4": 4, "ipv6": 3}
    assert t["by_protocol"] == {"tcp": 3, "udp": 2, "icmp": 1, "icmpv6": 1}
    assert t["tcp_states"] == {"ESTABLISHED": 2, "TIME_WAIT": 1}
    assert t["assured"] == 3
    assert t["unreplied"] == 2
    assert t["truncated"] is False
    assert t["source"] == "proc"


def test_proc_and_conntrack_tool_output_give_the_same_summary():
    from_proc = table.walk_proc(LINUX_618)
    with open(CONNTRACK_L, "rb") as f:
        from_tool = table.summarize_stream(f.read).result("proc")
    assert from_proc == from_tool


def test_ipv6_sources_are_compressed_like_conntrack_tools():
    t = table.walk_proc(LINUX_618, top_sources=2)
    assert t["top_sources"] == [{"address": "127.0.0.1", "count": 4}, {"address": "::1", "count": 3}]


def test_entry_without_timeout_keeps_its_state_and_is_counted():
    t = table.walk_proc(LINUX_419)
    assert t["without_timeout"] == 1
    assert t["tcp_states"] == {"ESTABLISHED": 3, "TIME_WAIT": 1, "SYN_SENT": 1}
    assert t["by_protocol"] == {"tcp": 5, "udp": 2, "icmp": 1, "gre": 1}
    assert t["top_sources"][0] == {"address": "10.1.0.5", "count": 4}
    assert {"address": "2001:db8::5", "count": 2} in t["top_sources"]


def test_limit_stops_the_walk_and_says_truncated():
    t = table.walk_proc(LINUX_419, limit=3)
    assert t["entries_read"] == 3
    assert t["truncated"] is True
    assert t["limit"] == 3
    assert sum(t["by_protocol"].values()) == 3


def test_limit_equal_to_the_table_is_not_truncated():
    t = table.walk_proc(LINUX_419, limit=9)
    assert t["entries_read"] == 9
    assert t["truncated"] is False


def test_empty_table_gives_zero_counts():
    t = table.summarize_stream(io.BytesIO(b"").read).result("proc")
    assert t["entries_read"] == 0
    assert t["by_protocol"] == {} and t["top_sources"] == []


def test_lines_split_across_chunk_boundaries_are_counted_once(monkeypatch):
    monkeypatch.setattr(table, "CHUNK_BYTES", 37)  # forces cuts in mid-line
    with open(LINUX_419, "rb") as f:
        data = f.read()
    t = table.summarize_stream(io.BytesIO(data).read).result("proc")
    assert t["entries_read"] == 9
    assert t["assured"] == 5
    assert t["by_protocol"]["tcp"] == 5


def test_last_line_without_newline_is_counted():
    with open(LINUX_618, "rb") as f:
        data = f.read().rstrip(b"\n")
    t = table.summarize_stream(io.BytesIO(data).read).result("proc")
    assert t["entries_read"] == 7


def test_many_distinct_sources_keep_memory_bounded_and_mark_the_top_approximate(monkeypatch):
    monkeypatch.setattr(table, "SOURCE_CAP", 50)
    lines = [b"ipv4     2 udp      17 29 src=10.0.%d.%d dst=10.9.9.9 sport=1 dport=2 [UNREPLIED] src=x"
             % (i // 256, i % 256) for i in range(500)]
    lines += [b"ipv4     2 udp      17 29 src=10.255.0.1 dst=10.9.9.9 sport=1 dport=2 [UNREPLIED] src=x"] * 40
    s = table.summarize_stream(io.BytesIO(b"\n".join(lines) + b"\n").read, top_sources=1)
    assert len(s._sources) <= 50
    t = s.result("proc")
    assert t["top_sources_approximate"] is True
    assert t["top_sources"] == [{"address": "10.255.0.1", "count": 40}]
    assert t["entries_read"] == 540 and t["unreplied"] == 540


def test_conntrack_fallback_streams_the_tool_output():
    argv = [sys.executable, "-c", "import sys; sys.stdout.write(open(sys.argv[1]).read())", CONNTRACK_L]
    t = table.walk_conntrack(argv)
    assert t["source"] == "conntrack"
    assert t["entries_read"] == 7


def test_conntrack_fallback_failure_raises_oserror():
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('nope'); sys.exit(1)"]
    with pytest.raises(OSError, match="nope"):
        table.walk_conntrack(argv)


def test_conntrack_fallback_stops_the_tool_at_the_cap():
    argv = [sys.executable, "-c", "import sys\nwhile True: sys.stdout.write(open(sys.argv[1]).read())", CONNTRACK_L]
    t = table.walk_conntrack(argv, limit=100)
    assert t["entries_read"] == 100 and t["truncated"] is True


def test_a_line_without_a_reply_tuple_falls_back_to_per_line_parsing():
    with open(LINUX_419, "rb") as f:
        data = f.read()
    odd = b"ipv4     2 tcp      6 60 SYN_SENT src=10.9.9.9 dst=10.1.0.1 sport=1 dport=2 mark=0 use=1\n"
    aligned = table.summarize_stream(io.BytesIO(data).read).result("proc")
    mixed = table.summarize_stream(io.BytesIO(odd + data).read).result("proc")
    assert mixed["entries_read"] == aligned["entries_read"] + 1
    assert mixed["tcp_states"]["SYN_SENT"] == aligned["tcp_states"]["SYN_SENT"] + 1
    assert mixed["by_family"]["ipv6"] == aligned["by_family"]["ipv6"]
    assert {"address": "10.9.9.9", "count": 1} in mixed["top_sources"]


def test_a_table_read_one_page_at_a_time_gives_the_same_walk(tmp_path, monkeypatch):
    # /proc answers every read with one page whatever is asked; blocks span many pages.
    data = open(LINUX_419, "rb").read() * 50
    path = tmp_path / "nf_conntrack"
    path.write_bytes(data)
    monkeypatch.setattr(table, "CHUNK_BYTES", 4096 * 3)
    pages = io.BytesIO(data)
    paged = table.summarize_blocks(table._filled_blocks(lambda view: pages.readinto(view[:4096]))).result("proc")
    assert paged == table.walk_proc(str(path)) == table.summarize_stream(io.BytesIO(data).read).result("proc")


def test_a_read_error_in_the_read_ahead_thread_reaches_the_walk():
    def failing():
        yield b"ipv4     2 udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 mark=0 use=1\n"
        raise OSError("the table went away")
    blocks = table._ReadAhead(failing())
    try:
        with pytest.raises(OSError, match="went away"):
            table.summarize_blocks(blocks)
    finally:
        blocks.close()


def test_the_read_ahead_thread_stops_when_the_cap_ends_the_walk(tmp_path):
    path = tmp_path / "nf_conntrack"
    path.write_bytes(open(LINUX_419, "rb").read() * 20000)
    interval, threads = sys.getswitchinterval(), threading.active_count()
    t = table.walk_proc(str(path), limit=5)
    assert t["entries_read"] == 5 and t["truncated"] is True
    assert sys.getswitchinterval() == interval and threading.active_count() == threads


def _no_cat(*args, **kwargs):
    raise OSError(2, "No such file or directory: 'cat'")


def test_without_cat_the_walk_reads_the_file_itself_with_the_same_result(tmp_path):
    path = tmp_path / "nf_conntrack"
    path.write_bytes(open(LINUX_419, "rb").read() * 300)
    assert table.walk_proc(str(path), popen=_no_cat) == table.walk_proc(str(path))
    assert table.walk_proc(str(path), limit=7, popen=_no_cat) == table.walk_proc(str(path), limit=7)


def test_the_reading_cat_gets_the_file_opened_by_the_walk_and_is_reaped(tmp_path):
    # The walk opens the file (in the caller's namespace) and gives cat only the descriptor.
    path = tmp_path / "nf_conntrack"
    path.write_bytes(open(LINUX_419, "rb").read())
    started = []

    def recording_popen(argv, **kwargs):
        assert argv == ["cat"] and "shell" not in kwargs
        assert os.path.samefile("/proc/self/fd/%d" % kwargs["stdin"].fileno(), str(path))
        proc = subprocess.Popen(argv, **kwargs)
        started.append(proc)
        return proc
    assert table.walk_proc(str(path), popen=recording_popen) == table.walk_proc(str(path), popen=_no_cat)
    assert len(started) == 1 and started[0].returncode == 0 and started[0].stdout.closed


def test_the_cap_stops_the_reading_cat(tmp_path):
    path = tmp_path / "nf_conntrack"
    path.write_bytes(open(LINUX_419, "rb").read() * 20000)
    started = []

    def recording_popen(argv, **kwargs):
        started.append(subprocess.Popen(argv, **kwargs))
        return started[-1]
    t = table.walk_proc(str(path), limit=5, popen=recording_popen)
    assert t["entries_read"] == 5 and t["truncated"] is True
    # Killed while it still had the rest of the file to write (more than the pipe holds), and reaped.
    assert path.stat().st_size > 4 * table.PIPE_BYTES
    assert started[0].returncode == -signal.SIGKILL


def test_a_reader_that_fails_is_an_error_not_a_short_table(tmp_path):
    path = tmp_path / "nf_conntrack"
    path.write_bytes(open(LINUX_419, "rb").read())

    def failing_popen(argv, **kwargs):
        return subprocess.Popen(["sh", "-c", "head -c 300; echo 'cat: read error: Input/output error' >&2; exit 1"],
                                **kwargs)
    with pytest.raises(OSError, match="Input/output error"):
        table.walk_proc(str(path), popen=failing_popen)
