"""The NAT lab of the case study: client -> gateway (DNAT, the way `docker run -p` does) -> backend.

Three network namespaces joined by two veth pairs, addresses only on those veths:

    client  10.200.1.1/24  --veth--  10.200.1.254/24  gateway  10.200.2.254/24  --veth--  10.200.2.1/24  backend

The backend runs nginx-light on 10.200.2.1:8080 with its own config in a temp dir.
The gateway forwards (ip_forward=1 inside the gateway namespace only) and, once
``gateway.dnat()`` loaded the ruleset, DNATs 10.200.1.254:8080 to the backend.
Without the ruleset no rule needs conntrack there, so the gateway does not track:
that is the baseline path ``Lab.direct_url`` (same hops, no conntrack, no NAT).

Everything is torn down on exit, whatever happened: nginx by its PID, then the namespaces.
"""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from common import MeasurementError
from support.kernel import Netns, run

CLIENT_ADDR = "10.200.1.1"
GATEWAY_CLIENT_SIDE = "10.200.1.254"
GATEWAY_BACKEND_SIDE = "10.200.2.254"
BACKEND_ADDR = "10.200.2.1"
PORT = 8080

# What `docker run -p 8080:8080` puts in place, in nftables terms: DNAT in prerouting,
# and a forward chain that lets only the published port through.
DNAT_RULESET = """
table ip nclab {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr %(gw)s tcp dport %(port)d dnat to %(backend)s:%(port)d
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ip daddr %(backend)s tcp dport %(port)d ct status dnat accept
    }
}
""" % {"gw": GATEWAY_CLIENT_SIDE, "backend": BACKEND_ADDR, "port": PORT}

NGINX_CONF = """
daemon off;
master_process on;
worker_processes %(workers)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; multi_accept on; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    keepalive_timeout 0;
    server {
        listen %(addr)s:%(port)d backlog=8192 reuseport;
        location / { return 200 "ok\\n"; }
    }
}
"""

STAT_PATH = "/proc/net/stat/nf_conntrack"
TABLE_FULL = "nf_conntrack: table full"


class Lab(object):
    """client, gateway and backend namespaces with nginx on the backend.

    ``with Lab() as lab:`` builds it; leaving the block removes all of it.
    """

    def __init__(self, nginx_workers=1, prefix="nclab"):
        self.nginx_workers = nginx_workers
        self.client = Netns(prefix + "c", track=False)
        self.gateway = Netns(prefix + "g", track=False)
        self.backend = Netns(prefix + "b", track=False)
        self._stack = None
        self._tmp = None
        self.nginx = None
        self.nat = False

    @property
    def direct_url(self):
        """The backend itself, routed through the gateway: no NAT, no conntrack."""
        return "http://%s:%d/" % (BACKEND_ADDR, PORT)

    @property
    def nat_url(self):
        """The published port on the gateway, DNATed to the backend."""
        return "http://%s:%d/" % (GATEWAY_CLIENT_SIDE, PORT)

    def _namespaces(self):
        return (self.client, self.gateway, self.backend)

    def __enter__(self):
        self._stack = contextlib.ExitStack()
        try:
            for ns in self._namespaces():
                self._stack.enter_context(ns)
            self._stack.callback(self._remove_tmp)
            self._wire()
            self._stack.callback(self._stop_nginx)
            self._start_nginx()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc):
        # ExitStack unwinds in reverse: nginx, temp dir, then the namespaces.
        self._stack.close()

    # --- wiring -----------------------------------------------------------
    def _veth(self, a, a_if, a_addr, b, b_if, b_addr):
        # Created in the initial namespace under unique names, then moved and renamed.
        tag = "ncl%s%d" % (a_if, os.getpid() % 100000)
        tmp_a, tmp_b = tag + "a", tag + "b"
        run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        try:
            run(["ip", "link", "set", tmp_a, "netns", a.name, "name", a_if])
            run(["ip", "link", "set", tmp_b, "netns", b.name, "name", b_if])
        except Exception:
            run(["ip", "link", "del", tmp_a], check=False)
            raise
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            ns.exec(["ip", "addr", "add", addr + "/24", "dev", ifname])
            ns.exec(["ip", "link", "set", ifname, "up"])

    def _wire(self):
        self._veth(self.client, "c0", CLIENT_ADDR, self.gateway, "g0", GATEWAY_CLIENT_SIDE)
        self._veth(self.gateway, "g1", GATEWAY_BACKEND_SIDE, self.backend, "b0", BACKEND_ADDR)
        self.client.exec(["ip", "route", "add", "10.200.2.0/24", "via", GATEWAY_CLIENT_SIDE])
        self.backend.exec(["ip", "route", "add", "10.200.1.0/24", "via", GATEWAY_BACKEND_SIDE])
        # Forwarding inside the gateway namespace only; the host's own value is untouched.
        self.gateway.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        # A new connection per request: give ab the whole port range, and let the
        # backend, which closes first, reuse its TIME_WAIT tuples.
        self.client.exec(["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"])
        self.client.exec(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])
        for ns in (self.client, self.backend):
            ns.exec(["sysctl", "-qw", "net.core.somaxconn=8192"])
            ns.exec(["sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=8192"])

    # --- nginx ------------------------------------------------------------
    def _start_nginx(self):
        self._tmp = tempfile.mkdtemp(prefix="nclab-nginx-")
        os.chmod(self._tmp, 0o755)
        conf = os.path.join(self._tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"dir": self._tmp, "workers": self.nginx_workers,
                                  "addr": BACKEND_ADDR, "port": PORT})
        log = open(os.path.join(self._tmp, "stderr.log"), "w")
        # `ip netns exec` execs nginx in place, so this PID is the nginx master's.
        self.nginx = self.backend.popen(["nginx", "-c", conf, "-p", self._tmp, "-e", os.path.join(self._tmp, "error.log")],
                                        stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                raise RuntimeError("nginx exited: %s" % self._read_tmp("stderr.log") + self._read_tmp("error.log"))
            if self.backend.exec(["ss", "-Hltn", "src", "%s:%d" % (BACKEND_ADDR, PORT)]).stdout.strip():
                return
            time.sleep(0.05)
        raise RuntimeError("nginx did not listen on %s:%d" % (BACKEND_ADDR, PORT))

    def _read_tmp(self, name):
        try:
            with open(os.path.join(self._tmp, name)) as f:
                return f.read()
        except OSError:
            return ""

    def _stop_nginx(self):
        proc, self.nginx = self.nginx, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGQUIT)  # graceful stop of the master we started, by its PID
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def _remove_tmp(self):
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # --- the gateway's state ----------------------------------------------
    def dnat(self):
        """Publish the port: load the DNAT ruleset, which makes the gateway track."""
        self.gateway.nft("flush ruleset\n" + DNAT_RULESET)
        self.nat = True

    def no_ruleset(self):
        """Remove every rule from the gateway, so that conntrack stops tracking there."""
        self.gateway.nft("flush ruleset\n")
        self.nat = False

    def flush_table(self):
        """Empty the gateway's conntrack table between phases (entries of a phase live 120 s)."""
        self.gateway.conntrack("-F", check=False)

    def gateway_count(self):
        return gateway_count(self.gateway)

    def gateway_stats(self):
        return read_stats(self.gateway)


