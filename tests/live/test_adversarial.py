"""The adversarial suite of issue 9: hostile inputs and hostile hosts, against the live kernel.

Every try runs through real ``ansible -m`` inside a fresh sandbox (tests/support/sandbox.py): a
private mount namespace whose /etc, /run, /usr, /var, /srv ... are overlays on a tmpfs, and by
default a throwaway network namespace. So a try aimed at /etc/sysctl.conf cannot damage this
machine even against code that does not refuse it, and the real host is proven unchanged
around every try (``unchanged_host``). Inside the sandbox, snapshots of every
/proc/sys/net/netfilter value and of the five directories (names, types, modes, hashes; a
missing directory must stay missing) before and after give the exact change, which must be
the expected one (usually none).

Each try runs for real and with --check, and path tricks also with --check --diff; a diff or
message must never show a foreign file's content. Every run has a watchdog: a hang is a failure.
"""
import concurrent.futures
import json
import os
import threading
import time

import pytest

from adversarial_tries import (DROPIN, HEADER, IDS, OURS, RECORD, SECRET, TRIES, UDP, VALID_RECORD, Applied,
                               Refused)
from support import hoststate
from support.ansible import run_module, run_playbook
from support.hoststate import delta, summary, unchanged_host
from support.kernel import NETFILTER, exclusive_kernel, read_int, saved_sysctls
from support.sandbox import Sandbox, stop

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(NETFILTER, "nf_conntrack_max")),
                                reason="nf_conntrack is not available")

MODULE_LOCK = "/run/lock/netfilter-conntrack.lock"
# Distribution files get a marker line inside every sandbox: it must never show in any output.
MARKED = ("/etc/sysctl.conf", "/etc/resolv.conf", "/etc/modules")


def _has_contract():
    """The settings module takes the issue 9 options: runs that old code would really apply are safe.

    Read from the module's argument spec in this checkout (the code under test), not ansible-doc,
    which a documentation error would break."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "plugins", "modules", "settings.py")) as f:
        source = f.read()
    return "force=dict(" in source and "lock_timeout=dict(" in source


HAS_CONTRACT = _has_contract()


def writable_keys():
    """Every netfilter sysctl this namespace can write: saved and restored around each try."""
    keys = []
    for name in sorted(os.listdir(NETFILTER)):
        path = os.path.join(NETFILTER, name)
        if os.path.isfile(path) and os.stat(path).st_mode & 0o200 and name != "nf_conntrack_count":
            keys.append(name)
    return keys


@pytest.fixture(scope="module", autouse=True)
def distribution_files_intact():
    """The most important rule: the files a path trick aims at are byte for byte the same afterwards."""
    def sums():
        return dict((p, hoststate.entry(p)) for p in hoststate.DISTRIBUTION_FILES)
    before = sums()
    yield
    assert sums() == before, "a distribution file changed during the adversarial suite"


@pytest.fixture(scope="module")
def suite_lock():
    """The kernel lock (support.kernel.exclusive_kernel), held once for the whole suite: handing it
    back and forth with other checkouts' live tests between ~160 short tests cost minutes."""
    with exclusive_kernel():
        yield


@pytest.fixture
def guarded(suite_lock):
    """Under the kernel lock, every writable netfilter sysctl saved and restored around each test."""
    with saved_sysctls(*writable_keys()):
        yield


def prepare(sb, setup):
    for path in MARKED:
        if os.path.exists(path):
            sb.sh("printf '# %%s\\n' %s >> %s" % (SECRET, path))
    for op in setup:
        kind, rest = op[0], op[1:]
        if kind == "write":
            sb.write(*rest)
        elif kind == "symlink":
            sb.symlink(*rest)
        elif kind == "hardlink":
            sb.hardlink(*rest)
        elif kind == "fifo":
            sb.fifo(*rest)
        elif kind == "mkdir":
            sb.mkdir(*rest)
        elif kind == "socket":
            sb.socket(*rest)
        elif kind == "chardev":
            sb.chardev(*rest)
        elif kind == "immutable":
            sb.immutable_file(*rest)
        elif kind == "full":
            sb.full(*rest)
        elif kind == "inodes":
            sb.out_of_inodes(*rest)
        elif kind == "ro":
            sb.read_only(*rest)
        elif kind == "sysctl":
            sb.sysctl(*rest)
        else:
            raise ValueError(kind)


