"""The VM stage: a Debian guest with a loadable nf_conntrack, driven over ssh like a fleet host.

The guest comes from ``scripts/vm-lab`` (one per session, always stopped by its PID file).
The collection must be installed on the controller (``scripts/test vm`` does it) and
``ANSIBLE_COLLECTIONS_PATH`` point at it.
"""
import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VM_LAB = os.path.join(ROOT, "scripts", "vm-lab")
SUITE = os.environ.get("NC_VM_SUITE", "bookworm")
# Every wait is bounded; a playbook against a TCG guest takes about half a minute.
COMMAND_TIMEOUT = 600

TIMINGS = []


def _bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


# The inventory names the guest's python; a controller-side interpreter must not win.
VM_ENV = {"ANSIBLE_PYTHON_INTERPRETER": None, "ANSIBLE_PIPELINING": "True"}


def _env():
    from support.ansible import ansible_env
    return ansible_env(VM_ENV)


class Guest:
    def __init__(self, inventory, host):
        self.inventory = inventory
        self.host = host
        self.boot_seconds = None
        self.reboots = []

    def sh(self, script, check=True):
        """Run a shell script on the guest as root; returns stdout."""
        res = subprocess.run([VM_LAB, "ssh", SUITE, script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=COMMAND_TIMEOUT, check=False)
        if check and res.returncode != 0:
            raise AssertionError("guest: %r failed (%s): %s %s" % (script, res.returncode, res.stdout, res.stderr))
        return res.stdout

    def read_int(self, path):
        return int(self.sh("cat %s" % path).strip())

    def exists(self, path):
        return self.sh("test -e %s && echo yes || echo no" % path).strip() == "yes"

    def lsmod(self):
        return sorted(line.split()[0] for line in self.sh("cat /proc/modules").splitlines() if line.strip())

    def runtime(self, keys):
        return {k: self.read_int("/proc/sys/net/netfilter/%s" % k) for k in keys}

    def reboot(self):
        res = subprocess.run([VM_LAB, "reboot", SUITE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=COMMAND_TIMEOUT, check=False)
        if res.returncode != 0:
            raise AssertionError("reboot failed: %s %s" % (res.stdout, res.stderr))
        seconds = int(res.stdout.strip().splitlines()[-1])
        self.reboots.append(seconds)
        TIMINGS.append(("reboot %d" % len(self.reboots), float(seconds)))
        return seconds

    def module(self, name, args=None):
        """One module call through ``ansible -m``; returns the result dict."""
        from support.ansible import run_module
        return run_module(name, args, env=VM_ENV, timeout=COMMAND_TIMEOUT, target=(self.host, self.inventory))

    def facts(self):
        result = self.module("facts", {"gather_kernel_log": False})
        assert not result["failed"], result
        return result["ansible_facts"]["conntrack"]

    def playbook(self, name, extra_vars=None):
        """Run a playbook by FQCN; returns (stdout, recap dict of the guest)."""
        from support.ansible import RECAP
        cmd = [_bin("ansible-playbook"), "-i", self.inventory, name]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              env=_env(), timeout=COMMAND_TIMEOUT, check=False)
        recap = {m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"}
                 for m in RECAP.finditer(proc.stdout)}
        return proc.stdout, recap.get(self.host)


def _lab(*args):
    return subprocess.run([VM_LAB] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=COMMAND_TIMEOUT, check=False)


@pytest.fixture(scope="session")
def guest():
    if not os.environ.get("ANSIBLE_COLLECTIONS_PATH"):
        pytest.fail("install the collection first and set ANSIBLE_COLLECTIONS_PATH (scripts/test vm does)")
    start = time.monotonic()
    res = _lab("start", SUITE)
    try:
        if res.returncode != 0:
            pytest.fail("vm-lab start failed: %s %s" % (res.stdout, res.stderr))
        run_dir = os.environ.get("NC_VM_RUN") or _run_dir()
        g = Guest(os.path.join(run_dir, "inventory"), "nc-lab-%s" % SUITE)
        g.boot_seconds = time.monotonic() - start
        TIMINGS.append(("start (build if not cached, boot to ssh)", g.boot_seconds))
        yield g
    finally:
        _lab("stop", SUITE)


def _run_dir():
    import hashlib
    digest = hashlib.sha256(ROOT.encode()).hexdigest()[:12]
    work = os.environ.get("NC_WORK") or "/tmp/netfilter.conntrack-%s" % digest
    return os.path.join(work, "vm", SUITE)


@pytest.fixture(autouse=True)
def _step_time(request):
    start = time.monotonic()
    yield
    TIMINGS.append((request.node.name, time.monotonic() - start))


def pytest_terminal_summary(terminalreporter):
    if not TIMINGS:
        return
    terminalreporter.section("VM stage: seconds per step (%s)" % SUITE)
    for name, seconds in TIMINGS:
        terminalreporter.write_line("%7.1f  %s" % (seconds, name))
    path = os.environ.get("NC_VM_TIMINGS")
    if path:
        with open(path, "w") as f:
            json.dump([{"step": n, "seconds": round(s, 1)} for n, s in TIMINGS], f, indent=1)
