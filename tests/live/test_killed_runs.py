"""A settings run killed at any point never costs the host its original configuration.

The OOM killer, ``kill -9``, an Ansible ``timeout`` or a lost controller can end the module
between any two of its steps. No module can clean up after SIGKILL, so what must hold is what
an SRE needs the next morning: every file is either as it was or as it was meant to be (never
torn), the record keeps the values found before the first run, the next run converges to
exactly what an uninterrupted run leaves, and the rollback after it gives back the host byte
for byte as it was before the first run.

The kill is real: the module's interpreter runs under ``strace``, which delivers SIGKILL on
entry to the Nth ``rename``, ``write``, ``unlink``, ``rmdir`` or ``mkdir`` of the module's
process (a file made visible, a runtime value or a file's content written, a file or directory
removed or created), for every N until a run gets through untouched. (strace's ``-P`` would
narrow that to the managed paths, but it does not match the target of a ``rename``.)
Each point runs in its own sandbox (tests/support/sandbox.py: a private mount namespace over
/etc and a throwaway network namespace, whose per-namespace timeouts are the ones changed).
"""
import json
import os
import shlex
import shutil
import sys
import tempfile

import pytest

from support import hoststate
from support.ansible import run_module
from support.hoststate import delta, summary, unchanged_host
from support.kernel import NETFILTER, exclusive_kernel
from support.sandbox import Sandbox

pytestmark = [
    pytest.mark.skipif(not os.path.exists(os.path.join(NETFILTER, "nf_conntrack_max")),
                       reason="nf_conntrack is not available"),
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed"),
]

RECORD = "/etc/ansible/facts.d/netfilter_conntrack.fact"
FILES = ("/etc/sysctl.d/90-netfilter-conntrack.conf", "/etc/modules-load.d/netfilter-conntrack.conf",
         "/etc/udev/rules.d/90-netfilter-conntrack.rules", RECORD)
# Per-namespace keys, so that the throwaway namespace takes the change; none is at these values.
SETTINGS = {"nf_conntrack_udp_timeout": 37, "nf_conntrack_tcp_timeout_time_wait": 61,
            "nf_conntrack_tcp_timeout_close_wait": 43}
APPLY = {"settings": SETTINGS, "boot_fix": "always", "record_file": RECORD}
ROLLBACK = {"state": "absent", "record_file": RECORD, "boot_fix": "always"}
KILLED_AT = ("rename", "write", "unlink", "rmdir", "mkdir")
MAX_POINTS = 60   # per syscall: far more than one run makes (a guard against a loop that never ends)

WRAPPER = """#!/bin/sh
# Our module's interpreter under strace: SIGKILL on entry to its Nth $NC_KILL_SYSCALL.
exec strace -f -qq -o /dev/null -e trace="$NC_KILL_SYSCALL" \\
    -e inject="$NC_KILL_SYSCALL":signal=KILL:when="$NC_KILL_AT" -- %s "$@"
"""

DUMP = r'''
import json, os, sys
out = {}
for root in sys.argv[2:]:
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            if os.path.islink(p) or not os.path.isfile(p):
                out[p] = "<%s>" % ("link" if os.path.islink(p) else "dir")
                continue
            with open(p) as f:
                text = f.read()
            if p == sys.argv[1]:  # the record's clock differs between any two runs: the rest must match
                try:
                    data = json.loads(text)
                    text = {k: v for k, v in data.items() if k not in ("recorded_at", "applied_at")}
                except ValueError:
                    text = "<torn record> " + text
            out[p] = text
for key in os.listdir("/proc/sys/net/netfilter"):
    if key.startswith("nf_conntrack_tcp_timeout") or key.startswith("nf_conntrack_udp_timeout"):
        with open(os.path.join("/proc/sys/net/netfilter", key)) as f:
            out[key] = f.read().strip()
print(json.dumps(out, sort_keys=True))
'''


@pytest.fixture(scope="module", autouse=True)
def kernel_lock():
    """With the other checkouts' live tests kept out, as the adversarial suite does."""
    with exclusive_kernel():
        yield


@pytest.fixture(scope="module")
def wrapper():
    """The interpreter wrapper, in a directory of ours (removed afterwards)."""
    directory = tempfile.mkdtemp(prefix="nckill-")
    path = os.path.join(directory, "python-under-strace")
    with open(path, "w") as f:
        f.write(WRAPPER % shlex.quote(sys.executable))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(directory, ignore_errors=True)


def state(sb):
    """What a run leaves that matters (file contents, the record without its clock, the timeouts)."""
    res = sb.exec([sys.executable, "-c", DUMP, RECORD] + list(hoststate.WATCHED_DIRS))
    return json.loads(res.stdout)


def run(sb, args, kill=None, wrapper=None):
    env = None
    if kill is not None:
        syscall, n = kill
        env = {"ANSIBLE_PYTHON_INTERPRETER": wrapper, "NC_KILL_SYSCALL": syscall, "NC_KILL_AT": str(n)}
    res = run_module("settings", args, netns=sb, env=env)
    if "FAILED!" in res.get("_stdout", ""):
        res["failed"] = True
    return res


