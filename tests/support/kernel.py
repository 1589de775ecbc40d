"""Safe access to the live kernel for tests.

Every test that touches the conntrack table or a global sysctl holds one
machine-wide lock, so that test runs from several checkouts (or CI and a
developer) never see each other's global max. Global values are saved and
restored in ``finally`` blocks, even when the test fails.
"""
import contextlib
import fcntl
import itertools
import os
import subprocess
import time

NETFILTER = "/proc/sys/net/netfilter"
HASHSIZE = "/sys/module/nf_conntrack/parameters/hashsize"
LOCK_PATH = "/run/lock/netfilter-conntrack-tests.lock"
# Global in the initial namespace, read-only elsewhere.
GLOBAL_KEYS = ("nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_expect_max")


def sysctl_path(key):
    return key if key.startswith("/") else os.path.join(NETFILTER, key)


def read_value(key):
    with open(sysctl_path(key)) as f:
        return f.read().strip()


def read_int(key):
    return int(read_value(key))


def write_value(key, value):
    with open(sysctl_path(key), "w") as f:
        f.write("%s\n" % value)


@contextlib.contextmanager
def exclusive_kernel(timeout_seconds=1800):
    """Hold the machine-wide lock for live conntrack tests."""
    os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError("another test run holds %s" % LOCK_PATH)
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def saved_sysctls(*keys):
    """Save the named sysctls (names under /proc/sys/net/netfilter or paths) and restore them."""
    keys = keys or GLOBAL_KEYS
    saved = [(k, read_value(k)) for k in keys]
    try:
        yield dict(saved)
    finally:
        errors = []
        # Buckets before max: the order the kernel is least likely to refuse.
        for key, value in saved:
            try:
                if read_value(key) != value:
                    write_value(key, value)
            except OSError as exc:
                errors.append("%s: %s" % (key, exc))
        if errors:
            raise RuntimeError("could not restore sysctls: %s" % "; ".join(errors))


_counter = itertools.count()


def run(cmd, check=True, **kwargs):
    """Run a command given as a list (never a shell string)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    kwargs.setdefault("universal_newlines", True)
    res = subprocess.run(cmd, check=False, **kwargs)
    if check and res.returncode != 0:
        raise RuntimeError("%s failed (%s): %s %s" % (cmd, res.returncode, res.stdout, res.stderr))
    return res


# A ruleset that makes conntrack track the namespace; nothing is dropped.
TRACKING_RULESET = """
table inet nctest {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state established,related accept
    }
}
"""


class _Namespace(object):
    """Commands and processes run inside one network namespace; subclasses say how to enter it."""

    def __init__(self):
        self._procs = []

    def argv(self, cmd):
        raise NotImplementedError

    def exec(self, cmd, check=True, **kwargs):
        return run(self.argv(cmd), check=check, **kwargs)

    def popen(self, cmd, **kwargs):
        proc = subprocess.Popen(self.argv(cmd), **kwargs)
        self._procs.append(proc)
        return proc

    def nft(self, ruleset):
        return run(self.argv(["nft", "-f", "-"]), input=ruleset)

    def sysctl(self, key, value=None):
        """Read or write a per-namespace sysctl under net/netfilter."""
        if value is None:
            return self.exec(["cat", sysctl_path(key)]).stdout.strip()
        self.exec(["sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sysctl", str(value), sysctl_path(key)])
        return str(value)

    def conntrack(self, *args, check=True):
        return self.exec(["conntrack"] + list(args), check=check)

    def count(self):
        """The oracle's count for this namespace: conntrack -C."""
        return int(self.conntrack("-C").stdout.strip())

    def stop_processes(self):
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()  # only processes this object started, by their PID
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._procs = []


class Netns(_Namespace):
    """A network namespace that the test made, deleted on exit with every process started in it."""

    def __init__(self, prefix="nct", track=True, ruleset=None):
        super(Netns, self).__init__()
        self.name = "%s-%d-%d" % (prefix, os.getpid(), next(_counter))
        self.track = track
        self.ruleset = ruleset

    def __enter__(self):
        run(["ip", "netns", "add", self.name])
        try:
            self.exec(["ip", "link", "set", "lo", "up"])
            if self.track or self.ruleset:
                self.nft(self.ruleset or TRACKING_RULESET)
        except Exception:
            self.delete()
            raise
        return self

    def __exit__(self, *exc):
        self.delete()

    def argv(self, cmd):
        return ["ip", "netns", "exec", self.name] + list(cmd)

    def delete(self):
        self.stop_processes()
        run(["ip", "netns", "del", self.name], check=False)


class EnteredNetns(_Namespace):
    """The network namespace of a process we started (a container), entered with nsenter.

    The namespace belongs to its process; close() ends only what this object started.
    """

    def __init__(self, pid):
        super(EnteredNetns, self).__init__()
        self.prefix = ["nsenter", "--net=/proc/%d/ns/net" % pid]

    def argv(self, cmd):
        return self.prefix + list(cmd)

    def close(self):
        self.stop_processes()