def run_in(sb, module, args, check=False, diff=False):
    """One ansible -m run in the sandbox; a run that outlives the watchdog is reported as hung."""
    start = time.monotonic()
    try:
        res = run_module(module, args, netns=sb, check=check, diff=diff)
    except RuntimeError as exc:
        res = {"failed": True, "msg": "no result: %s" % str(exc)[:500], "_stdout": ""}
    res["_seconds"] = time.monotonic() - start
    res["_hung"] = res["_seconds"] >= sb.timeout
    if "FAILED!" in res.get("_stdout", ""):
        res["failed"] = True
    return res


def attempt(t, mode):
    with Sandbox(netns=t.netns, timeout=t.timeout) as sb:
        prepare(sb, t.setup)
        before = sb.snapshot(t.extra)
        res = run_in(sb, t.module, t.args, check=mode != "normal", diff=mode == "diff")
        after = sb.snapshot(t.extra)
    change = delta(before, after)
    problems = ([] if not res["_hung"] else ["hung (killed after %.0f s)" % res["_seconds"]])
    problems += t.expect.problems(res, change, mode)
    return mode, problems, res, change


def modes_of(t):
    return ["normal", "check"] + (["diff"] if t.expect.diff else [])


ALL_EXTRA = sorted(set(p for t in TRIES for p in t.extra))
WORKERS = 4


@pytest.fixture(scope="module")
def batch(request, suite_lock):
    """The tries in throwaway network namespaces are independent of each other: every (try, mode)
    starts at once on a small pool, and each test waits for its own. The host is snapshotted
    before the first starts; each test checks it is still the same."""
    selected = set(item.callspec.id for item in request.session.items
                   if getattr(item, "originalname", None) == "test_try")
    host_before = hoststate.snapshot(ALL_EXTRA)
    pool = concurrent.futures.ThreadPoolExecutor(WORKERS)
    futures = dict(((t.id, m), pool.submit(attempt, t, m)) for t in TRIES if t.netns and t.id in selected
                   for m in modes_of(t))
    try:
        yield host_before, futures
    finally:
        for future in futures.values():
            future.cancel()
        pool.shutdown(wait=True)


def _report(outcomes):
    return dict((mode, {"problems": problems, "msg": str(res.get("msg", ""))[:400],
                        "changed": res.get("changed"), "change": summary(change)})
                for mode, problems, res, change in outcomes if problems)


@pytest.mark.parametrize("t", TRIES, ids=IDS)
def test_try(batch, guarded, t):
    if t.needs_contract and not HAS_CONTRACT:
        pytest.skip("the settings module lacks force/lock_timeout: old code would apply this to the host")
    host_before, futures = batch
    if t.netns:
        outcomes = [futures[(t.id, m)].result() for m in modes_of(t)]
        hoststate.check_unchanged(host_before, ALL_EXTRA)
    else:
        # Initial namespace: global values are shared with every namespace, so none of the
        # batch may still run; one mode at a time, each under saved_sysctls().
        for future in futures.values():
            future.result()
        outcomes = []
        with unchanged_host(t.extra, sysctls_too=False):
            for mode in modes_of(t):
                with saved_sysctls(*writable_keys()):
                    outcomes.append(attempt(t, mode))
    report = _report(outcomes)
    assert not report, json.dumps(report, indent=1, sort_keys=True, default=str)


# ------------------------------------------------------------------ concurrency
def _concurrent(sb, runs, check=False):
    """Start the runs at the same moment; their results in order."""
    barrier = threading.Barrier(len(runs))

    def one(args):
        barrier.wait()
        return run_in(sb, "settings", args, check=check)
    with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(one, runs))


CONCURRENT = [
    {"settings": {"nf_conntrack_udp_timeout": UDP}, "record_file": RECORD, "persist_sysctl": False},
    {"settings": {"nf_conntrack_generic_timeout": 555}, "record_file": RECORD, "persist_sysctl": False},
]