def killed(res):
    """The module died of the injected SIGKILL (not a failure of its own, which would be a bug here)."""
    text = " ".join(str(res.get(k, "")) for k in ("msg", "module_stderr", "module_stdout", "rc", "_stdout"))
    return res.get("failed") and ("-9" in text or "Killed" in text or "MODULE FAILURE" in text)


@pytest.fixture(scope="module")
def reference():
    """The host before any run, and what an uninterrupted apply leaves, in a sandbox of its own."""
    with Sandbox() as sb:
        pristine = state(sb)
        res = run(sb, APPLY)
        assert not res["failed"] and res["changed"], res
        applied = state(sb)
    assert applied != pristine
    for path in FILES:
        assert path in applied, "an uninterrupted run should write %s: %s" % (path, sorted(applied))
    return pristine, applied


def untorn(now, before, after):
    """Every path is as before or as after, never anything else; our temporary files aside."""
    problems = []
    for path in sorted(set(now) | set(before) | set(after)):
        if os.path.basename(path).startswith(".") and path not in before and path not in after:
            continue  # a temporary file of ours that the kill left: checked by the next run
        if now.get(path) not in (before.get(path), after.get(path)):
            problems.append("%s: %r is neither the old %r nor the new %r" % (
                path, now.get(path), before.get(path), after.get(path)))
    return problems


def points(syscall):
    return [(syscall, n) for n in range(1, MAX_POINTS + 1)]


def converged(sb, args, before, after):
    """After a kill: nothing torn between ``before`` and ``after``; a plain run of ``args`` leaves ``after``."""
    problems = untorn(state(sb), before, after)
    res = run(sb, args)
    if res["failed"]:
        problems.append("the run after the kill failed: %s" % str(res.get("msg"))[:400])
    now = state(sb)
    if now != after:
        problems.append("the run after the kill left %s" % json.dumps(
            {k: [after.get(k), now.get(k)] for k in set(now) | set(after) if now.get(k) != after.get(k)}))
    return problems


def rolled_back(sb, exact_before, problems):
    """A plain rollback, then the host must be as before the first run, byte for byte."""
    back = run(sb, ROLLBACK)
    change = delta(exact_before, sb.snapshot())
    if back["failed"]:
        problems.append("the rollback after the kill failed: %s" % str(back.get("msg"))[:400])
    if change["files"] or change["sysctls"]:
        problems.append("after the rollback: %s" % summary(change))
    return problems


def kill_at_every_step(syscall, killed_run, after_kill, when_untouched):
    """For N = 1, 2, ...: a fresh sandbox, ``killed_run(sb, kill)`` with SIGKILL at the Nth
    ``syscall``, then ``after_kill(sb, exact_before)`` lists the problems; stops at the first N
    that the run gets through (``when_untouched`` checks that run). Returns the kills made."""
    hit = 0
    with unchanged_host(sysctls_too=False):
        for kill in points(syscall):
            with Sandbox() as sb:
                exact_before = sb.snapshot()
                res = killed_run(sb, kill)
                if not res["failed"]:
                    when_untouched(sb, exact_before)
                    return hit
                assert killed(res), "not the injected kill: %s" % str(res.get("msg"))[:600]
                hit += 1
                problems = after_kill(sb, exact_before)
                assert not problems, "killed at %s #%d:\n%s" % (syscall, kill[1], "\n".join(problems))
    pytest.fail("more than %d %s calls: the loop never got through" % (MAX_POINTS, syscall))


@pytest.mark.parametrize("syscall", KILLED_AT)
def test_an_apply_killed_at_any_step_converges_and_rolls_back_to_the_original(reference, wrapper, syscall):
    pristine, applied = reference

    def untouched(sb, exact_before):
        assert state(sb) == applied

    hit = kill_at_every_step(
        syscall, lambda sb, kill: run(sb, APPLY, kill=kill, wrapper=wrapper),
        lambda sb, exact_before: rolled_back(sb, exact_before, converged(sb, APPLY, pristine, applied)), untouched)
    print("apply killed at %d %s calls" % (hit, syscall))
    if syscall in ("rename", "write", "mkdir"):
        assert hit, "no %s was ever hit: the injection did not work" % syscall


@pytest.mark.parametrize("syscall", KILLED_AT)
def test_a_rollback_killed_at_any_step_can_be_run_again(reference, wrapper, syscall):
    pristine, applied = reference

    def applied_then_killed(sb, kill):
        res = run(sb, APPLY)
        assert not res["failed"], res
        return run(sb, ROLLBACK, kill=kill, wrapper=wrapper)

    def untouched(sb, exact_before):
        assert not delta(exact_before, sb.snapshot())["files"]

    hit = kill_at_every_step(
        syscall, applied_then_killed,
        lambda sb, exact_before: rolled_back(sb, exact_before, untorn(state(sb), applied, pristine)), untouched)
    print("rollback killed at %d %s calls" % (hit, syscall))
    if syscall in ("unlink", "write", "rmdir"):
        assert hit, "no %s was ever hit: the injection did not work" % syscall
