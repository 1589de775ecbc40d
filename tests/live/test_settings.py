"""netfilter.conntrack.settings against the live kernel, run through real ansible.

Every test holds the machine-wide kernel lock and restores the global values
(and any per-namespace key it changes in the initial namespace) in finalizers.
The module runs with a private overlay over /etc (support.etc): it writes the real boot
paths, which is all it accepts, and the host's /etc never changes.
"""
import json
import os
import subprocess
import sys

import pytest

from support.ansible import run_module
from support.etc import EtcOverlay
from support.kernel import NETFILTER, read_int, run, saved_sysctls, write_value
from support.traffic import tcp_connections

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(NETFILTER, "nf_conntrack_max")),
                                reason="nf_conntrack is not available")

# Per-namespace keys these tests change in the initial namespace; restored afterwards.
HOST_NS_KEYS = ("nf_conntrack_tcp_timeout_time_wait", "nf_conntrack_udp_timeout",
                "nf_conntrack_tcp_timeout_close", "nf_conntrack_generic_timeout")
REAL_PATHS = ("/etc/sysctl.d/90-netfilter-conntrack.conf", "/etc/modprobe.d/netfilter-conntrack.conf",
              "/etc/modules-load.d/netfilter-conntrack.conf", "/etc/udev/rules.d/90-netfilter-conntrack.rules")


@pytest.fixture
def host_keys(global_sysctls):
    with saved_sysctls(*HOST_NS_KEYS) as saved:
        yield dict(global_sysctls, **saved)


DROPIN = REAL_PATHS[0]


def file_args(tmp_path):
    """Every file option at its real boot path; the runs see them through tmp_path's /etc overlay."""
    return dict(zip(("sysctl_file", "modprobe_file", "modules_load_file", "udev_rule_file"), REAL_PATHS))


def proc_snapshot(read=None):
    """Every readable value under /proc/sys/net/netfilter except the live count."""
    out = {}
    for dirpath, _dirs, files in os.walk(NETFILTER):
        for name in files:
            if name == "nf_conntrack_count":
                continue
            path = os.path.join(dirpath, name)
            try:
                out[path] = read(path) if read else open(path).read()
            except OSError:
                continue
    return out


def tree_snapshot(*roots):
    out = {}
    for root in roots:
        if os.path.isfile(root):
            out[root] = open(root, "rb").read()
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                out[path] = open(path, "rb").read()
    return out


def sysctl_n(key):
    """procps sysctl as an outside oracle for the runtime value."""
    return int(run(["sysctl", "-n", "net.netfilter." + key]).stdout.strip())


def settings_module(args, **kw):
    assert "etc" in kw, "every settings run goes through an /etc overlay"
    res = run_module("settings", args, **kw)
    # The tree callback of ansible-core 2.19 leaves "failed" out of a failed result.
    if "FAILED!" in res["_stdout"]:
        res["failed"] = True
    return res


def apply(settings, tmp_path, **kw):
    args = dict(file_args(tmp_path), settings=settings)
    args.update(kw.pop("args", {}))
    kw.setdefault("etc", EtcOverlay(tmp_path))
    return settings_module(args, **kw)


def test_sets_max_and_buckets_for_real_and_a_rerun_reports_no_change(host_keys, tmp_path):
    new_max = read_int("nf_conntrack_max") + 4096
    settings = {"nf_conntrack_max": new_max, "nf_conntrack_buckets": 100000,
                "nf_conntrack_tcp_timeout_time_wait": 30}
    res = apply(settings, tmp_path)
    assert not res.get("failed"), res
    assert res["changed"]
    assert sysctl_n("nf_conntrack_max") == new_max
    # 100000 is not a multiple of 512: the kernel keeps 100352, and so must the module.
    assert sysctl_n("nf_conntrack_buckets") == 100352
    assert res["runtime"]["nf_conntrack_buckets"]["after"] == 100352
    assert sysctl_n("nf_conntrack_tcp_timeout_time_wait") == 30
    dropin = EtcOverlay(tmp_path).read(DROPIN)
    assert "net.netfilter.nf_conntrack_buckets = 100352\n" in dropin
    files_before = EtcOverlay(tmp_path).written()

    again = apply(settings, tmp_path)
    assert not again.get("failed"), again
    assert again["changed"] is False, "a rerun must report changed=0, rounded buckets included"
    assert EtcOverlay(tmp_path).written() == files_before


