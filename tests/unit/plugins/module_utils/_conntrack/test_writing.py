"""The settings backend against a temporary root that looks like a host."""
import os
import stat

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import boot_files, files, kernel, reading, settings_input
from support.fakehost import DEFAULTS, DROPIN, make_host
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.kernel import parse_sysctl_file, round_buckets
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.runtime import write_order
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.settings_input import SettingsError, validate_settings
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.transaction import ApplyError
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.writing import ConntrackSettings


def runtime(root, key):
    return int((root / "proc/sys/net/netfilter" / key).read_text())


def snapshot(root):
    """Every file under root with its bytes and mode."""
    out = {}
    for dirpath, _dirs, files in os.walk(str(root)):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[path] = (f.read(), stat.S_IMODE(os.stat(path).st_mode))
    return out


def backend(root, settings, **kw):
    kw.setdefault("granularity", 512)
    return ConntrackSettings(settings, root=str(root), **kw)


def apply(root, settings, **kw):
    b = backend(root, settings, **kw)
    b.validate()
    b.plan()
    changed = b.needs_change()
    if changed:
        b.apply()
    return changed, b


def test_buckets_round_up_like_the_kernel():
    assert round_buckets(100000, 512) == 100352
    assert round_buckets(65536, 512) == 65536
    assert round_buckets(1, 512) == 512


def test_apply_writes_runtime_and_dropin_then_rerun_is_clean(tmp_path):
    root = make_host(tmp_path)
    settings = {"nf_conntrack_max": 1048576, "nf_conntrack_buckets": 100000, "nf_conntrack_udp_timeout": 15}
    changed, b = apply(root, settings)
    assert changed
    assert runtime(root, "nf_conntrack_max") == 1048576
    assert runtime(root, "nf_conntrack_buckets") == 100352
    assert b.result()["runtime"]["nf_conntrack_buckets"] == {"before": 65536, "after": 100352}
    dropin = (root / DROPIN.lstrip("/")).read_text()
    assert "net.netfilter.nf_conntrack_buckets = 100352\n" in dropin
    assert "net.netfilter.nf_conntrack_max = 1048576\n" in dropin
    first = snapshot(root)
    changed, b = apply(root, settings)
    assert not changed, "a rerun with a buckets value the kernel rounds must report no change"
    assert snapshot(root) == first


def test_check_mode_predicts_changed_and_touches_nothing(tmp_path):
    root = make_host(tmp_path)
    before = snapshot(root)
    b = backend(root, {"nf_conntrack_buckets": 100000})
    b.validate()
    b.plan()
    assert b.needs_change()
    assert b.result()["desired"] == {"nf_conntrack_buckets": 100352}
    assert snapshot(root) == before


def test_values_compare_as_numbers_not_strings(tmp_path):
    root = make_host(tmp_path)
    (root / "proc/sys/net/netfilter/nf_conntrack_udp_timeout").write_text("  30\t\n")
    changed = apply(root, {"nf_conntrack_udp_timeout": "30"}, persist_sysctl=False)[0]
    assert not changed


def test_dropin_is_byte_identical_and_deterministic(tmp_path):
    root = make_host(tmp_path)
    settings = {"nf_conntrack_udp_timeout": 15, "nf_conntrack_max": 300000, "nf_conntrack_acct": True}
    apply(root, settings)
    text = (root / DROPIN.lstrip("/")).read_text()
    other = make_host(tmp_path / "b")
    apply(other, dict(reversed(list(settings.items()))))
    assert (other / DROPIN.lstrip("/")).read_text() == text
    assert "net.netfilter.nf_conntrack_acct = 1\n" in text