@pytest.mark.parametrize("round_", [1, 2, 3], ids=["concurrent-runs-round-%d" % i for i in (1, 2, 3)])
def test_two_concurrent_runs_keep_both_originals_in_the_record(guarded, round_):
    with unchanged_host():
        with Sandbox() as sb:
            before = sb.snapshot()
            results = _concurrent(sb, CONCURRENT)
            after = sb.snapshot()
            text = sb.exec(["cat", RECORD], check=False).stdout
    for res in results:
        assert not res["failed"] and not res["_hung"], res.get("msg")
    data = json.loads(text)
    originals = dict((os.path.basename(k), v[0]) for k, v in delta(before, after)["sysctls"].items())
    assert set(data["original"]) == {"nf_conntrack_udp_timeout", "nf_conntrack_generic_timeout"}, \
        "a concurrent run lost the other's original: %s" % data
    assert data["original"] == dict((k, int(v)) for k, v in originals.items())


def test_two_concurrent_check_runs_change_nothing(guarded):
    with unchanged_host():
        with Sandbox() as sb:
            before = sb.snapshot()
            results = _concurrent(sb, CONCURRENT, check=True)
            after = sb.snapshot()
    assert all(not r["failed"] and r["changed"] for r in results), [r.get("msg") for r in results]
    assert summary(delta(before, after)) == {}


@pytest.mark.parametrize("check", [False, True], ids=["lock-held-elsewhere", "lock-held-elsewhere-check"])
def test_a_run_that_cannot_get_the_lock_changes_nothing(guarded, check):
    with unchanged_host():
        with Sandbox() as sb:
            sb.mkdir(os.path.dirname(MODULE_LOCK))
            holder = sb.hold_lock(MODULE_LOCK)
            try:
                before = sb.snapshot()
                res = run_in(sb, "settings", {"settings": {"nf_conntrack_udp_timeout": UDP}, "lock_timeout": 2},
                             check=check)
                after = sb.snapshot()
            finally:
                stop(holder)
    change = delta(before, after)
    assert summary(change) == {}
    if not check:
        assert Refused("lock").problems(res, change, "normal") == [], res.get("msg")
        assert res["_seconds"] >= 2


# -------------------------------------------------------------- force (global max)
def test_force_lets_an_unlimited_max_through(guarded):
    """max 0 is legal but almost surely a mistake: with force it applies (and is put back by the guard)."""
    with unchanged_host(sysctls_too=False):
        with Sandbox(netns=False) as sb:
            before = sb.snapshot()
            res = run_in(sb, "settings", {"settings": {"nf_conntrack_max": 0}, "force": True, "persist_sysctl": False})
            after = sb.snapshot()
    assert Applied({"nf_conntrack_max": "0"}).problems(res, delta(before, after), "normal") == []


def test_force_predicts_a_max_of_one_in_check_mode(guarded):
    with unchanged_host(sysctls_too=False):
        with Sandbox(netns=False) as sb:
            before = sb.snapshot()
            res = run_in(sb, "settings", {"settings": {"nf_conntrack_max": 1}, "force": True}, check=True)
            after = sb.snapshot()
    assert Applied({}).problems(res, delta(before, after), "check") == []
    assert read_int("nf_conntrack_max") > 1


# ----------------------------------------------------------- facts and nf_tables
NFT_WRAPPER = """#!/bin/sh
echo "$*" >> /run/ncadv-nft.log
exec /usr/sbin/nft.real "$@"
"""


def _nf_tables_loaded():
    if os.path.exists("/sys/module/nf_tables"):
        return True
    try:
        with open("/proc/modules") as f:
            return any(line.startswith("nf_tables ") for line in f)
    except OSError:
        return False


def _facts_nft_calls(fake_loaded, check):
    with Sandbox() as sb:
        sb.sh("cp -a /usr/sbin/nft /usr/sbin/nft.real")
        sb.write("/usr/sbin/nft", NFT_WRAPPER, 0o755)
        if fake_loaded:
            # /sys/module/nf_tables appears; nf_conntrack's parameters stay readable.
            stash = os.path.join(sb.scratch, "sysmodule")
            sb.sh("mkdir -p {s} && mount --bind /sys/module {s} && mount -t tmpfs ncadv-sysmod /sys/module"
                  " && mkdir /sys/module/nf_conntrack /sys/module/nf_tables"
                  " && mount --bind {s}/nf_conntrack /sys/module/nf_conntrack".format(s=stash))
        before = sb.snapshot()
        res = run_in(sb, "facts", {"gather_kernel_log": False}, check=check)
        after = sb.snapshot()
        log = sb.exec(["cat", "/run/ncadv-nft.log"], check=False).stdout
    assert not res["failed"], res.get("msg")
    assert summary(delta(before, after)) == {}
    return log