class MultiClientLab(Lab):
    """The same lab with N client namespaces on a bridge in the gateway (issue 14).

    One client address gives at most ~64k source ports towards the one published port, and
    a reused tuple re-opens its old TIME_WAIT entry instead of adding one: the table could
    never pass ~64k per client. Client i is 10.200.1.(i+1)/24, its veth's other end is a
    port of the bridge ``br0`` in the gateway namespace, which holds 10.200.1.254/24.
    Everything stays inside the lab's namespaces.

    ``syn_retries`` (per client namespace; the kernel's least is 1): with a client that gives
    up before the first retransmission (1 s, the initial RTO), a dropped SYN is one refused
    attempt, so that the gateway's ``drop`` counter counts flows, not packets.
    """

    def __init__(self, clients=16, nginx_workers=1, prefix="nclab", syn_retries=1):
        super(MultiClientLab, self).__init__(nginx_workers=nginx_workers, prefix=prefix)
        if not 1 <= clients <= 200:
            raise ValueError("clients must be 1..200, got %r" % clients)
        self.clients = [self.client] + [Netns(prefix + "c%d" % i, track=False) for i in range(1, clients)]
        self.syn_retries = syn_retries

    def _namespaces(self):
        return self.clients + [self.gateway, self.backend]

    def client_addr(self, i):
        return "10.200.1.%d" % (i + 1)

    def _wire(self):
        gw = self.gateway
        gw.exec(["ip", "link", "add", "br0", "type", "bridge"])
        gw.exec(["ip", "addr", "add", GATEWAY_CLIENT_SIDE + "/24", "dev", "br0"])
        gw.exec(["ip", "link", "set", "br0", "up"])
        for i, client in enumerate(self.clients):
            tag = "ncm%d_%d" % (os.getpid() % 10000, i)
            run(["ip", "link", "add", tag + "a", "type", "veth", "peer", "name", tag + "b"])
            try:
                run(["ip", "link", "set", tag + "a", "netns", client.name, "name", "c0"])
                run(["ip", "link", "set", tag + "b", "netns", gw.name, "name", "p%d" % i])
            except Exception:
                run(["ip", "link", "del", tag + "a"], check=False)
                raise
            client.exec(["ip", "addr", "add", self.client_addr(i) + "/24", "dev", "c0"])
            client.exec(["ip", "link", "set", "c0", "up"])
            gw.exec(["ip", "link", "set", "p%d" % i, "master", "br0", "up"])
            client.exec(["ip", "route", "add", "10.200.2.0/24", "via", GATEWAY_CLIENT_SIDE])
            client.exec(["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"])
            client.exec(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])
            client.exec(["sysctl", "-qw", "net.ipv4.tcp_syn_retries=%d" % self.syn_retries])
        self._veth(self.gateway, "g1", GATEWAY_BACKEND_SIDE, self.backend, "b0", BACKEND_ADDR)
        self.backend.exec(["ip", "route", "add", "10.200.1.0/24", "via", GATEWAY_BACKEND_SIDE])
        self.gateway.exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for key in ("net.core.somaxconn=8192", "net.ipv4.tcp_max_syn_backlog=8192"):
            self.backend.exec(["sysctl", "-qw", key])