def test_check_mode_changes_zero_bytes_and_predicts_changed(host_keys, tmp_path):
    settings = {"nf_conntrack_max": read_int("nf_conntrack_max") + 512, "nf_conntrack_buckets": 100000,
                "nf_conntrack_udp_timeout": 17}
    proc_before = proc_snapshot()
    files_before = tree_snapshot(str(tmp_path), *REAL_PATHS)
    res = apply(settings, tmp_path, check=True, diff=True)
    assert not res.get("failed"), res
    assert res["changed"] is True
    assert proc_snapshot() == proc_before
    assert tree_snapshot(str(tmp_path), *REAL_PATHS) == files_before
    # The prediction is what a real run then reports.
    real = apply(settings, tmp_path)
    assert real["changed"] is True
    assert real["runtime"] == res["runtime"]
    assert apply(settings, tmp_path, check=True)["changed"] is False


def test_diff_shows_runtime_values_and_every_file(host_keys, tmp_path):
    res = apply({"nf_conntrack_udp_timeout": 19}, tmp_path, diff=True, args={"boot_fix": "always"})
    assert not res.get("failed"), res
    out = res["_stdout"]
    # ansible prints the module's diff list; the saved result drops it.
    assert "--- before: runtime (/proc/sys/net/netfilter)" in out
    assert "+net.netfilter.nf_conntrack_udp_timeout = 19" in out
    for path in file_args(tmp_path).values():
        if "modprobe" not in path:  # built in: no modprobe option
            assert "+++ after: %s" % path in out
    quiet = apply({"nf_conntrack_udp_timeout": 19}, tmp_path, diff=True, args={"boot_fix": "always"})
    assert quiet["changed"] is False and "+net.netfilter" not in quiet["_stdout"]


def test_in_a_netns_per_namespace_keys_apply_and_host_keys_are_skipped(global_sysctls, netns, tmp_path):
    host_max = read_int("nf_conntrack_max")
    host_udp = read_int("nf_conntrack_udp_timeout")
    settings = {"nf_conntrack_max": host_max + 1024, "nf_conntrack_buckets": 131072,
                "nf_conntrack_expect_max": 1024, "nf_conntrack_udp_timeout": 21,
                "nf_conntrack_tcp_timeout_time_wait": 11}
    res = apply(settings, tmp_path, netns=netns)
    assert not res.get("failed"), res
    assert set(res["skipped_keys"]) == {"nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_expect_max"}
    assert all("namespace" in why for why in res["skipped_keys"].values())
    assert int(netns.sysctl("nf_conntrack_udp_timeout")) == 21
    assert int(netns.sysctl("nf_conntrack_tcp_timeout_time_wait")) == 11
    assert read_int("nf_conntrack_max") == host_max
    assert read_int("nf_conntrack_udp_timeout") == host_udp, "the host namespace must not change"
    dropin = EtcOverlay(tmp_path).read(DROPIN)
    assert "nf_conntrack_max" not in dropin and "nf_conntrack_udp_timeout = 21" in dropin
    assert apply(settings, tmp_path, netns=netns)["changed"] is False

    strict = apply(dict(settings, nf_conntrack_udp_timeout=22), tmp_path, netns=netns, args={"strict": True})
    assert strict.get("failed") and "strict" in strict["msg"]
    assert int(netns.sysctl("nf_conntrack_udp_timeout")) == 21