@pytest.mark.skipif(_nf_tables_loaded(), reason="nf_tables is loaded on this host")
@pytest.mark.skipif(not os.path.exists("/proc/modules"),
                    reason="this kernel cannot load modules (no /proc/modules): running nft loads nothing")
@pytest.mark.parametrize("check", [False, True], ids=["facts-no-nft-when-nf-tables-absent",
                                                      "facts-no-nft-when-nf-tables-absent-check"])
def test_facts_does_not_run_nft_when_nf_tables_is_not_loaded(guarded, check):
    with unchanged_host():
        log = _facts_nft_calls(False, check)
    assert log == "", "facts ran nft (which loads nf_tables): %r" % log


def test_facts_runs_nft_when_nf_tables_is_loaded(guarded):
    """The control for the try above: the wrapper does see facts' nft calls."""
    with unchanged_host():
        log = _facts_nft_calls(True, False)
    assert "list chains" in log


# ------------------------------------------------------------- the tune role (case 1)
PLAY = """
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: netfilter.conntrack.tune
      vars:
        tune_settings: {settings}
        tune_health_gate: false
        tune_sysctl_file: {sysctl_file}
"""


@pytest.mark.parametrize("settings,sysctl_file,named,check", [
    # Refused by the role's argument spec (ansible-core), before any task runs.
    ({"nf_conntrack_foo": 1}, DROPIN, "nf_conntrack_foo", False),
    ({"nf_conntrack_foo": 1}, DROPIN, "nf_conntrack_foo", True),
    ({"nf_conntrack_udp_timeout": "lots"}, DROPIN, "lots", False),
    # Past the spec (a path is a path), refused by the settings call: the rescue path.
    ({"nf_conntrack_udp_timeout": 36}, "/etc/sysctl.conf", "/etc/sysctl.conf", False),
    ({"nf_conntrack_udp_timeout": 36}, "/etc/sysctl.conf", "/etc/sysctl.conf", True)],
    ids=["tune-refused-key-keeps-earlier-tuning", "tune-refused-key-keeps-earlier-tuning-check",
         "tune-refused-value-keeps-earlier-tuning", "tune-refused-path-keeps-earlier-tuning",
         "tune-refused-path-keeps-earlier-tuning-check"])
def test_a_refused_tune_keeps_the_earlier_tuning(guarded, settings, sysctl_file, named, check):
    """Case 1: a refused run must not delete the drop-in and record of an earlier tune, nor
    claim that it put anything back."""
    with unchanged_host():
        with Sandbox(timeout=120) as sb:
            prepare(sb, [("write", RECORD, VALID_RECORD), ("write", DROPIN, OURS),
                         ("sysctl", "nf_conntrack_udp_timeout", 35)])
            sb.write("/srv/ncadv/play.yml", PLAY.format(settings=json.dumps(settings),
                                                        sysctl_file=json.dumps(sysctl_file)))
            before = sb.snapshot()
            proc, recap = run_playbook("/srv/ncadv/play.yml", netns=sb, check=check)
            after = sb.snapshot()
    out = proc.stdout[-4000:]
    assert recap.get("localhost", {}).get("failed") == 1, out
    assert named in proc.stdout, out
    # Neither the old rescue's claim nor the put-back message of a run that changed something.
    assert "Putting back the previous values" not in proc.stdout, out
    assert "Everything this run changed was put back" not in proc.stdout, out
    if sysctl_file != DROPIN:
        assert "Applying conntrack settings failed: nothing was changed" in proc.stdout, out
    assert summary(delta(before, after)) == {}, out


def test_the_suite_has_at_least_100_distinct_tries(guarded):
    extra = 3 + 1 + 2 + 2 + 2 + 1 + 5  # the tests below the table, by their ids (16)
    assert len(set(IDS)) + extra >= 100
    assert HEADER in OURS
