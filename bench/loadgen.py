"""An open-loop load: short TCP connections at a constant rate until told to stop.

    loadgen.py HOST PORT RATE_PER_SECOND MAX_SECONDS [CONNECT_TIMEOUT_SECONDS]

Runs inside one of the lab's client namespaces. Unlike ab or wrk (closed loops: a slot whose
SYN was dropped waits, so the offered load falls exactly when the table is full), new
connections keep arriving at the set rate whatever happens to earlier ones, as users do.
Each one sends an HTTP/1.0 GET and reads until the server closes. Non-blocking sockets on
one selector: a few tens of microseconds of CPU per connection, so that the load generator
does not take the cores the gateway and the backend need.

Prints one JSON line per second, cumulative: {"t": unix time, "started", "completed",
"failed"}, and a last line with "final": true. SIGTERM (or MAX_SECONDS) ends the arrivals;
connections in flight get their timeout to finish.
"""
import collections
import errno
import json
import resource
import selectors
import signal
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n"
READ_TIMEOUT_SECONDS = 5.0
# Source ports in turn: the kernel's own choice for connect() moves by small random steps
# (Linux 5.17 and later) and comes back to a port within seconds, which re-opens that
# tuple's TIME_WAIT entry in the gateway instead of adding one. In turn, a port comes
# back only after 64512 / rate seconds.
FIRST_PORT, LAST_PORT = 1024, 65535


class Load(object):
    def __init__(self, host, port, connect_timeout):
        self.addr = (host, port)
        self.connect_timeout = connect_timeout
        self.sel = selectors.DefaultSelector()
        self.stats = {"started": 0, "completed": 0, "failed": 0, "failed_connect": 0}
        # (deadline, entry) per state: one timeout per state, so each queue is in deadline order.
        self.pending = {"connect": collections.deque(), "read": collections.deque()}
        self.open = {}  # fd -> [sock, state, deadline]
        self.next_port = FIRST_PORT

    def start_one(self, now):
        self.stats["started"] += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        for dummy in range(64):
            port, self.next_port = self.next_port, self.next_port + 1 if self.next_port < LAST_PORT else FIRST_PORT
            try:
                sock.bind(("", port))
                break
            except OSError:
                continue  # still held by a socket of ours that has not finished closing
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.stats["failed"] += 1
            return
        entry = [sock, "connect", now + self.connect_timeout]
        self.open[sock.fileno()] = entry
        self.sel.register(sock, selectors.EVENT_WRITE, entry)
        self.pending["connect"].append((entry[2], entry))

    def _finish(self, entry, ok):
        sock = entry[0]
        if entry[1] == "done":
            return
        self.open.pop(sock.fileno(), None)
        self.sel.unregister(sock)
        sock.close()
        if not ok and entry[1] == "connect":
            self.stats["failed_connect"] += 1
        entry[1] = "done"
        self.stats["completed" if ok else "failed"] += 1

    def poll(self, timeout, now):
        for key, events in self.sel.select(timeout):
            entry = key.data
            sock = entry[0]
            if entry[1] == "connect":
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    self._finish(entry, False)
                    continue
                try:
                    sock.send(REQUEST)
                except OSError:
                    self._finish(entry, False)
                    continue
                entry[1] = "read"
                entry[2] = now + READ_TIMEOUT_SECONDS
                self.pending["read"].append((entry[2], entry))
                self.sel.modify(sock, selectors.EVENT_READ, entry)
            elif entry[1] == "read":
                try:
                    data = sock.recv(4096)
                except OSError:
                    self._finish(entry, False)
                    continue
                if not data:
                    self._finish(entry, True)
        for state, queue in self.pending.items():
            while queue and queue[0][0] <= now:
                deadline, entry = queue.popleft()
                if entry[1] == state:
                    self._finish(entry, False)


def _line(stats, **extra):
    out = {"t": round(time.time(), 3)}
    out.update(stats)
    out.update(extra)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def main(host, port, rate, max_seconds, connect_timeout):
    stopped = []
    signal.signal(signal.SIGTERM, lambda *a: stopped.append(1))
    signal.signal(signal.SIGINT, lambda *a: stopped.append(1))
    load = Load(host, port, connect_timeout)
    interval = 1.0 / rate
    start = time.monotonic()
    next_report = start + 1
    n = 0
    while not stopped:
        now = time.monotonic()
        if now - start >= max_seconds:
            break
        if now >= next_report:
            _line(load.stats)
            next_report += 1
        # Start every arrival that is due (open loop: late arrivals are not skipped).
        while start + n * interval <= now:
            load.start_one(now)
            n += 1
        load.poll(max(0.0, min(start + n * interval - time.monotonic(), 0.05)), time.monotonic())
    elapsed = time.monotonic() - start
    drain_until = time.monotonic() + connect_timeout + READ_TIMEOUT_SECONDS + 1
    while load.open and time.monotonic() < drain_until:
        load.poll(0.05, time.monotonic())
    _line(load.stats, final=True, elapsed_seconds=round(elapsed, 3),
          achieved_rate_per_second=round(load.stats["started"] / elapsed, 2) if elapsed else 0)


if __name__ == "__main__":
    # Failing connects wait their timeout: thousands of sockets can be open at once.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]),
         float(sys.argv[5]) if len(sys.argv) > 5 else 0.9)