def test_boot_replay_restores_every_value_from_the_persisted_files(host_keys, tmp_path):
    # A name of our own that sorts last, so that no other drop-in wins.
    name = "/etc/sysctl.d/99-netfilter-conntrack-livetest.conf"
    etc = EtcOverlay(tmp_path)
    settings = {"nf_conntrack_max": read_int("nf_conntrack_max") + 2048, "nf_conntrack_buckets": 70000,
                "nf_conntrack_expect_max": 2048, "nf_conntrack_udp_timeout": 23,
                "nf_conntrack_tcp_timeout_close": 7, "nf_conntrack_generic_timeout": 333}
    res = apply(settings, tmp_path, args={"sysctl_file": name})
    assert not res.get("failed"), res
    wanted = res["desired"]
    assert wanted["nf_conntrack_buckets"] == 70144
    # What the machine looked like before the tune run (or after a reboot without the files).
    for key, value in host_keys.items():
        write_value(key, value)
    assert read_int("nf_conntrack_udp_timeout") != 23
    # The command the udev rule runs when nf_conntrack appears; systemd-sysctl at boot does the same,
    # reading the same /etc the module wrote.
    etc.run(["/usr/lib/systemd/systemd-sysctl", "--prefix=/net/netfilter"])
    assert dict((k, read_int(k)) for k in wanted) == wanted
    assert apply(settings, tmp_path, args={"sysctl_file": name})["changed"] is False
    # procps replays the same values.
    for key, value in host_keys.items():
        write_value(key, value)
    etc.run(["sysctl", "-q", "-p", name])
    assert dict((k, read_int(k)) for k in wanted) == wanted
    assert not os.path.exists(name), "the host's own /etc never saw the file"


def test_read_only_etc_fails_before_any_change_in_check_and_real_runs(host_keys, tmp_path):
    settings = {"nf_conntrack_max": read_int("nf_conntrack_max") + 1024, "nf_conntrack_udp_timeout": 27}
    proc_before = proc_snapshot()
    for check in (True, False):
        res = apply(settings, tmp_path, check=check, etc=EtcOverlay(tmp_path, read_only=True))
        assert res.get("failed"), res
        assert "read-only file system" in res["msg"] and "nothing was changed" in res["msg"]
        assert proc_snapshot() == proc_before, "the host must be left fully old"
    assert EtcOverlay(tmp_path).written() == {}


CHURN = r'''
import socket, sys, threading, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(512)
port = srv.getsockname()[1]
def serve():
    while True:
        c, _ = srv.accept()
        c.sendall(b"k"); c.close()
threading.Thread(target=serve, daemon=True).start()
ok = failed = 0
stop = []
threading.Thread(target=lambda: (sys.stdin.read(), stop.append(1)), daemon=True).start()
print("ready", flush=True)
while not stop:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        if s.recv(1) != b"k":
            raise OSError("short read")
        s.close(); ok += 1
    except OSError:
        failed += 1
print("done", ok, failed, flush=True)
'''


def test_live_resize_under_load_loses_no_connection_and_keeps_the_count(global_sysctls, netns, tmp_path):
    held = 300
    script = tmp_path / "churn.py"
    script.write_text(CHURN)
    with tcp_connections(netns, held):
        churn = netns.popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            universal_newlines=True)
        assert churn.stdout.readline().strip() == "ready"
        count_before = netns.count()
        assert count_before >= held
        sizes = []
        for buckets in (65536, 262144, 65536):
            res = apply({"nf_conntrack_buckets": buckets}, tmp_path, args={"persist_sysctl": False})
            assert not res.get("failed"), res
            sizes.append(read_int("nf_conntrack_buckets"))
            # Entries move to the new table: the held connections are all still tracked.
            assert netns.count() >= held
        churn.stdin.close()
        done = churn.stdout.readline().split()
        churn.wait(timeout=30)
        count_after = netns.count()
    assert sizes == [65536, 262144, 65536]
    assert done[0] == "done" and int(done[1]) > 0
    assert int(done[2]) == 0, "connections failed while buckets were resized"
    assert count_after >= held


