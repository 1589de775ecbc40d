"""What a run killed midway leaves, and how the next run clears it (tests/live/test_killed_runs.py
kills the real module with SIGKILL at every step; these pin the pieces)."""
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import files
from support.fakehost import DROPIN, make_host
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.writing import ConntrackSettings

RECORD = "/etc/ansible/facts.d/netfilter_conntrack.fact"


def apply(root, settings, check=False, **kw):
    b = ConntrackSettings(settings, root=str(root), granularity=512, **kw)
    b.validate()
    changed = b.run(check_mode=check)
    return changed, b


def test_missing_directories_appear_at_once_with_the_file(tmp_path):
    path = tmp_path / "a" / "b" / "f.conf"
    created = files.write_atomic(str(path), b"x\n")
    assert created == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    assert path.read_bytes() == b"x\n"
    assert sorted(os.listdir(str(tmp_path))) == ["a"], "no stage may stay beside the new directory"
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == "0o755"


def test_a_failed_staged_write_leaves_no_directory_and_no_stage(tmp_path, monkeypatch):
    def refuse(temp, final):
        raise OSError(13, "labelling refused")
    monkeypatch.setattr(files, "_labeller", refuse)
    with pytest.raises(OSError):
        files.write_atomic(str(tmp_path / "a" / "b" / "f.conf"), b"x\n")
    assert os.listdir(str(tmp_path)) == []


def test_leftovers_are_only_our_own_temporary_names(tmp_path):
    d = tmp_path / "sysctl.d"
    d.mkdir()
    target = d / "90-netfilter-conntrack.conf"
    ours = [d / ".90-netfilter-conntrack.conf.k2v0q9xa", d / ".90-netfilter-conntrack.conf.1.2026-12-02@03:55:00~.a_b1c2d3"]
    for p in ours:
        p.write_text("partial")
    (d / ".90-netfilter-conntrack.conf.toolong123").write_text("not ours")
    (d / ".90-netfilter-conntrack.conf.abc").write_text("not ours")
    (d / ".99-other.conf.k2v0q9xa").write_text("not ours")
    os.symlink("/etc/passwd", str(d / ".90-netfilter-conntrack.conf.zzzzzzzz"))
    (d / ".90-netfilter-conntrack.conf.dddddddd").mkdir()
    assert files.leftovers(str(target)) == sorted(str(p) for p in ours)


def test_a_stage_is_a_leftover_only_when_it_holds_nothing_but_our_chain(tmp_path):
    target = tmp_path / "ansible" / "facts.d" / "netfilter_conntrack.fact"
    stage = tmp_path / ".ansible.q1w2e3r4"
    (stage / "facts.d").mkdir(parents=True)
    (stage / "facts.d" / "netfilter_conntrack.fact").write_text("{}")
    assert files.leftovers(str(target)) == [str(stage)]
    (stage / "facts.d" / "someone-elses.fact").write_text("{}")
    assert files.leftovers(str(target)) == [], "a stage holding a foreign file is left alone"


def test_the_next_run_removes_what_a_killed_run_left_and_reports_it(tmp_path):
    root = make_host(tmp_path)
    dropin_dir = root / os.path.dirname(DROPIN).lstrip("/")
    temp = dropin_dir / (".%s.k2v0q9xa" % os.path.basename(DROPIN))
    temp.write_text("net.netfilter.nf_conntrack_udp_timeout = 1\n")
    stage = root / "etc" / ".ansible.q1w2e3r4"
    (stage / "facts.d").mkdir(parents=True)
    (stage / "facts.d" / "netfilter_conntrack.fact").write_text("{}")
    settings = {"nf_conntrack_udp_timeout": 15}
    changed, b = apply(root, settings, record_file=RECORD, check=True)
    assert changed and temp.exists() and stage.exists(), "check mode lists, never removes"
    assert b.result()["leftovers"] == [str(stage), str(temp)]
    assert any("killed midway" in w and "check mode" in w for w in b.warnings)
    diff_headers = [d["before_header"] for d in b.diff()]
    assert "%s (left by a killed run)" % temp in diff_headers
    changed, b = apply(root, settings, record_file=RECORD)
    assert changed and not temp.exists() and not stage.exists()
    assert (root / "etc/ansible/facts.d/netfilter_conntrack.fact").exists()
    changed, b = apply(root, settings, record_file=RECORD)
    assert not changed and b.result()["leftovers"] == []


def test_leftovers_alone_are_a_change_and_a_rollback_removes_them_before_its_directories(tmp_path):
    root = make_host(tmp_path)
    settings = {"nf_conntrack_udp_timeout": 15}
    assert apply(root, settings, record_file=RECORD)[0]
    facts_d = root / "etc/ansible/facts.d"
    (facts_d / ".netfilter_conntrack.fact.abcd1234").write_text("{")
    changed, b = apply(root, settings, record_file=RECORD)
    assert changed and b.result()["leftovers"] == [str(facts_d / ".netfilter_conntrack.fact.abcd1234")]
    (facts_d / ".netfilter_conntrack.fact.abcd1234").write_text("{")
    changed, b = apply(root, {}, record_file=RECORD, state="absent")
    assert changed
    assert not (root / "etc/ansible").exists(), "the directories the first run made go with the rollback"


class Killed(BaseException):
    """Like SIGKILL for the transaction: not an Exception, so no undo runs."""


def test_a_rollback_killed_before_the_runtime_is_restored_keeps_the_record_for_the_next(tmp_path):
    root = make_host(tmp_path)
    key = root / "proc/sys/net/netfilter/nf_conntrack_udp_timeout"
    original = key.read_text()
    assert apply(root, {"nf_conntrack_udp_timeout": 15}, record_file=RECORD)[0]
    b = ConntrackSettings({}, root=str(root), granularity=512, record_file=RECORD, state="absent")
    b.validate()

    def killed(name, value):
        raise Killed()
    b.proc.write = killed
    with pytest.raises(Killed):
        b.run()
    assert (root / RECORD.lstrip("/")).exists(), "the record, with the originals, goes last"
    changed, b = apply(root, {}, record_file=RECORD, state="absent")
    assert changed and key.read_text().strip() == original.strip()
    assert not (root / "etc/ansible").exists()


def test_a_rollback_killed_after_retiring_the_record_leaves_a_stage_the_next_run_removes(tmp_path, monkeypatch):
    root = make_host(tmp_path)
    assert apply(root, {"nf_conntrack_udp_timeout": 15}, record_file=RECORD)[0]

    def killed(path):
        raise Killed()
    monkeypatch.setattr(files, "remove_leftover", killed)
    with pytest.raises(Killed):
        apply(root, {}, record_file=RECORD, state="absent")
    monkeypatch.undo()
    stages = [n for n in os.listdir(str(root / "etc")) if n.startswith(".ansible.")]
    assert len(stages) == 1 and not (root / "etc/ansible").exists()
    changed, b = apply(root, {}, record_file=RECORD, state="absent")
    assert changed and b.result()["leftovers"] == [str(root / "etc" / stages[0])]
    assert not [n for n in os.listdir(str(root / "etc")) if n.startswith(".ansible.")]


def test_a_killed_backups_temporary_file_is_recognised_by_the_name_backups_get(tmp_path):
    target = tmp_path / "90-netfilter-conntrack.conf"
    backup = files.backup_path(str(target))
    temp = os.path.join(str(tmp_path), ".%s.k2v0q9xa" % os.path.basename(backup))
    with open(temp, "w") as f:
        f.write("partial")
    assert files.leftovers(str(target)) == [temp]
