"""The tune playbook's health gate against a real overflow.

A steady stream of new UDP flows (about 500 a second, each entry living 600 s) runs in
a test namespace. Tuning the global nf_conntrack_max below what that namespace holds
makes the kernel drop packets and log "table full in netns N": the gate must see the
table-full messages in the window after the change and halt the rollout. A harmless
change under the same traffic must pass it.
"""
import sys
import time

from support.ansible import run_playbook
from support.etc import EtcOverlay
from support.kernel import read_int
from support.traffic import UDP_FILL_RULESET

SENDER = r"""
import socket, sys, time
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
port, start = 1024, time.monotonic()
while time.monotonic() - start < float(sys.argv[1]):
    for _ in range(25):
        try:
            sock.sendto(b"x", ("127.0.0.1", port))
        except OSError:
            pass
        port = 1024 if port >= 65535 else port + 1
    time.sleep(0.05)
"""


def _flowing(ns, entries):
    """Start the sender in ns and wait until the namespace holds `entries`."""
    ns.sysctl("nf_conntrack_udp_timeout", 600)
    sender = ns.popen([sys.executable, "-c", SENDER, "300"])
    deadline = time.monotonic() + 60
    while int(ns.sysctl("nf_conntrack_count")) < entries:
        assert time.monotonic() < deadline, "the sender did not fill the namespace"
        time.sleep(0.2)
    return sender


def _tune(tmp_path, settings, netns=None, **extra):
    proc, recap = run_playbook("netfilter.conntrack.tune", netns=netns, etc=EtcOverlay(tmp_path), extra_vars=dict({
        "tune_settings": settings,
        "tune_record_file": str(tmp_path / "record.fact"),
        "tune_health_sample_seconds": 3,
    }, **extra))
    return proc.stdout + proc.stderr, recap["localhost"]


def test_gate_halts_when_the_new_max_overflows_the_table(global_sysctls, netns, tmp_path):
    netns.nft(UDP_FILL_RULESET)
    sender = _flowing(netns, 2000)
    found = read_int("nf_conntrack_max")
    try:
        # Below the live count: only with force.
        out, recap = _tune(tmp_path, {"nf_conntrack_max": 1024}, tune_force=True)
    finally:
        sender.kill()
    # The value took (verify passed); the gate is what failed the host, and it put back what it found.
    assert recap["failed"] == 1, out
    assert "Conntrack got worse after tuning" in out and "'table full' kernel messages" in out, out
    assert "Everything this run changed was put back" in out, out
    assert "NO MORE HOSTS LEFT" in out, out
    assert read_int("nf_conntrack_max") == found
    assert EtcOverlay(tmp_path).written() == {}, "the drop-in and the record are gone again"
    assert not (tmp_path / "record.fact").exists()


def test_gate_passes_a_harmless_change_under_the_same_traffic(global_sysctls, netns, tmp_path):
    netns.nft(UDP_FILL_RULESET)
    sender = _flowing(netns, 1000)
    try:
        out, recap = _tune(tmp_path, {"nf_conntrack_udp_timeout": 599}, netns=netns)
    finally:
        sender.kill()
    assert recap["failed"] == 0 and recap["changed"] > 0, out
    assert netns.sysctl("nf_conntrack_udp_timeout") == "599", out
