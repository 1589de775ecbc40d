"""Unusual sequences that must still end with the host as it started, through real ``ansible -m``.

Each sequence runs in a fresh sandbox (tests/support/sandbox.py: /etc, /run, ... overlaid, a
throwaway network namespace), and the sandbox's sysctls and managed directories are compared
byte for byte (support.hoststate) before the first run and after the last.
"""
import os

import pytest

from support.ansible import run_module
from support.hoststate import delta, summary, unchanged_host
from support.kernel import NETFILTER
from support.sandbox import Sandbox

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(NETFILTER, "nf_conntrack_max")),
                                reason="nf_conntrack is not available")

RECORD = "/etc/ansible/facts.d/netfilter_conntrack.fact"
# Per-namespace keys: writable inside the sandbox's own network namespace.
TUNED = {"nf_conntrack_udp_timeout": 37, "nf_conntrack_tcp_timeout_time_wait": 61}
MOVED = {
    "sysctl_file": "/etc/sysctl.d/91-netfilter-conntrack.conf",
    "modules_load_file": "/etc/modules-load.d/91-netfilter-conntrack.conf",
    "udev_rule_file": "/etc/udev/rules.d/91-netfilter-conntrack.rules",
}
EXTRA = ["/etc/ansible"]


def settings(sb, args, check=False):
    res = run_module("settings", args, netns=sb, check=check)
    assert "FAILED!" not in res.get("_stdout", "") or res.get("failed"), res
    return res


@pytest.mark.parametrize("option", sorted(MOVED))
def test_tune_then_tune_with_another_file_then_rollback_leaves_the_host_as_it_started(kernel_lock, option):
    with unchanged_host(EXTRA):
        with Sandbox() as sb:
            sb.sh("rm -rf /etc/ansible")
            start = sb.snapshot(EXTRA)
            first = settings(sb, {"settings": TUNED, "record_file": RECORD, "boot_fix": "always"})
            assert not first.get("failed") and first["changed"], first.get("msg")
            second = settings(sb, {"settings": dict(TUNED, nf_conntrack_udp_timeout=41), "record_file": RECORD,
                                   "boot_fix": "always", option: MOVED[option]})
            assert not second.get("failed") and second["changed"], second.get("msg")
            middle = summary(delta(start, sb.snapshot(EXTRA)))
            back = settings(sb, {"state": "absent", "record_file": RECORD, option: MOVED[option]})
            assert not back.get("failed"), back.get("msg")
            end = sb.snapshot(EXTRA)
    assert MOVED[option] in middle and len([p for p in middle if "netfilter-conntrack" in p]) == 3, \
        "after the second tune only the moved file and its two siblings are ours: %s" % middle
    assert summary(delta(start, end)) == {}


@pytest.mark.parametrize("runtime", [{"nf_conntrack_max": 1}, {"nf_conntrack_max": 0}],
                         ids=["max-1", "max-0-unlimited"])
def test_restore_is_refused_a_max_that_a_request_is_refused(kernel_lock, runtime):
    with unchanged_host(EXTRA):
        with Sandbox() as sb:
            start = sb.snapshot(EXTRA)
            asked = settings(sb, {"settings": runtime})
            for check in (False, True):
                restored = settings(sb, {"restore": {"runtime": runtime, "files": {}, "directories": []}},
                                    check=check)
                assert restored.get("failed") and "set force: true" in restored["msg"], restored
            end = sb.snapshot(EXTRA)
    assert asked.get("failed") and "set force: true" in asked["msg"], asked
    assert summary(delta(start, end)) == {}


@pytest.mark.parametrize("path", ["/etc/ansible/facts.d", "/etc/ansible"])
def test_a_record_file_where_ansible_needs_a_directory_is_refused_and_later_records_still_work(kernel_lock, path):
    with unchanged_host(EXTRA):
        with Sandbox() as sb:
            sb.sh("rm -rf /etc/ansible")
            start = sb.snapshot(EXTRA)
            for check in (False, True):
                refused = settings(sb, {"settings": TUNED, "record_file": path}, check=check)
                assert refused.get("failed") and "directory Ansible itself uses" in refused["msg"], refused
            assert summary(delta(start, sb.snapshot(EXTRA))) == {}
            tuned = settings(sb, {"settings": TUNED, "record_file": RECORD})
            assert not tuned.get("failed") and tuned["changed"], tuned.get("msg")
            fact = sb.exec(["cat", RECORD], check=False)
            back = settings(sb, {"state": "absent", "record_file": RECORD})
            assert not back.get("failed"), back.get("msg")
            end = sb.snapshot(EXTRA)
    assert fact.returncode == 0 and '"original"' in fact.stdout
    assert summary(delta(start, end)) == {}