def test_files_are_0644(tmp_path):
    root = make_host(tmp_path)
    path = root / DROPIN.lstrip("/")
    apply(root, {"nf_conntrack_udp_timeout": 15})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    changed, b = apply(root, {"nf_conntrack_udp_timeout": 15})
    assert changed and b.result()["files"][DROPIN]["changed"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


BAD = [
    ({"nf_conntrack_foo": 1}, "allowlist"),
    ({"nf_conntrack_max; rm -rf /": 1}, "not an nf_conntrack sysctl name"),
    ({"../../x": 1}, "not an nf_conntrack sysctl name"),
    ({"nf_conntrack_count": 1}, "allowlist"),
    ({"net.ipv4.ip_forward": 1}, "not an nf_conntrack sysctl name"),
    ({"nf_conntrack_max": -1}, "out of range"),
    ({"nf_conntrack_max": "abc"}, "expected an integer"),
    ({"nf_conntrack_max": 1.5}, "expected an integer"),
    ({"nf_conntrack_max": [1]}, "expected an integer"),
    ({"nf_conntrack_max": None}, "expected an integer"),
    ({"nf_conntrack_max": True}, "boolean"),
    ({"nf_conntrack_max": 2 ** 31}, "out of range"),
    ({"nf_conntrack_tcp_timeout_time_wait": 0}, "out of range"),
    ({"nf_conntrack_tcp_timeout_established": 99999999}, "out of range"),
    ({"nf_conntrack_tcp_loose": 2}, "out of range"),
    ({"nf_conntrack_acct": "yes"}, "expected an integer"),
    ({"nf_conntrack_buckets": 0}, "out of range"),
    ({"nf_conntrack_expect_max": 0}, "out of range"),
    ({"nf_conntrack_events": 3}, "out of range"),
    ({"nf_conntrack_udp_timeout": 15, "nf_conntrack_bogus": 1}, "allowlist"),
    ({1: 5}, "not an nf_conntrack sysctl name"),
]


@pytest.mark.parametrize("settings,message", BAD, ids=[repr(b[0])[:40] for b in BAD])
def test_bad_input_is_refused_before_any_change(tmp_path, settings, message):
    root = make_host(tmp_path)
    before = snapshot(root)
    b = backend(root, settings)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        b.validate()
        b.plan()
        b.apply()
    assert snapshot(root) == before


@pytest.mark.parametrize("option,value", [
    ("sysctl_file", "relative.conf"), ("sysctl_file", "/etc/sysctl.d/x.txt"),
    ("sysctl_file", "/etc/sysctl.d/../../x.conf"), ("udev_rule_file", "/etc/udev/rules.d/x.conf"),
    ("kube_proxy", "maybe"), ("boot_fix", "sometimes"),
])
def test_bad_options_are_refused(tmp_path, option, value):
    root = make_host(tmp_path)
    before = snapshot(root)
    with pytest.raises(SettingsError):
        backend(root, {"nf_conntrack_udp_timeout": 15}, **{option: value}).validate()
    assert snapshot(root) == before


def test_empty_settings_refused_when_present(tmp_path):
    with pytest.raises(SettingsError, match="empty"):
        backend(make_host(tmp_path), {}).validate()


def test_namespace_skips_global_keys_and_applies_the_rest(tmp_path):
    root = make_host(tmp_path, netns="other")
    changed, b = apply(root, {"nf_conntrack_max": 1048576, "nf_conntrack_udp_timeout": 15})
    res = b.result()
    assert changed
    assert "nf_conntrack_max" in res["skipped_keys"] and "namespace" in res["skipped_keys"]["nf_conntrack_max"]
    assert runtime(root, "nf_conntrack_max") == 262144
    assert runtime(root, "nf_conntrack_udp_timeout") == 15
    assert "nf_conntrack_max" not in (root / DROPIN.lstrip("/")).read_text()
    assert res["environment"]["initial_netns"] is False


def test_strict_fails_instead_of_skipping(tmp_path):
    root = make_host(tmp_path, netns="other")
    before = snapshot(root)
    with pytest.raises(SettingsError, match="strict"):
        apply(root, {"nf_conntrack_max": 1048576, "nf_conntrack_udp_timeout": 15}, strict=True)
    assert snapshot(root) == before


def fake_kube_proxy(root):
    proc = root / "proc/4242"
    proc.mkdir()
    (proc / "comm").write_text("kube-proxy\n")


def test_kube_proxy_keys_left_alone_by_default(tmp_path):
    root = make_host(tmp_path)
    fake_kube_proxy(root)
    settings = {"nf_conntrack_max": 1048576, "nf_conntrack_tcp_timeout_established": 86400,
                "nf_conntrack_udp_timeout": 15}
    changed, b = apply(root, settings)
    assert set(b.result()["skipped_keys"]) == {"nf_conntrack_max", "nf_conntrack_tcp_timeout_established"}
    assert runtime(root, "nf_conntrack_max") == 262144
    assert runtime(root, "nf_conntrack_udp_timeout") == 15
    assert any("kube-proxy" in w for w in b.warnings)
    changed, b = apply(root, settings, kube_proxy="override")
    assert changed and runtime(root, "nf_conntrack_max") == 1048576 and not b.result()["skipped_keys"]


def test_loadable_module_gets_modprobe_option_and_boot_fix(tmp_path):
    root = make_host(tmp_path, module="loadable")
    changed, b = apply(root, {"nf_conntrack_max": 1048576, "nf_conntrack_buckets": 100000})
    files = b.result()["files"]
    assert set(files) == {DROPIN, settings_input.DEFAULT_MODPROBE_FILE, settings_input.DEFAULT_MODULES_LOAD_FILE,
                          settings_input.DEFAULT_UDEV_RULE_FILE}
    assert "options nf_conntrack hashsize=100352\n" in (root / "etc/modprobe.d/netfilter-conntrack.conf").read_text()
    assert "net.netfilter.nf_conntrack_buckets" not in (root / DROPIN.lstrip("/")).read_text()
    assert "nf_conntrack\n" in (root / "etc/modules-load.d/netfilter-conntrack.conf").read_text()
    rule = (root / "etc/udev/rules.d/90-netfilter-conntrack.rules").read_text()
    assert ('ACTION=="add", SUBSYSTEM=="module", KERNEL=="nf_conntrack", '
            'RUN+="/usr/lib/systemd/systemd-sysctl --prefix=/net/netfilter"\n') in rule
    assert not apply(root, {"nf_conntrack_max": 1048576, "nf_conntrack_buckets": 100000})[0]


def test_builtin_module_notes_the_kernel_command_line(tmp_path):
    root = make_host(tmp_path)
    b = apply(root, {"nf_conntrack_buckets": 131072})[1]
    res = b.result()
    assert list(res["files"]) == [DROPIN]
    assert any("nf_conntrack.hashsize=" in n for n in res["notes"])
    assert b.result()["environment"]["module"] == "builtin"


def test_boot_fix_always_on_builtin(tmp_path):
    root = make_host(tmp_path)
    b = apply(root, {"nf_conntrack_udp_timeout": 15}, boot_fix="always")[1]
    assert settings_input.DEFAULT_UDEV_RULE_FILE in b.result()["files"]


def test_failed_write_midway_rolls_back_what_was_written(tmp_path):
    root = make_host(tmp_path)
    b = backend(root, {"nf_conntrack_max": 1048576, "nf_conntrack_buckets": 131072,
                       "nf_conntrack_tcp_timeout_time_wait": 30, "nf_conntrack_udp_timeout": 15})
    b.validate()
    b.plan()
    real_write = b.proc.write

    def write(key, value):
        # The kernel refusing a value (EINVAL on an older kernel, ENOMEM on a resize).
        if key == "nf_conntrack_udp_timeout":
            raise OSError(22, "Invalid argument")
        real_write(key, value)

    b.proc.write = write
    before = snapshot(root)
    with pytest.raises(ApplyError, match="rolled back") as info:
        b.apply()
    written_first = {"nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_tcp_timeout_time_wait"}
    assert set(info.value.result["rolled_back"]) == written_first
    assert snapshot(root) == before, "no file may be written when the runtime step failed"


def test_growing_writes_buckets_before_max_and_shrinking_the_reverse(tmp_path):
    b = backend(make_host(tmp_path), {"nf_conntrack_max": 1})
    both = {"nf_conntrack_max": 1, "nf_conntrack_buckets": 1024, "nf_conntrack_udp_timeout": 1}
    assert write_order(both, {"nf_conntrack_buckets": 512})[:2] == ["nf_conntrack_buckets", "nf_conntrack_max"]
    assert write_order(both, {"nf_conntrack_buckets": 4096})[:2] == ["nf_conntrack_max", "nf_conntrack_buckets"]


def test_warns_when_a_later_sysctl_file_overrides_our_key(tmp_path):
    root = make_host(tmp_path)
    (root / "etc/sysctl.d/95-other.conf").write_text("net/netfilter/nf_conntrack_max = 65536\n")
    (root / "etc/sysctl.d/10-early.conf").write_text("net.netfilter.nf_conntrack_udp_timeout = 60\n")
    b = apply(root, {"nf_conntrack_max": 1048576, "nf_conntrack_udp_timeout": 15})[1]
    assert len([w for w in b.warnings if "95-other.conf" in w and "nf_conntrack_max" in w]) == 1
    assert not [w for w in b.warnings if "10-early" in w]


def test_sysctl_conf_is_applied_last(tmp_path):
    root = make_host(tmp_path)
    (root / "etc/sysctl.conf").write_text("net.netfilter.nf_conntrack_udp_timeout=60\n")
    (root / "usr/lib/sysctl.d").mkdir(parents=True)
    (root / "usr/lib/sysctl.d/99-z.conf").write_text("")
    b = backend(root, {"nf_conntrack_udp_timeout": 15})
    assert boot_files.sysctl_order(reading.Reader(str(root)), DROPIN) == [DROPIN, "/usr/lib/sysctl.d/99-z.conf", "/etc/sysctl.conf"]
    b.validate()
    b.plan()
    assert any("/etc/sysctl.conf" in w for w in b.warnings)


def test_parse_sysctl_file_reads_both_separators():
    text = "# c\n; c\nnet.netfilter.nf_conntrack_max=5\n-net/netfilter/nf_conntrack_acct = 1\nbogus\n"
    assert parse_sysctl_file(text) == {"net.netfilter.nf_conntrack_max": "5", "net.netfilter.nf_conntrack_acct": "1"}


def test_state_absent_removes_our_files_with_backup(tmp_path):
    root = make_host(tmp_path)
    apply(root, {"nf_conntrack_udp_timeout": 15}, boot_fix="always")
    changed, b = apply(root, {"nf_conntrack_udp_timeout": 30}, state="absent", backup=True)
    assert changed and runtime(root, "nf_conntrack_udp_timeout") == 30
    assert not (root / DROPIN.lstrip("/")).exists()
    res = b.result()["files"]
    assert res[DROPIN]["state"] == "absent" and os.path.exists(res[DROPIN]["backup"])
    assert not (root / "etc/udev/rules.d/90-netfilter-conntrack.rules").exists()
    assert not apply(root, {}, state="absent")[0]


def test_key_missing_from_this_kernel_is_skipped_and_not_persisted(tmp_path):
    root = make_host(tmp_path)
    b = apply(root, {"nf_conntrack_dccp_loose": 1, "nf_conntrack_udp_timeout": 15})[1]
    assert "nf_conntrack_dccp_loose" in b.result()["skipped_keys"]
    assert "dccp" not in (root / DROPIN.lstrip("/")).read_text()


def test_diff_shows_runtime_and_every_file(tmp_path):
    root = make_host(tmp_path)
    b = backend(root, {"nf_conntrack_udp_timeout": 15}, boot_fix="always")
    b.validate()
    b.plan()
    diffs = b.diff()
    assert "nf_conntrack_udp_timeout = 30" in diffs[0]["before"]
    assert "nf_conntrack_udp_timeout = 15" in diffs[0]["after"]
    assert len(diffs) == 4


def test_validate_accepts_the_recommendation_settings_as_is():
    rec = {"nf_conntrack_max": 1048576, "nf_conntrack_buckets": 262144, "nf_conntrack_expect_max": 4096,
           "nf_conntrack_tcp_timeout_time_wait": 120, "nf_conntrack_tcp_timeout_established": 86400}
    assert validate_settings(rec) == rec


def test_every_writable_key_on_this_kernel_is_on_the_allowlist():
    nf = "/proc/sys/net/netfilter"
    if not os.path.isdir(nf):
        pytest.skip("no nf_conntrack here")
    names = [n for n in os.listdir(nf) if n.startswith("nf_conntrack_") and os.stat(os.path.join(nf, n)).st_mode & 0o200]
    assert names
    assert sorted(n for n in names if n not in kernel.WRITABLE_KEYS) == []


def test_failed_file_write_puts_back_runtime_and_earlier_files(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    apply(root, {"nf_conntrack_udp_timeout": 20})
    before = snapshot(root)
    real = files.write_atomic

    def write_atomic(path, data, mode=0o644):
        if path.endswith(".rules") and b"nf_conntrack" in data:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(files, "write_atomic", write_atomic)
    b = backend(root, {"nf_conntrack_udp_timeout": 15, "nf_conntrack_max": 300000}, boot_fix="always")
    b.validate()
    b.plan()
    with pytest.raises(ApplyError, match="rolled back") as info:
        b.apply()
    assert "nf_conntrack_udp_timeout" in info.value.result["rolled_back"]
    assert DROPIN in info.value.result["rolled_back"]
    assert snapshot(root) == before, "a host that failed must be left fully old"


def test_desired_lists_what_the_runtime_should_read_back(tmp_path):
    root = make_host(tmp_path, netns="other")
    b = backend(root, {"nf_conntrack_max": 65536, "nf_conntrack_buckets": 1000, "nf_conntrack_udp_timeout": 15},
                runtime=False)
    b.validate()
    b.plan()
    assert b.result()["desired"] == {"nf_conntrack_udp_timeout": 15}
    root = make_host(tmp_path / "host")
    b = backend(root, {"nf_conntrack_buckets": 1000, "nf_conntrack_udp_timeout": 15})
    b.validate()
    b.plan()
    assert b.result()["desired"] == {"nf_conntrack_buckets": 1024, "nf_conntrack_udp_timeout": 15}


def test_max_below_the_current_count_needs_force(tmp_path):
    root = make_host(tmp_path, values=dict(DEFAULTS, nf_conntrack_count=5000))
    before = snapshot(root)
    with pytest.raises(SettingsError, match="nothing was changed: settings.nf_conntrack_max: 4096 is below the 5000"):
        apply(root, {"nf_conntrack_max": 4096})
    assert snapshot(root) == before
    b = apply(root, {"nf_conntrack_max": 4096}, force=True)[1]
    assert any("below the 5000 entries" in w for w in b.warnings)


@pytest.mark.parametrize("value", [0, 1, 1023])
def test_absurdly_low_max_needs_force(tmp_path, value):
    root = make_host(tmp_path)
    with pytest.raises(SettingsError, match="settings.nf_conntrack_max: .*set force: true"):
        backend(root, {"nf_conntrack_max": value}).validate()
    backend(root, {"nf_conntrack_max": value}, force=True).validate()


def test_dropin_outside_the_boot_directories_is_refused_and_a_masked_one_warns(tmp_path):
    root = make_host(tmp_path)
    with pytest.raises(SettingsError, match="sysctl_file: '/etc/conntrack/90-x.conf' is not a file this collection"):
        apply(root, {"nf_conntrack_udp_timeout": 15}, sysctl_file="/etc/conntrack/90-x.conf")
    (root / "etc/sysctl.d/90-netfilter-conntrack-mine.conf").write_text(boot_files.HEADER)
    b = apply(root, {"nf_conntrack_udp_timeout": 15},
              sysctl_file="/usr/lib/sysctl.d/90-netfilter-conntrack-mine.conf")[1]
    assert any("masked" in w and "/etc/sysctl.d/90-netfilter-conntrack-mine.conf" in w for w in b.warnings)


def test_buckets_bigger_than_half_the_ram_are_refused_before_any_change(tmp_path):
    root = make_host(tmp_path)
    (root / "proc/meminfo").write_text("MemTotal:        1024000 kB\nMemFree: 1 kB\n")
    before = snapshot(root)
    with pytest.raises(SettingsError, match="half of this host's"):
        apply(root, {"nf_conntrack_buckets": 100000000})
    assert snapshot(root) == before
    assert apply(root, {"nf_conntrack_buckets": 1000000})[0]  # 8 MiB is fine


def test_skip_reason_names_the_trees_kernel_release(tmp_path):
    root = make_host(tmp_path)
    b = apply(root, {"nf_conntrack_dccp_loose": 1, "nf_conntrack_udp_timeout": 15})[1]
    assert b.result()["skipped_keys"]["nf_conntrack_dccp_loose"] == "not present in this kernel (6.18.0-test)"


RECORD = "/etc/ansible/facts.d/netfilter_conntrack.fact"


def read_record(root):
    import json
    return json.loads((root / RECORD.lstrip("/")).read_text())


def test_record_keeps_originals_from_the_first_run_and_is_written_like_the_role_did(tmp_path):
    import json
    root = make_host(tmp_path)
    clock = iter(["2026-11-21T06:00:00Z", "2026-11-21T07:00:00Z", "2026-11-21T08:00:00Z"])
    changed, b = apply(root, {"nf_conntrack_max": 393728, "nf_conntrack_buckets": 100000},
                       record_file=RECORD, record_pressure_entries=262145, now=lambda: next(clock))
    assert changed
    rec = read_record(root)
    assert rec == {
        "schema_version": 1, "original": {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 65536},
        "recorded_at": "2026-11-21T06:00:00Z", "applied": {"nf_conntrack_max": 393728, "nf_conntrack_buckets": 100000},
        "applied_at": "2026-11-21T06:00:00Z", "pressure_entries": 262145,
        "files": {"sysctl": DROPIN, "modprobe": settings_input.DEFAULT_MODPROBE_FILE,
                  "modules_load": settings_input.DEFAULT_MODULES_LOAD_FILE, "udev_rule": settings_input.DEFAULT_UDEV_RULE_FILE},
        # This run made facts.d: rollback removes it again once it is empty.
        "created_directories": ["/etc/ansible", "/etc/ansible/facts.d"]}
    # Byte-identical to the role's former to_nice_json(sort_keys=true), so old records compare equal.
    assert (root / RECORD.lstrip("/")).read_text() == json.dumps(rec, indent=4, sort_keys=True) + "\n"
    assert b.result()["record"]["changed"] is True

    # Rerun: nothing to change, the record is not rewritten (changed=0).
    mtime = os.stat(str(root / RECORD.lstrip("/"))).st_mtime_ns
    changed, b = apply(root, {"nf_conntrack_max": 393728, "nf_conntrack_buckets": 100000},
                       record_file=RECORD, now=lambda: next(clock))
    assert not changed
    assert os.stat(str(root / RECORD.lstrip("/"))).st_mtime_ns == mtime
    assert b.result()["record"]["content"]["pressure_entries"] == 262145, "kept when not passed again"

    # A new value: originals stay those of the first run, applied and applied_at move.
    changed, _b = apply(root, {"nf_conntrack_max": 524288, "nf_conntrack_udp_timeout": 15},
                        record_file=RECORD, now=lambda: next(clock))
    rec = read_record(root)
    assert changed
    assert rec["original"] == {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 65536,
                               "nf_conntrack_udp_timeout": 30}
    assert rec["recorded_at"] == "2026-11-21T06:00:00Z"
    assert rec["applied"] == {"nf_conntrack_max": 524288, "nf_conntrack_udp_timeout": 15}
    assert rec["applied_at"] == "2026-11-21T08:00:00Z"  # the clock ticks once per run


def test_record_in_check_mode_is_predicted_shown_in_diff_and_not_written(tmp_path):
    root = make_host(tmp_path)
    b = backend(root, {"nf_conntrack_max": 393728}, record_file=RECORD)
    b.validate()
    b.plan()
    assert b.needs_change()
    assert not (root / RECORD.lstrip("/")).exists()
    assert b.result()["record"]["content"]["original"] == {"nf_conntrack_max": 262144}
    diffs = [d for d in b.diff() if d["after_header"] == RECORD]
    assert len(diffs) == 1 and '"nf_conntrack_max": 393728' in diffs[0]["after"]
    assert diffs[0]["before_header"] == RECORD + " (absent)"


def test_record_alone_counts_as_a_change(tmp_path):
    root = make_host(tmp_path)
    apply(root, {"nf_conntrack_max": 393728})
    changed, _b = apply(root, {"nf_conntrack_max": 393728}, record_file=RECORD)
    assert changed, "the runtime and drop-in are in place, but the record was missing"
    assert read_record(root)["original"] == {"nf_conntrack_max": 393728}


def test_record_is_written_first_and_put_back_when_a_write_fails(tmp_path):
    root = make_host(tmp_path)
    b = backend(root, {"nf_conntrack_max": 1048576, "nf_conntrack_udp_timeout": 15}, record_file=RECORD)
    b.validate()
    b.plan()
    real_write = b.proc.write
    seen = []

    def write(key, value):
        seen.append((root / RECORD.lstrip("/")).exists())
        if key == "nf_conntrack_udp_timeout":
            raise OSError(22, "Invalid argument")
        real_write(key, value)

    b.proc.write = write
    before = snapshot(root)
    with pytest.raises(ApplyError, match="rolled back"):
        b.apply()
    assert seen[0] is True, "the record must be on disk before the first runtime write"
    assert snapshot(root) == before, "the record goes away again with the failed run"


def test_record_removed_with_state_absent_and_an_unreadable_record_is_kept(tmp_path):
    root = make_host(tmp_path)
    path = root / RECORD.lstrip("/")
    path.parent.mkdir(parents=True)
    path.write_text("not json")
    before = snapshot(root)
    for state, settings in (("present", {"nf_conntrack_max": 393728}), ("absent", {})):
        with pytest.raises(SettingsError, match="tuning record .* cannot be used: it is not valid JSON.*mv "):
            apply(root, settings, state=state, record_file=RECORD)
        assert snapshot(root) == before, "a record that could not be read is never overwritten or deleted"
    path.unlink()
    changed, b = apply(root, {"nf_conntrack_max": 393728}, record_file=RECORD)
    assert changed and read_record(root)["original"] == {"nf_conntrack_max": 262144}
    changed, b = apply(root, {}, state="absent", record_file=RECORD)
    assert changed and not path.exists()
    assert b.result()["record"] == {"path": RECORD, "changed": True, "state": "absent", "content": None}


def test_read_back_holds_the_kernel_values_after_the_write(tmp_path):
    root = make_host(tmp_path)
    _changed, b = apply(root, {"nf_conntrack_max": 393728, "nf_conntrack_buckets": 100000})
    assert b.result()["read_back"] == {"nf_conntrack_max": 393728, "nf_conntrack_buckets": 100352}
    assert "record" not in b.result()


def test_relative_record_file_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="record_file"):
        backend(make_host(tmp_path), {"nf_conntrack_max": 393728}, record_file="facts.d/x.fact").validate()