def gateway_count(ns):
    return int(ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]).stdout.strip())


def read_stats(ns=None):
    """Totals over CPUs of /proc/net/stat/nf_conntrack (per namespace), as ints."""
    if ns is None:
        with open(STAT_PATH) as f:
            text = f.read()
    else:
        text = ns.exec(["cat", STAT_PATH]).stdout
    return parse_stats(text)


def parse_stats(text):
    """The totals of one stat file's text (per-CPU rows in hex): entries as it is, the rest summed."""
    lines = text.split("\n")
    header = lines[0].split()
    totals = dict.fromkeys(header, 0)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) != len(header):
            continue
        for name, value in zip(header, fields):
            if name != "entries":  # the same global count on every row
                totals[name] += int(value, 16)
            else:
                totals[name] = int(value, 16)
    return totals


def stat_delta(before, after, keys=("drop", "insert_failed", "early_drop", "new", "invalid")):
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


def table_full_lines():
    """Lines in the kernel log that say the table was full (rate-limited by the kernel)."""
    res = run(["dmesg"], check=False)
    return [line for line in res.stdout.splitlines() if TABLE_FULL in line]


class KernelLogCounter(object):
    """Counts table-full messages logged since start(), from dmesg (the ring buffer may wrap)."""

    def start(self):
        self._seen = set(table_full_lines())
        return self

    def count(self):
        return len([line for line in table_full_lines() if line not in self._seen])


# --- ab -----------------------------------------------------------------

AB_NUMBERS = {
    "complete_requests": re.compile(r"^Complete requests:\s+(\d+)", re.M),
    "failed_requests": re.compile(r"^Failed requests:\s+(\d+)", re.M),
    "requests_per_second": re.compile(r"^Requests per second:\s+([\d.]+)", re.M),
    "time_taken_seconds": re.compile(r"^Time taken for tests:\s+([\d.]+) seconds", re.M),
    "connect_mean_ms": re.compile(r"^Connect:\s+\d+\s+(\d+)", re.M),
    "total_mean_ms": re.compile(r"^Total:\s+\d+\s+(\d+)", re.M),
    "non_2xx": re.compile(r"^Non-2xx responses:\s+(\d+)", re.M),
}
AB_ABORTED_AFTER = re.compile(r"Total of (\d+) requests completed")
AB_TIMEOUT = "apr_pollset_poll: The timeout specified has expired"


def run_ab(ns, url, requests, concurrency, timeout_seconds=2, wall_limit_seconds=600):
    """Run ab in namespace ns with a new connection per request (no -k).

    ab exits non-zero when a request times out (the broken phase): that is a
    result, not an error, and is returned with what ab managed to do.
    """
    cmd = ["ab", "-q", "-n", str(requests), "-c", str(concurrency), "-s", str(timeout_seconds), "-S", "-d", url]
    start = time.monotonic()
    res = ns.exec(cmd, check=False, timeout=wall_limit_seconds)
    wall = time.monotonic() - start
    return parse_ab(res.stdout, res.stderr, res.returncode, wall, requests, concurrency)


def parse_ab(stdout, stderr, returncode, wall_seconds, requests, concurrency):
    out = {"requests": requests, "concurrency": concurrency, "exit_code": returncode,
           "wall_seconds": round(wall_seconds, 3), "timed_out": AB_TIMEOUT in stderr,
           "error": stderr.strip().splitlines()[-1] if returncode and stderr.strip() else None}
    for key, rx in AB_NUMBERS.items():
        m = rx.search(stdout)
        if m:
            out[key] = float(m.group(1)) if "." in m.group(1) or key.endswith("second") else int(m.group(1))
    if "complete_requests" not in out:
        # ab aborted: it prints only how far it got, so the rate is ours to compute.
        m = AB_ABORTED_AFTER.search(stdout + stderr)
        if not m:
            # Not an abort under load: ab did not run, or died before its first report.
            raise MeasurementError("ab exited %s without figures: %s" % (
                returncode, (stderr.strip() or stdout.strip() or "no output")[-300:]))
        done = int(m.group(1))
        out.update({"complete_requests": done, "failed_requests": requests - done, "aborted": True,
                    "requests_per_second": round(done / wall_seconds, 1) if wall_seconds else 0.0})
    else:
        out["aborted"] = False
    return out
