"""The tune playbook against a fleet of podman hosts, two of them broken.

Five containers (``--network none``), each its own network namespace: one is stopped,
one has a read-only /etc. The timeouts are per namespace, so no global sysctl of this
machine changes and no kernel lock is needed.
"""
import contextlib
import os
import shutil
import subprocess
import tempfile

import pytest

from support.ansible import run_playbook
from support.kernel import run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = ("nf_conntrack_tcp_timeout_time_wait", "nf_conntrack_udp_timeout", "nf_conntrack_tcp_timeout_close_wait")
# Values a fresh namespace does not have (its defaults are 120, 30 and 60).
DESIRED = {"nf_conntrack_tcp_timeout_time_wait": 63, "nf_conntrack_udp_timeout": 43,
           "nf_conntrack_tcp_timeout_close_wait": 57, "nf_conntrack_max": 131072}
STOPPED, READ_ONLY = 2, 3

pytestmark = pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman")


def _script(name):
    return run([os.path.join(ROOT, "scripts", name)]).stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def podman_env():
    """containers.conf for this machine, the local image, and containers.podman for the connection."""
    env = {"CONTAINERS_CONF": os.path.join(ROOT, "scripts", "containers.conf")}
    os.environ.setdefault("CONTAINERS_CONF", env["CONTAINERS_CONF"])
    image = os.environ.get("NC_TEST_IMAGE") or _script("test-image")
    paths = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    if not paths:
        paths = [os.path.dirname(os.path.dirname(os.path.dirname(ROOT)))] \
            if ROOT.endswith(os.path.join("ansible_collections", "netfilter", "conntrack")) else []
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(paths + [_script("test-collections")])
    return env, image


def podman(*args, check=True):
    return run(["podman"] + list(args), check=check)


def read_values(name):
    out = podman("exec", name, "sh", "-c", "cd /proc/sys/net/netfilter && grep . %s" % " ".join(KEYS)).stdout
    return dict((k, int(v)) for k, v in (line.split(":", 1) for line in out.split()))


@contextlib.contextmanager
def fleet(image, order=None):
    """Five hosts; yields (names in inventory order, inventory path). Removes every container."""
    tag = "nc-fleet-%d-%s" % (os.getpid(), os.urandom(3).hex())
    names = ["%s-%d" % (tag, i) for i in range(5)]
    scratch = tempfile.mkdtemp(prefix="nc-fleet-")
    try:
        ro_etc = os.path.join(scratch, "etc")
        os.makedirs(ro_etc)
        tar = subprocess.run(["podman", "run", "--rm", "--network", "none", image, "tar", "-C", "/etc", "-cf", "-", "."],
                             stdout=subprocess.PIPE, check=True).stdout
        subprocess.run(["tar", "-x", "-C", ro_etc], input=tar, check=True)
        for i, name in enumerate(names):
            extra = ["-v", "%s:/etc:ro" % ro_etc] if i == READ_ONLY else []
            podman("run", "-d", "--name", name, "--network", "none", "--security-opt", "unmask=/proc/sys",
                   "--cap-add", "NET_ADMIN", *extra, image, "sleep", "infinity")
        podman("stop", "-t", "0", names[STOPPED])
        inventory = os.path.join(scratch, "hosts.ini")
        with open(inventory, "w") as f:
            f.write("[fleet]\n%s\n\n[fleet:vars]\nansible_connection=containers.podman.podman\n"
                    "ansible_python_interpreter=/usr/bin/python3\n"
                    % "\n".join(names[i] for i in (order or range(5))))
        yield names, inventory
    finally:
        podman("rm", "-f", "-t", "0", *names, check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def tune(inventory, env, **extra):
    extra_vars = {"tune_settings": DESIRED, "tune_health_sample_seconds": 1}
    extra_vars.update(extra)
    return run_playbook("netfilter.conntrack.tune", extra_vars=extra_vars, inventory=inventory, env=env)


def test_fleet_converges_around_a_stopped_host_and_a_read_only_etc(podman_env):
    env, image = podman_env
    with fleet(image) as (names, inventory):
        running = [n for i, n in enumerate(names) if i != STOPPED]
        before = dict((n, read_values(n)) for n in running)
        proc, recap = tune(inventory, env, tune_serial="100%", tune_max_fail_percentage=50)
        out = proc.stdout + proc.stderr

        good = [n for i, n in enumerate(names) if i not in (STOPPED, READ_ONLY)]
        for name in good:
            assert recap[name]["failed"] == 0 and recap[name]["unreachable"] == 0, out
            assert recap[name]["changed"] > 0, out
            assert read_values(name) == dict((k, DESIRED[k]) for k in KEYS)
        # Each failure is reported against its own host.
        stopped, read_only = names[STOPPED], names[READ_ONLY]
        assert recap[stopped]["unreachable"] + recap[stopped]["failed"] == 1, out
        assert recap[read_only]["failed"] == 1, out
        # The settings preflight names it before any change ("... is on a read-only file system").
        assert "[%s]" % read_only in out and "read-only file system" in out.lower(), out
        # The failing host is left fully old: every key as it was, no drop-in.
        assert read_values(read_only) == before[read_only]
        assert podman("exec", read_only, "test", "-e", "/etc/sysctl.d/90-netfilter-conntrack.conf",
                      check=False).returncode == 1
        # Never half: every running host holds all old or all new values.
        for name in running:
            values = read_values(name)
            assert values in (before[name], dict((k, DESIRED[k]) for k in KEYS)), (name, values)

        # A second run changes nothing on the converged hosts.
        again = tune(inventory, env, tune_serial="100%", tune_max_fail_percentage=50)[1]
        for name in good:
            assert again[name]["changed"] == 0 and again[name]["failed"] == 0, again


def test_a_failed_canary_halts_the_rollout(podman_env):
    env, image = podman_env
    # The read-only host first: the default batches make it the canary of its own.
    with fleet(image, order=[READ_ONLY, 0, 1, 4]) as (names, inventory):
        others = [names[i] for i in (0, 1, 4)]
        before = dict((n, read_values(n)) for n in others)
        proc, recap = tune(inventory, env)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        assert recap[names[READ_ONLY]]["failed"] == 1, out
        assert "NO MORE HOSTS LEFT" in out, out
        for name in others:
            assert name not in recap or recap[name]["changed"] == 0, out
            assert read_values(name) == before[name]
