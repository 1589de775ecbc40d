"""Unusual sequences that must still end with the host as it was before the first tune."""
import json

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import boot_files

from support.fakehost import DROPIN, make_host
from unit.plugins.module_utils._conntrack.test_write_path_guarantees import RECORD, refused, run, tree

MOVED = {
    "sysctl_file": "/etc/sysctl.d/91-netfilter-conntrack.conf",
    "modules_load_file": "/etc/modules-load.d/91-netfilter-conntrack.conf",
    "udev_rule_file": "/etc/udev/rules.d/91-netfilter-conntrack.rules",
    "modprobe_file": "/etc/modprobe.d/91-netfilter-conntrack.conf",
}
SETTINGS = {"nf_conntrack_udp_timeout": 15, "nf_conntrack_buckets": 131072}


def tune(root, **kw):
    return run(root, SETTINGS, record_file=RECORD, boot_fix="always", **kw)


@pytest.mark.parametrize("option", sorted(MOVED))
def test_a_boot_file_moved_between_tunes_is_removed_and_rollback_restores_the_host(tmp_path, option):
    root = make_host(tmp_path, module="loadable")
    before = tree(root)
    assert tune(root)[0]
    first = [p for p in tree(root) if p.endswith("-conntrack.conf") or p.endswith(".rules")]
    changed, b = tune(root, **{option: MOVED[option]})
    assert changed
    after_second = tree(root)
    moved_away = [p for p in first if p not in after_second]
    assert len(moved_away) == 1 and str(root / MOVED[option].lstrip("/")) in after_second, \
        "the earlier file must go when the record moves it"
    assert b.result()["files"][moved_away[0][len(str(root)):]]["state"] == "absent"
    assert run(root, {}, record_file=RECORD, state="absent", **{option: MOVED[option]})[0]
    assert tree(root) == before


def test_moving_the_drop_in_in_check_mode_predicts_the_removal_and_touches_nothing(tmp_path):
    root = make_host(tmp_path)
    tune(root)
    before = tree(root)
    changed, b = tune(root, sysctl_file=MOVED["sysctl_file"], check_mode=True)
    assert changed and b.result()["files"][DROPIN] == {"changed": True, "state": "absent", "backup": None}
    assert any(d["before_header"] == DROPIN and d["after_header"] == DROPIN + " (absent)" for d in b.diff())
    assert tree(root) == before


def test_the_put_back_of_a_run_that_moved_the_drop_in_brings_the_first_back(tmp_path):
    root = make_host(tmp_path)
    tune(root)
    before = tree(root)
    changed, b = tune(root, sysctl_file=MOVED["sysctl_file"])
    undo = json.loads(json.dumps(b.result()["undo"]))
    assert run(root, {}, restore=undo, record_file=RECORD, sysctl_file=MOVED["sysctl_file"])[0]
    assert tree(root) == before


def test_an_earlier_path_that_is_no_longer_ours_is_left_alone(tmp_path):
    root = make_host(tmp_path)
    tune(root)
    (root / DROPIN.lstrip("/")).write_text("net.netfilter.nf_conntrack_udp_timeout = 25\n")
    changed, b = tune(root, sysctl_file=MOVED["sysctl_file"])
    assert (root / DROPIN.lstrip("/")).read_text() == "net.netfilter.nf_conntrack_udp_timeout = 25\n"
    assert any("left alone" in w for w in b.warnings)


def test_a_record_naming_a_foreign_path_stops_the_next_tune(tmp_path):
    root = make_host(tmp_path)
    tune(root)
    path = root / RECORD.lstrip("/")
    data = json.loads(path.read_text())
    data["files"]["sysctl"] = "/etc/sysctl.conf"
    path.write_text(json.dumps(data))
    before = tree(root)
    refused(root, SETTINGS, "names files.sysctl", record_file=RECORD)
    assert tree(root) == before


# The restore option writes the kernel like a request: the same guards, the same force.
@pytest.mark.parametrize("runtime, match", [
    ({"nf_conntrack_max": 1}, r"restore\.runtime\.nf_conntrack_max: 1 is below 1024"),
    ({"nf_conntrack_max": 0}, r"restore\.runtime\.nf_conntrack_max: 0 removes the limit"),
    ({"nf_conntrack_buckets": 100000000}, r"restore\.runtime\.nf_conntrack_buckets: .* more than half"),
])
def test_restore_is_refused_what_a_request_is_refused(tmp_path, runtime, match):
    root = make_host(tmp_path)
    (root / "proc/meminfo").write_text("MemTotal:        1000000 kB\n")
    before = tree(root)
    refused(root, {}, match, restore={"runtime": runtime, "files": {}, "directories": []})
    assert tree(root) == before


def test_restore_of_a_tiny_max_goes_through_with_force(tmp_path):
    root = make_host(tmp_path)
    assert run(root, {}, restore={"runtime": {"nf_conntrack_max": 1}}, force=True)[0]
    assert (root / "proc/sys/net/netfilter/nf_conntrack_max").read_text().strip() == "1"


# A record at a path Ansible needs as a directory would block every later local fact.
@pytest.mark.parametrize("path", ["/etc/ansible/facts.d", "/etc/ansible", "/etc", "/usr/share/ansible/roles",
                                  "/etc/ansible/roles", "/root/.ansible/tmp", "/home/ops/.ansible"])
def test_record_file_at_a_directory_ansible_uses_is_refused(tmp_path, path):
    root = make_host(tmp_path)
    before = tree(root)
    refused(root, SETTINGS, "record_file: %r" % path, record_file=path)
    assert tree(root) == before


@pytest.mark.parametrize("path", ["/etc/modules-load.d", "/etc/udev/rules.d", "/etc/udev", "/run/sysctl.d"])
def test_record_file_at_a_directory_the_boot_reads_is_refused(tmp_path, path):
    root = make_host(tmp_path)
    refused(root, SETTINGS, "record_file: %r is a directory the boot reads" % path, record_file=path)


def test_a_record_beside_the_facts_directory_is_still_accepted(tmp_path):
    root = make_host(tmp_path)
    assert run(root, SETTINGS, record_file="/etc/ansible/netfilter_conntrack.json")[0]
    assert (root / "etc/ansible/netfilter_conntrack.json").is_file()
    assert boot_files.OWN_MARKER in (root / DROPIN.lstrip("/")).read_text()
