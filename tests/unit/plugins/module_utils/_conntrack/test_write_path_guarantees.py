"""The write path's guarantees (docs/settings.md, "Guarantees"), one behaviour per test.

Every test works on a temporary root that looks like a host and compares the whole tree
byte for byte before and after, the way the live adversarial suite compares the real host.
"""
import errno
import json
import multiprocessing
import os
import signal

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import (
    boot_files, files, gathering, reading, settings_input, transaction, tuning_record, writing,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.settings_input import SettingsError
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.transaction import ApplyError
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.writing import ConntrackSettings

from support.fakehost import DEFAULTS, DROPIN, make_host

RECORD = "/etc/ansible/facts.d/netfilter_conntrack.fact"


def tree(root):
    """Every path under root: (kind, mode, bytes or link target), without following links."""
    out = {}
    for dirpath, dirs, names in os.walk(str(root)):
        for name in dirs + names:
            path = os.path.join(dirpath, name)
            if os.path.relpath(path, str(root)).split(os.sep)[0] == "run":
                continue  # the host lock file, made once and left (as /run/lock files are)
            st = os.lstat(path)
            if os.path.islink(path):
                out[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[path] = ("dir", st.st_mode)
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    out[path] = ("file", st.st_mode, f.read())
            else:
                out[path] = ("special", st.st_mode)
    return out


def run(root, settings, check_mode=False, **kw):
    kw.setdefault("granularity", 512)
    backend = ConntrackSettings(settings, root=str(root), **kw)
    changed = backend.run(check_mode=check_mode)
    return changed, backend


def refused(root, settings, match, **kw):
    before = tree(root)
    for check_mode in (True, False):
        with pytest.raises(SettingsError, match=match) as info:
            run(root, settings, check_mode=check_mode, **kw)
        assert str(info.value).startswith("nothing was changed: ")
        assert tree(root) == before, "a refused run must leave the host byte for byte as it was"
    return str(info.value)


class _Alarm(object):
    """Fail instead of hanging: a FIFO read would block forever."""

    def __enter__(self):
        signal.signal(signal.SIGALRM, self._boom)
        signal.alarm(10)

    def __exit__(self, *exc):
        signal.alarm(0)

    @staticmethod
    def _boom(*_args):
        raise AssertionError("hung")


# 1. A refused input changes nothing and says so.
@pytest.mark.parametrize("settings, match", [
    ({"nf_conntrack_max": "lots"}, r"settings.nf_conntrack_max: expected an integer, got str 'lots'"),
    ({"nf_conntrack_max": True}, r"settings.nf_conntrack_max: expected an integer, got a boolean"),
    ({"nf_conntrack_tcp_timeout_time_wait": 0}, r"out of range \(accepted: 1\.\.2147483 seconds\)"),
    ({"nf_conntrack_maxx": 100000}, r"not on the allowlist.*did you mean nf_conntrack_max\?"),
    ({"kernel.panic": 1}, r"is not an nf_conntrack sysctl name"),
    ({"nf_conntrack_count": 5}, r"nf_conntrack_count is not on the allowlist"),
])
def test_refused_input_changes_nothing_and_says_nothing_was_changed(tmp_path, settings, match):
    root = make_host(tmp_path)
    run(root, {"nf_conntrack_udp_timeout": 20, "nf_conntrack_max": 300000}, record_file=RECORD)
    refused(root, settings, match, record_file=RECORD)


# 2. Full disk with backup: true: everything back, no backup left behind.
def test_a_failing_backup_rolls_back_everything_and_leaves_no_backup(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    run(root, {"nf_conntrack_udp_timeout": 20}, record_file=RECORD, boot_fix="always")
    for path in (settings_input.DEFAULT_MODULES_LOAD_FILE, settings_input.DEFAULT_UDEV_RULE_FILE):
        (root / path.lstrip("/")).write_text(boot_files.HEADER + "# an older version of ours\n")
    before = tree(root)
    real = files.copy_regular

    def full_disk(full, dest):
        if full.endswith(".rules"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(full, dest)  # the copies before it were made

    monkeypatch.setattr(files, "copy_regular", full_disk)
    with pytest.raises(ApplyError, match="No space left on device.*rolled back.*as it was before this run"):
        run(root, {"nf_conntrack_udp_timeout": 15, "nf_conntrack_max": 300000}, record_file=RECORD,
            backup=True, boot_fix="always")
    assert tree(root) == before, "runtime, files, record and backups all as they were"
    assert not [p for p in tree(root) if p.endswith("~")]


def test_a_directory_without_room_is_refused_before_any_change(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    before = tree(root)
    for free, match in (((0, 100), "has 0 bytes free"), ((1 << 20, 0), "has 0 free inodes")):
        monkeypatch.setattr(transaction, "_free_space", lambda directory, free=free: free)
        for check_mode in (True, False):
            with pytest.raises(ApplyError, match=r"nothing was changed: .* %s" % match):
                run(root, {"nf_conntrack_udp_timeout": 15}, check_mode=check_mode)
        assert tree(root) == before


def test_a_write_failing_midway_puts_back_runtime_files_record_and_new_directories(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    before = tree(root)
    real = files.write_atomic

    def immutable(path, data, mode=0o644):
        if path.endswith(".rules"):
            raise OSError(errno.EPERM, "Operation not permitted")
        return real(path, data, mode)

    monkeypatch.setattr(files, "write_atomic", immutable)
    with pytest.raises(ApplyError, match="Operation not permitted.*rolled back.*as it was before") as info:
        run(root, {"nf_conntrack_max": 300000, "nf_conntrack_udp_timeout": 15}, record_file=RECORD,
            boot_fix="always")
    assert tree(root) == before, "facts.d and /etc/ansible made by the run are gone again"
    # The immutable file never changed: there is nothing to undo there, and no false alarm.
    assert info.value.result["rollback_errors"] == [] and "ROLLBACK FAILED" not in str(info.value)


def test_a_first_write_that_fails_says_nothing_was_changed(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    before = tree(root)

    def immutable(path, data, mode=0o644):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files, "write_atomic", immutable)
    with pytest.raises(ApplyError, match="^nothing was changed: writing the tuning record failed") as info:
        run(root, {"nf_conntrack_udp_timeout": 15}, record_file=RECORD)
    assert info.value.result["rolled_back"] == [] and info.value.result["rollback_errors"] == []
    assert tree(root) == before


# 3. An unreadable record stops the run and is kept.
@pytest.mark.parametrize("content, why", [
    ('{"schema_version": 1, "original": {"nf_conntrack_max": 26', "not valid JSON"),
    ("", "it is empty"),
    ("not json at all", "not valid JSON"),
    ("[1, 2]", "not an object"),
    ('{"schema_version": 2, "original": {}, "applied": {}}', "schema_version is 2"),
    ('{"schema_version": 1, "original": {"nf_conntrack_max": "x"}, "applied": {}}', "original must map"),
    ('{"schema_version": 1, "original": {}, "applied": {}, "files": {"sysctl": 3}}', "files must map"),
])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_unreadable_record_stops_tune_and_rollback_and_is_never_overwritten(tmp_path, content, why, state):
    root = make_host(tmp_path)
    record = root / RECORD.lstrip("/")
    record.parent.mkdir(parents=True)
    record.write_text(content)
    settings = {"nf_conntrack_max": 300000} if state == "present" else {}
    msg = refused(root, settings, "tuning record %s cannot be used: .*%s" % (RECORD, why), state=state,
                  record_file=RECORD)
    assert "mv %s %s.broken" % (RECORD, RECORD) in msg


def test_record_file_naming_a_file_that_is_not_a_record_is_refused(tmp_path):
    root = make_host(tmp_path)
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    refused(root, {"nf_conntrack_max": 300000}, "tuning record /etc/hosts cannot be used", record_file="/etc/hosts")


@pytest.mark.parametrize("path", ["/etc/ansible/facts.d/conntrack.json", "/etc/ansible/facts.d/sub/x.fact",
                                  "relative.fact", "/etc/ansible/facts.d/../x.fact", "/"])
def test_record_file_outside_the_rules_is_refused(tmp_path, path):
    refused(make_host(tmp_path), {"nf_conntrack_max": 300000}, "record_file: ", record_file=path)


def test_facts_report_an_unusable_record_instead_of_no_record(tmp_path):
    root = make_host(tmp_path)
    record = root / RECORD.lstrip("/")
    record.parent.mkdir(parents=True)
    record.write_text('{"schema_version": 1, "orig')
    r = reading.Reader(str(root))
    data, error = tuning_record.read_tuning_record(r, RECORD)
    assert data is None and "not valid JSON" in error and "Move it aside" in error


# 4. Originals when nf_conntrack is loadable and not yet loaded.
def make_unloaded_host(tmp_path, mem_kib=1572864, release="6.1.0-27-amd64"):
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    (root / "proc/meminfo").write_text("MemTotal:       %d kB\n" % mem_kib)
    (root / "proc/sys/net/netfilter").mkdir(parents=True)  # only nf_log before modprobe
    (root / "proc/modules").write_text("ext4 1 0 - Live 0x0\n")
    moddir = root / "lib/modules" / release
    moddir.mkdir(parents=True)
    (moddir / "modules.dep").write_text("kernel/net/netfilter/nf_conntrack.ko.xz: kernel/lib/libcrc32c.ko.xz\n")
    (root / "etc/sysctl.d").mkdir(parents=True)
    return root


def load_module(root, values):
    """What a boot that loads nf_conntrack and applies our sysctl.d/udev rule leaves."""
    nf = root / "proc/sys/net/netfilter"
    for key, value in values.items():
        (nf / key).write_text("%d\n" % value)
    params = root / "sys/module/nf_conntrack/parameters"
    params.mkdir(parents=True, exist_ok=True)
    (params / "hashsize").write_text("%d\n" % values["nf_conntrack_buckets"])
    (root / "sys/module/nf_conntrack/initstate").write_text("live\n")
    (nf / "nf_conntrack_count").write_text("3\n")


TUNED = {"nf_conntrack_max": 131072, "nf_conntrack_buckets": 32768, "nf_conntrack_tcp_timeout_time_wait": 60}


def test_originals_of_an_unloaded_module_are_what_the_kernel_boots_with(tmp_path):
    root = make_unloaded_host(tmp_path)
    changed, b = run(root, dict(TUNED), record_file=RECORD, now=lambda: "2026-12-01T00:00:00Z")
    assert changed
    record = json.loads((root / RECORD.lstrip("/")).read_text())
    # 6.1 on 1.5 GiB: 65536 buckets, max == buckets (5.15+), time_wait 120 s.
    assert record["original"] == {"nf_conntrack_max": 65536, "nf_conntrack_buckets": 65536,
                                  "nf_conntrack_tcp_timeout_time_wait": 120}
    assert set(record["original_source"].values()) == {"kernel_default"}
    # The reboot loads the module with our values; the same tune again changes nothing.
    load_module(root, dict(TUNED, nf_conntrack_expect_max=512))
    changed, b = run(root, dict(TUNED), record_file=RECORD, now=lambda: "2026-12-01T01:00:00Z")
    assert not changed, "the second identical tune after the reboot reports changed=0"
    # Rollback restores the true originals, not the tuned values.
    changed, b = run(root, {}, state="absent", record_file=RECORD)
    assert changed
    nf = root / "proc/sys/net/netfilter"
    assert int((nf / "nf_conntrack_max").read_text()) == 65536
    assert int((nf / "nf_conntrack_tcp_timeout_time_wait").read_text()) == 120
    assert not (root / RECORD.lstrip("/")).exists()


def test_originals_of_an_unloaded_module_take_the_values_other_boot_files_set(tmp_path):
    root = make_unloaded_host(tmp_path, release="5.10.0-30-amd64", mem_kib=8 * 1024 * 1024)
    (root / "etc/sysctl.d/80-site.conf").write_text("net.netfilter.nf_conntrack_tcp_timeout_time_wait = 90\n")
    (root / "etc/modprobe.d").mkdir(parents=True)
    (root / "etc/modprobe.d/site.conf").write_text("options nf_conntrack hashsize=16384\n")
    run(root, dict(TUNED), record_file=RECORD)
    record = json.loads((root / RECORD.lstrip("/")).read_text())
    # A hashsize option keeps the kernel's old max factor 8.
    assert record["original"] == {"nf_conntrack_max": 131072, "nf_conntrack_buckets": 16384,
                                  "nf_conntrack_tcp_timeout_time_wait": 90}
    assert record["original_source"]["nf_conntrack_tcp_timeout_time_wait"] == "file:/etc/sysctl.d/80-site.conf"
    assert record["original_source"]["nf_conntrack_buckets"] == "file:/etc/modprobe.d/site.conf"


def test_boot_defaults_follow_the_kernel_version():
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel
    gib = 1 << 30
    assert kernel.boot_defaults("6.18.0", 23 * gib)["nf_conntrack_max"] == 262144
    old = kernel.boot_defaults("5.10.0-30-amd64", 8 * gib)
    assert (old["nf_conntrack_buckets"], old["nf_conntrack_max"]) == (65536, 262144)
    assert kernel.boot_defaults("6.1.0", 2 * gib, hashsize=10000)["nf_conntrack_max"] == 8 * 10240


# 5. Only our own files in the boot's directories are managed paths.
@pytest.mark.parametrize("option, path", [
    ("sysctl_file", "/etc/sysctl.conf"),
    ("sysctl_file", "/etc/resolv.conf"),
    ("sysctl_file", "/etc/sysctl.d/99-sysctl.conf"),
    ("sysctl_file", "/etc/sysctl.d/sub/netfilter-conntrack.conf"),
    ("sysctl_file", "/etc/sysctl.d/../sysctl.d/90-netfilter-conntrack.conf"),
    ("sysctl_file", "/tmp/90-netfilter-conntrack.conf"),
    ("sysctl_file", "etc/sysctl.d/90-netfilter-conntrack.conf"),
    ("modprobe_file", "/etc/modprobe.d/blacklist.conf"),
    ("modules_load_file", "/etc/modules"),
    ("udev_rule_file", "/etc/udev/rules.d/90-netfilter-conntrack.conf"),
    ("udev_rule_file", "/etc/udev/rules.d/70-persistent-net.rules"),
])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_paths_outside_our_own_drop_ins_are_refused(tmp_path, option, path, state):
    root = make_host(tmp_path)
    (root / "etc/sysctl.conf").write_text("kernel.panic = 10\n")
    settings = {"nf_conntrack_udp_timeout": 15} if state == "present" else {}
    msg = refused(root, settings, "%s: %r is not a file this collection manages" % (option, path),
                  state=state, **{option: path})
    assert "90-netfilter-conntrack" in msg, "the error says what would be accepted"


def test_a_record_naming_a_foreign_file_makes_rollback_refuse(tmp_path):
    root = make_host(tmp_path)
    (root / "etc/sysctl.conf").write_text("kernel.panic = 10\n")
    run(root, {"nf_conntrack_udp_timeout": 15}, record_file=RECORD)
    record = root / RECORD.lstrip("/")
    data = json.loads(record.read_text())
    data["files"]["sysctl"] = "/etc/sysctl.conf"
    record.write_text(json.dumps(data))
    refused(root, {}, "the tuning record .* names files.sysctl: sysctl_file: '/etc/sysctl.conf' is not a file",
            state="absent", record_file=RECORD)


def test_a_file_at_our_path_that_we_did_not_write_needs_force(tmp_path):
    root = make_host(tmp_path)
    (root / DROPIN.lstrip("/")).write_text("net.netfilter.nf_conntrack_max = 1048576\n")
    refused(root, {"nf_conntrack_udp_timeout": 15}, "was not written by this collection.*force: true")
    refused(root, {}, "not removing it", state="absent")
    assert run(root, {"nf_conntrack_udp_timeout": 15}, force=True)[0]


# 7. Managed files are read without following links or blocking.
@pytest.mark.parametrize("make, why", [
    (lambda p: os.mkfifo(str(p)), "FIFO"),
    (lambda p: os.symlink("/dev/zero", str(p)), "symlink"),
    (lambda p: p.mkdir(), "directory"),
    (lambda p: p.write_bytes(b"{" + b" " * (files.MAX_MANAGED_BYTES + 1) + b"}"), "more than"),
])
def test_a_record_that_is_not_a_small_regular_file_is_refused_without_hanging(tmp_path, make, why):
    root = make_host(tmp_path)
    record = root / RECORD.lstrip("/")
    record.parent.mkdir(parents=True)
    make(record)
    with _Alarm():
        msg = refused(root, {"nf_conntrack_max": 300000}, "tuning record .* cannot be used: .*%s" % why,
                      record_file=RECORD)
        data, error = tuning_record.read_tuning_record(reading.Reader(str(root)), RECORD)
    assert data is None and why in error and why in msg


@pytest.mark.parametrize("make, why", [
    (lambda p: os.mkfifo(str(p)), "a FIFO"),
    (lambda p: os.symlink("/etc/hostname", str(p)), "a symlink"),
    (lambda p: p.mkdir(), "a directory"),
])
def test_a_dropin_that_is_not_a_regular_file_is_refused_naming_the_option(tmp_path, make, why):
    root = make_host(tmp_path)
    make(root / DROPIN.lstrip("/"))
    with _Alarm():
        refused(root, {"nf_conntrack_udp_timeout": 15}, "sysctl_file: %s cannot be managed: it is %s" % (DROPIN, why))


def test_diff_never_shows_the_target_of_a_symlinked_dropin(tmp_path):
    root = make_host(tmp_path)
    secret = root / "etc/shadow"
    secret.write_text("root:$6$secret\n")
    os.symlink(str(secret), str(root / DROPIN.lstrip("/")))
    b = ConntrackSettings({"nf_conntrack_udp_timeout": 15}, root=str(root), granularity=512)
    with pytest.raises(SettingsError, match="symlink"):
        b.run(check_mode=True)
    assert "secret" not in json.dumps(b.diff())


# 9. Two runs at once keep both updates.
def _tune_in_child(root, key, value, barrier):
    barrier.wait(120)
    run(root, {key: value}, record_file=RECORD, lock_timeout=120)


def test_two_runs_at_once_both_keep_their_originals(tmp_path):
    root = make_host(tmp_path)
    barrier = multiprocessing.Barrier(2)
    children = [multiprocessing.Process(target=_tune_in_child, args=(str(root), key, value, barrier))
                for key, value in (("nf_conntrack_udp_timeout", 15), ("nf_conntrack_tcp_timeout_time_wait", 60))]
    for child in children:
        child.start()
    for child in children:
        child.join(240)  # generous: a loaded CI machine, not a timing test
        assert child.exitcode == 0, "a concurrent run failed or hung (exit code %r)" % child.exitcode
    record = json.loads((root / RECORD.lstrip("/")).read_text())
    assert record["original"] == {"nf_conntrack_udp_timeout": DEFAULTS["nf_conntrack_udp_timeout"],
                                  "nf_conntrack_tcp_timeout_time_wait": DEFAULTS["nf_conntrack_tcp_timeout_time_wait"]}


def test_a_run_that_cannot_get_the_lock_changes_nothing(tmp_path):
    root = make_host(tmp_path)
    run(root, {"nf_conntrack_udp_timeout": 20})  # makes the lock file
    before = tree(root)
    with files.ExclusiveLock(str(root / writing.LOCK_FILE.lstrip("/")), 1):
        for check_mode in (True, False):
            with pytest.raises(SettingsError, match="nothing was changed: another run holds .* raise lock_timeout"):
                run(root, {"nf_conntrack_udp_timeout": 15}, check_mode=check_mode, lock_timeout=0.3)
    assert tree(root) == before


def test_check_mode_creates_no_lock_file(tmp_path):
    root = make_host(tmp_path)
    before = tree(root)
    assert run(root, {"nf_conntrack_udp_timeout": 15}, check_mode=True, record_file=RECORD)[0]
    assert tree(root) == before


# 10. The facts module loads no kernel module.
def test_facts_do_not_run_nft_or_conntrack_when_their_modules_are_not_loaded(tmp_path):
    root = make_unloaded_host(tmp_path)
    calls = []

    def run_command(argv):
        calls.append(os.path.basename(argv[0]))
        return 0, "", ""

    gathering.FactsReader(reading.Reader(str(root), run_command=run_command, which=lambda name: "/usr/sbin/" + name)).gather()
    assert "nft" not in calls and "conntrack" not in calls
    (root / "proc/modules").write_text("nf_tables 1 0 - Live 0x0\n")
    gathering.FactsReader(reading.Reader(str(root), run_command=run_command, which=lambda name: "/usr/sbin/" + name)).gather()
    assert "nft" in calls


# The undo of a run puts the host back byte for byte, and only over our own writes.
def test_restore_puts_back_exactly_what_the_run_found(tmp_path):
    root = make_host(tmp_path)
    run(root, {"nf_conntrack_udp_timeout": 20}, record_file=RECORD)
    before = tree(root)
    changed, b = run(root, {"nf_conntrack_udp_timeout": 15, "nf_conntrack_max": 300000}, record_file=RECORD,
                     boot_fix="always")
    assert changed
    undo = json.loads(json.dumps(b.result()["undo"]))  # through JSON, as the role passes it
    changed, _b = run(root, {}, restore=undo, record_file=RECORD)
    assert changed and tree(root) == before
    # A second restore of the same undo finds our writes gone and changes nothing.
    refused(root, {}, "changed since the run that wrote it", restore=json.loads(json.dumps(undo)), record_file=RECORD)


def test_restore_refuses_when_a_file_changed_since(tmp_path):
    root = make_host(tmp_path)
    changed, b = run(root, {"nf_conntrack_udp_timeout": 15}, record_file=RECORD)
    undo = json.loads(json.dumps(b.result()["undo"]))
    (root / DROPIN.lstrip("/")).write_text(boot_files.HEADER + "net.netfilter.nf_conntrack_udp_timeout = 25\n")
    refused(root, {}, "restore: %s changed since the run that wrote it" % DROPIN, restore=undo, record_file=RECORD)


def test_restore_touches_only_this_calls_files(tmp_path):
    root = make_host(tmp_path)
    undo = {"runtime": {}, "files": {"/etc/sysctl.conf": {"content": "x", "sha256_after": None}}}
    refused(root, {}, r"restore: /etc/sysctl.conf is not one of this call's files", restore=undo)


def test_rollback_removes_the_directories_the_first_tune_created(tmp_path):
    root = make_host(tmp_path)
    before = tree(root)
    run(root, {"nf_conntrack_udp_timeout": 15}, record_file=RECORD)
    assert (root / "etc/ansible/facts.d").is_dir()
    changed, _b = run(root, {}, state="absent", record_file=RECORD)
    assert changed
    assert not (root / "etc/ansible").exists(), "no empty facts.d left behind"
    assert tree(root) == before


def test_boot_fix_never_on_a_loadable_module_warns_about_the_late_load(tmp_path):
    root = make_host(tmp_path, module="loadable")
    _changed, b = run(root, {"nf_conntrack_udp_timeout": 15}, boot_fix="never", check_mode=True)
    assert any("boot_fix=never on a loadable nf_conntrack" in w and "8 x hashsize" in w for w in b.warnings)
    _changed, b = run(root, {"nf_conntrack_udp_timeout": 15}, check_mode=True)
    assert not any("boot_fix=never" in w for w in b.warnings)


# SELinux (EL hosts): every file we write, the undo's rewrites included, is labelled with its
# final path's default context before the rename makes it visible.
def test_each_new_file_is_labelled_before_it_becomes_visible(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    seen = []

    def label(temp_path, final_path):
        # Labelled where nobody sees it yet: beside its final path, or inside a directory stage.
        assert os.path.exists(temp_path) and temp_path != final_path and not os.path.exists(final_path)
        seen.append(final_path)

    monkeypatch.setattr(files, "_labeller", None)
    files.set_labeller(label)
    run(root, {"nf_conntrack_udp_timeout": 20}, record_file=RECORD)
    # The directories the record needs are new too, and are labelled like the files.
    assert sorted(os.path.relpath(p, str(root)) for p in seen) == sorted(
        [DROPIN.lstrip("/"), RECORD.lstrip("/"), os.path.dirname(RECORD).lstrip("/"),
         os.path.dirname(os.path.dirname(RECORD)).lstrip("/")])


def test_a_file_that_cannot_be_labelled_rolls_the_run_back(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    run(root, {"nf_conntrack_udp_timeout": 20}, record_file=RECORD)
    before = tree(root)

    def refuse(temp_path, final_path):
        if final_path.endswith(".conf"):
            raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files, "_labeller", None)
    files.set_labeller(refuse)
    with pytest.raises(ApplyError, match="Permission denied.*as it was before this run"):
        run(root, {"nf_conntrack_udp_timeout": 15}, record_file=RECORD)
    assert tree(root) == before
