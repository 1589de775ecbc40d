"""Runtime and reboots on a kernel with a loadable nf_conntrack (Debian's), one guest, three reboots.

The tests run in file order and share one guest:

boot 0  fresh: facts before the module is loaded; facts load nothing; tune before the module
        was ever loaded (only boot files can be written)
boot 1  modules-load.d + modprobe.d + sysctl.d bring every value back; a second tune changes
        nothing; rollback
boot 2  none of our files is left; modprobe gives the kernel defaults, which is what the
        rollback restored; facts after modprobe; tune with the module loaded; then the
        late-load setup: no modules-load.d entry, nftables.service with a ``ct state`` rule
boot 3  nftables pulls nf_conntrack in after systemd-sysctl ran: the udev rule re-applies
        every value; rollback
"""
import json

import pytest

NETFILTER = "/proc/sys/net/netfilter"
HASHSIZE = "/sys/module/nf_conntrack/parameters/hashsize"
OUR_FILES = ("/etc/sysctl.d/90-netfilter-conntrack.conf", "/etc/modprobe.d/netfilter-conntrack.conf",
             "/etc/modules-load.d/netfilter-conntrack.conf", "/etc/udev/rules.d/90-netfilter-conntrack.rules",
             "/etc/ansible/facts.d/netfilter_conntrack.fact")
RECORD = "/etc/ansible/facts.d/netfilter_conntrack.fact"

# Buckets that the kernel rounds up to a multiple of 512 (4 KiB pages of 8-byte heads).
BEFORE_LOAD = {"nf_conntrack_max": 200000, "nf_conntrack_buckets": 50000, "nf_conntrack_tcp_timeout_time_wait": 30}
BEFORE_LOAD_READ = dict(BEFORE_LOAD, nf_conntrack_buckets=50176)
LOADED = {"nf_conntrack_max": 300000, "nf_conntrack_buckets": 70000, "nf_conntrack_tcp_timeout_time_wait": 45,
          "nf_conntrack_udp_timeout": 20}
LOADED_READ = dict(LOADED, nf_conntrack_buckets=70144)
KEYS = sorted(set(BEFORE_LOAD) | set(LOADED))

LATE_RULESET = """#!/usr/sbin/nft -f
flush ruleset
table inet nc_lab {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state established,related accept
    }
}
"""

# What one test learns and a later one checks (the tests run in order on one guest).
seen = {}


def tune(guest, settings):
    # The health gate has its own live tests; here it would only add four sample calls.
    return guest.playbook("netfilter.conntrack.tune", {"tune_settings": settings, "tune_health_gate": False})


def rollback(guest):
    return guest.playbook("netfilter.conntrack.rollback")


def assert_ok(out, recap):
    assert recap is not None, out
    assert recap["failed"] == 0 and recap["unreachable"] == 0, out


def values(guest):
    """The runtime values of KEYS and the module's hash size, in one ssh round trip."""
    paths = ["%s/%s" % (NETFILTER, k) for k in KEYS] + [HASHSIZE]
    lines = guest.sh("cat %s" % " ".join(paths)).split()
    return dict(zip(KEYS + ["hashsize"], (int(v) for v in lines)))


def present(guest, paths=OUR_FILES):
    """The paths that exist on the guest, in one round trip."""
    out = guest.sh("for p in %s; do [ -e \"$p\" ] && echo \"$p\"; done; true" % " ".join(paths))
    return out.split()


# ------------------------------------------------------------------ boot 0: nothing loaded yet

def test_facts_module_loads_neither_nf_tables_nor_nf_conntrack_on_a_fresh_boot(guest):
    before = guest.lsmod()
    assert not {"nf_conntrack", "nf_tables"} & set(before), "loaded before any facts call: %s" % before
    seen["etc_ansible_existed"] = guest.exists("/etc/ansible")
    try:
        result = guest.module("facts", {"sample_seconds": 1})
        assert not result["failed"], result
        loaded = sorted(set(guest.lsmod()) - set(before))
        assert loaded == [], "the facts module loaded %s" % loaded
    finally:
        # Unload what it loaded, so that the next steps still see a never-loaded nf_conntrack.
        for name in sorted(set(guest.lsmod()) - set(before)):
            guest.sh("modprobe -r %s" % name, check=False)


def test_facts_before_modprobe_say_loadable_and_not_available(guest):
    assert "nf_conntrack" not in guest.lsmod()
    facts = guest.facts()
    assert facts["module"] == "loadable"
    assert facts["available"] is False
    assert facts["active"] is False
    assert facts["host_settable"] is False
    assert facts["settings"] == {}
    assert facts["kernel_release"].startswith(("6.1.", "5.10."))


def test_tune_before_the_module_was_ever_loaded_writes_the_boot_files(guest):
    out, recap = tune(guest, BEFORE_LOAD)
    assert_ok(out, recap)
    assert recap["changed"] > 0, out
    assert present(guest) == list(OUR_FILES), out
    assert "hashsize=50176" in guest.sh("cat /etc/modprobe.d/netfilter-conntrack.conf")
    assert "nf_conntrack" in guest.sh("cat /etc/modules-load.d/netfilter-conntrack.conf").split()
    assert "systemd-sysctl --prefix=/net/netfilter" in guest.sh("cat /etc/udev/rules.d/90-netfilter-conntrack.rules")
    seen["record_before_load"] = json.loads(guest.sh("cat %s" % RECORD))


# ------------------------------------------------------------------ boot 1: the early-load path

