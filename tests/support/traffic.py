"""Traffic that builds a known conntrack table inside a test namespace.

Run as a script inside the namespace (``ip netns exec NS python3 -m ...`` or by path):

    traffic.py tcp N [PORT]     open N TCP connections to 127.0.0.1:PORT and hold them
                                until stdin closes; prints "ready N" once all are up.
    traffic.py udp N [TIMEOUT]  send one datagram from N distinct (address, port) flows
                                to 127.0.0.0/8 and exit; prints "sent N".

Loopback only: nothing leaves the namespace.
"""
import contextlib
import os
import socket
import subprocess
import sys

HERE = os.path.abspath(__file__)
# 127.0.0.x destinations times these ports give the distinct UDP flows.
UDP_PORTS = range(1024, 65536)


def hold_tcp(n, port=0):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(min(n + 16, 4096))
    port = srv.getsockname()[1]
    clients, accepted = [], []
    for dummy in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        clients.append(c)
        accepted.append(srv.accept()[0])
    sys.stdout.write("ready %d %d\n" % (n, port))
    sys.stdout.flush()
    sys.stdin.read()  # hold until the test closes our stdin
    for s in clients + accepted:
        s.close()


def send_udp(n):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"x"
    sent = 0
    per_addr = len(UDP_PORTS)
    while sent < n:
        host = "127.0.%d.%d" % ((1 + sent // per_addr) // 250, 1 + (sent // per_addr) % 250)
        for port in UDP_PORTS:
            if sent >= n:
                break
            with contextlib.suppress(OSError):
                sock.sendto(payload, (host, port))
            sent += 1
    sys.stdout.write("sent %d\n" % sent)


# nft rules for the UDP fill: drop the datagrams after conntrack confirmed them on
# output, so that no ICMP port-unreachable storm follows.
UDP_FILL_RULESET = """
table inet nctest {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state established,related accept
        meta l4proto udp drop
    }
}
"""


@contextlib.contextmanager
def tcp_connections(ns, n):
    """Hold n established TCP connections inside Netns ns; yields the server port."""
    proc = ns.popen([sys.executable, HERE, "tcp", str(n)], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, universal_newlines=True)
    try:
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("tcp holder did not come up: %r" % line)
        yield int(line[2])
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def udp_fill(ns, n, udp_timeout=3600, workers=2):
    """Create about n UNREPLIED UDP entries in Netns ns that live udp_timeout seconds.

    The namespace should carry UDP_FILL_RULESET. Work is split across processes,
    each with its own source port, so that 1M entries take seconds, not minutes.
    """
    ns.sysctl("nf_conntrack_udp_timeout", udp_timeout)
    share = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    procs = [ns.popen([sys.executable, HERE, "udp", str(k)], stdout=subprocess.PIPE,
                      universal_newlines=True) for k in share if k]
    total = 0
    for p in procs:
        out = p.communicate(timeout=600)[0]
        total += int(out.split()[1])
    return total


if __name__ == "__main__":
    kind, count = sys.argv[1], int(sys.argv[2])
    if kind == "tcp":
        hold_tcp(count, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif kind == "udp":
        send_udp(count)
    else:
        sys.exit("unknown traffic kind %r" % kind)