BAD_INPUTS = [
    ({"settings": {"nf_conntrack_foo": 1}}, "allowlist"),
    ({"settings": {"nf_conntrack_max; rm -rf /": 1}}, "not an nf_conntrack sysctl name"),
    ({"settings": {"../../x": 1}}, "not an nf_conntrack sysctl name"),
    ({"settings": {"net.ipv4.ip_forward": 1}}, "not an nf_conntrack sysctl name"),
    ({"settings": {"nf_conntrack_count": 5}}, "allowlist"),
    ({"settings": {"nf_conntrack_max": -1}}, "out of range"),
    ({"settings": {"nf_conntrack_max": "lots"}}, "expected an integer"),
    ({"settings": {"nf_conntrack_max": 1.5}}, "expected an integer"),
    ({"settings": {"nf_conntrack_max": [1024]}}, "expected an integer"),
    ({"settings": {"nf_conntrack_max": None}}, "expected an integer"),
    ({"settings": {"nf_conntrack_max": 4294967296}}, "out of range"),
    ({"settings": {"nf_conntrack_tcp_timeout_established": 0}}, "out of range"),
    ({"settings": {"nf_conntrack_tcp_timeout_established": 10 ** 9}}, "out of range"),
    ({"settings": {"nf_conntrack_tcp_loose": 7}}, "out of range"),
    ({"settings": {"nf_conntrack_buckets": 0}}, "out of range"),
    ({"settings": {"nf_conntrack_expect_max": 0}}, "out of range"),
    ({"settings": {"nf_conntrack_udp_timeout": 15, "nf_conntrack_max": 512, "nf_conntrack_bad": 1}}, "allowlist"),
    ({"settings": [1, 2]}, "dict"),
    ({"settings": {}}, "empty"),
    ({"settings": {"nf_conntrack_udp_timeout": 15}, "kube_proxy": "maybe"}, "kube_proxy"),
    ({"settings": {"nf_conntrack_udp_timeout": 15}, "sysctl_file": "/etc/sysctl.d/x.txt"}, ".conf"),
    ({"settings": {"nf_conntrack_udp_timeout": 15}, "nonsense_option": 1}, "nonsense_option"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[repr(a)[:60] for a, _msg in BAD_INPUTS])
def test_bad_input_fails_before_any_change(host_keys, tmp_path, args, message):
    files = file_args(tmp_path)
    merged = dict(files, **args)
    proc_before = proc_snapshot()
    files_before = tree_snapshot(str(tmp_path), *REAL_PATHS)
    res = settings_module(merged, etc=EtcOverlay(tmp_path))
    assert res.get("failed"), res
    assert message in res["msg"], res["msg"]
    assert res.get("changed") is False or "changed" not in res
    assert proc_snapshot() == proc_before
    assert tree_snapshot(str(tmp_path), *REAL_PATHS) == files_before


def test_record_is_kept_in_the_same_call_and_read_back_matches_the_kernel(host_keys, tmp_path):
    """The tune role's record and verify rely on this: originals from the first run, no rewrite on rerun."""
    record = str(tmp_path / "facts.d/netfilter_conntrack.fact")
    found = read_int("nf_conntrack_tcp_timeout_time_wait")
    first = found + 7
    res = apply({"nf_conntrack_tcp_timeout_time_wait": first, "nf_conntrack_buckets": 100000}, tmp_path,
                args={"record_file": record, "record_pressure_entries": 5000})
    assert not res.get("failed"), res
    # sysctl(8) is the oracle for the read-back the verify step compares.
    assert res["read_back"] == {"nf_conntrack_tcp_timeout_time_wait": sysctl_n("nf_conntrack_tcp_timeout_time_wait"),
                                "nf_conntrack_buckets": sysctl_n("nf_conntrack_buckets")}
    assert res["read_back"]["nf_conntrack_buckets"] == 100352
    with open(record) as f:
        data = json.load(f)
    assert data["original"]["nf_conntrack_tcp_timeout_time_wait"] == found
    assert data["applied"]["nf_conntrack_tcp_timeout_time_wait"] == first
    assert data["pressure_entries"] == 5000
    # What the facts module reports is the same record.
    facts = run_module("facts", {"record_file": record, "gather_kernel_log": False})
    assert facts["ansible_facts"]["conntrack"]["environment"]["tuning_record"] == data
    before = tree_snapshot(str(tmp_path))
    again = apply({"nf_conntrack_tcp_timeout_time_wait": first, "nf_conntrack_buckets": 100000}, tmp_path,
                  args={"record_file": record})
    assert again["changed"] is False and tree_snapshot(str(tmp_path)) == before
    later = apply({"nf_conntrack_tcp_timeout_time_wait": first + 1}, tmp_path, args={"record_file": record})
    assert later["changed"] is True
    with open(record) as f:
        assert json.load(f)["original"]["nf_conntrack_tcp_timeout_time_wait"] == found, "never overwritten"
    gone = apply({"nf_conntrack_tcp_timeout_time_wait": found}, tmp_path, args={"state": "absent", "record_file": record})
    assert gone["changed"] is True and not os.path.exists(record)
    assert sysctl_n("nf_conntrack_tcp_timeout_time_wait") == found