def test_every_value_comes_back_after_a_reboot_through_modules_load_and_modprobe(guest):
    guest.reboot()
    assert "nf_conntrack" in guest.lsmod()
    got = values(guest)
    assert {k: got[k] for k in BEFORE_LOAD} == BEFORE_LOAD_READ
    assert got["hashsize"] == BEFORE_LOAD_READ["nf_conntrack_buckets"]


def test_tune_after_the_reboot_changes_nothing(guest):
    out, recap = tune(guest, BEFORE_LOAD)
    assert_ok(out, recap)
    assert recap["changed"] == 0, out


def test_record_of_a_tune_before_load_keeps_what_the_kernel_boots_with(guest):
    record = json.loads(guest.sh("cat %s" % RECORD))
    seen["record_after_reboot"] = record
    # The originals of a tune before the module was loaded are what the kernel would boot with,
    # never the tuned values (issue 9 item 4).
    assert set(record["original"]) >= set(BEFORE_LOAD), record
    for key, value in BEFORE_LOAD_READ.items():
        assert record["original"][key] != value, record


def test_rollback_after_a_tune_before_load_removes_our_files(guest):
    out, recap = rollback(guest)
    seen["rolled_back_to"] = values(guest)
    assert_ok(out, recap)
    assert present(guest) == [], out
    if not seen.get("etc_ansible_existed", True):
        assert not guest.exists("/etc/ansible/facts.d"), "rollback left the facts.d it created"


# ------------------------------------------------------------------ boot 2: after rollback

def test_after_rollback_and_reboot_nothing_of_ours_is_left_and_nothing_loads_the_module(guest):
    guest.reboot()
    assert present(guest) == []
    assert "nf_conntrack" not in guest.lsmod()


def test_facts_after_modprobe_say_loadable_available_and_settable(guest):
    guest.sh("modprobe nf_conntrack")
    facts = guest.facts()
    assert facts["module"] == "loadable"
    assert facts["available"] is True
    assert facts["host_settable"] is True
    assert facts["initial_netns"] is True
    assert facts["module_parameters"]["hashsize"] == facts["settings"]["nf_conntrack_buckets"]
    assert facts["active"] is True
    seen["defaults"] = values(guest)


def test_rollback_restored_the_kernel_defaults(guest):
    if "rolled_back_to" not in seen or "defaults" not in seen:
        pytest.skip("an earlier step failed")
    assert seen["rolled_back_to"] == seen["defaults"]
    record = seen.get("record_after_reboot")
    if record:
        assert {k: record["original"].get(k) for k in BEFORE_LOAD} == {k: seen["defaults"][k] for k in BEFORE_LOAD}


def test_tune_with_the_module_loaded_rounds_buckets_and_a_rerun_changes_nothing(guest):
    out, recap = tune(guest, LOADED)
    assert_ok(out, recap)
    assert recap["changed"] > 0
    got = values(guest)
    assert {k: got[k] for k in LOADED} == LOADED_READ
    assert got["hashsize"] == LOADED_READ["nf_conntrack_buckets"]
    assert "hashsize=70144" in guest.sh("cat /etc/modprobe.d/netfilter-conntrack.conf")
    record = json.loads(guest.sh("cat %s" % RECORD))
    assert {k: record["original"][k] for k in LOADED} == {k: seen["defaults"][k] for k in LOADED}, record
    out, recap = tune(guest, LOADED)
    assert_ok(out, recap)
    assert recap["changed"] == 0, out


# ------------------------------------------------------------------ boot 3: the late-load path

def test_udev_rule_reapplies_every_value_when_nftables_loads_the_module_after_sysctl(guest):
    # A host that never loads nf_conntrack early: only a ct rule in nftables.service pulls it in,
    # after systemd-sysctl ran (Debian's unit has no order against it; the drop-in fixes the
    # order so that this boot is the late one every time).
    guest.sh("rm -f /etc/modules-load.d/netfilter-conntrack.conf\n"
             "cat > /etc/nftables.conf <<'EOF'\n%sEOF\n"
             "mkdir -p /etc/systemd/system/nftables.service.d\n"
             "printf '[Unit]\\nAfter=systemd-sysctl.service\\n' > /etc/systemd/system/nftables.service.d/late.conf\n"
             "systemctl enable nftables.service" % LATE_RULESET)
    guest.reboot()
    assert guest.sh("systemctl is-active nftables.service").strip() == "active"
    assert "nf_conntrack" in guest.lsmod()
    sysctl_done = int(guest.sh("systemctl show -P ExecMainExitTimestampMonotonic systemd-sysctl.service"))
    loaded_at = int(guest.sh("systemctl show -P ExecMainStartTimestampMonotonic nftables.service"))
    assert sysctl_done < loaded_at, "not a late load: nftables started before systemd-sysctl ended"
    got = values(guest)
    assert {k: got[k] for k in LOADED} == LOADED_READ
    assert got["hashsize"] == LOADED_READ["nf_conntrack_buckets"]


def test_rollback_after_the_late_load_restores_the_defaults_and_removes_our_files(guest):
    out, recap = rollback(guest)
    assert_ok(out, recap)
    got = values(guest)
    # Buckets are resized at runtime; the hash size parameter follows the sysctl.
    assert got == seen["defaults"]
    assert present(guest) == []
    if not seen.get("etc_ansible_existed", True):
        assert not guest.exists("/etc/ansible/facts.d"), "rollback left the facts.d it created"
