"""The cache audit's report files: checked before anything is written, staged before anything
is replaced, and left alone when their content is the same."""
import errno
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_files

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "audit", "fleet.json")
FORMATS = ["json", "csv", "markdown", "html", "prometheus"]


@pytest.fixture
def report():
    with open(FIXTURE) as f:
        return _audit.build_report(json.load(f), generated_at="2026-11-21T06:00:00+00:00")


def snapshot(path):
    out = {}
    for root, dirs, files in os.walk(str(path)):
        for name in dirs + files:
            full = os.path.join(root, name)
            st = os.lstat(full)
            data = None
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as f:
                    data = f.read()
            out[os.path.relpath(full, str(path))] = (st.st_mode, st.st_ino, data)
    return out


def test_every_format_is_written_with_one_textfile_per_host_and_a_second_run_touches_nothing(tmp_path, report):
    out = tmp_path / "audit"
    changed, diff = _audit_files.write(_audit_files.plan(report, str(out), FORMATS))
    names = sorted(os.path.relpath(p, str(out)) for p in changed)
    assert names == sorted(["report.json", "report.csv", "report.md", "report.html"]
                           + ["prometheus/%s.prom" % h["host"] for h in report["hosts"]])
    assert len(diff) == len(names) and all(d["before"] == "" and d["after"].startswith("sha256:") for d in diff)
    assert json.loads((out / "report.json").read_text()) == report
    assert oct((out / "report.html").stat().st_mode & 0o777) == "0o644"
    before = snapshot(out)
    changed, diff = _audit_files.write(_audit_files.plan(report, str(out), FORMATS))
    assert changed == [] and diff == []
    # Same inodes: nothing was replaced.
    assert snapshot(out) == before


def test_check_mode_lists_the_changes_and_creates_nothing(tmp_path, report):
    out = tmp_path / "audit"
    changed, _diff = _audit_files.write(_audit_files.plan(report, str(out), ["json"]), check_mode=True)
    assert changed == [str(out / "report.json")]
    assert not out.exists()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_a_report_path_that_is_not_a_plain_file_is_refused_before_anything_is_written(tmp_path, report, kind):
    out = tmp_path / "audit"
    (out / "prometheus").mkdir(parents=True)
    (out / "report.json").write_text("{}\n")
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    where = out / "prometheus" / ("%s.prom" % report["hosts"][-1]["host"])
    if kind == "symlink":
        where.symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(str(where))
    else:
        where.mkdir()
    before = snapshot(out)
    with pytest.raises(_audit_files.ReportFileError) as err:
        _audit_files.plan(report, str(out), FORMATS)
    assert str(where) in str(err.value) and "nothing was written" in str(err.value)
    assert snapshot(out) == before and victim.read_text() == "keep\n"


def test_a_report_directory_that_is_a_file_is_refused(tmp_path, report):
    (tmp_path / "audit").write_text("x")
    with pytest.raises(_audit_files.ReportFileError, match="is not a directory"):
        _audit_files.plan(report, str(tmp_path / "audit"), ["json"])


def test_a_full_disk_while_staging_leaves_every_report_as_it_was(tmp_path, report, monkeypatch):
    out = tmp_path / "audit"
    _audit_files.write(_audit_files.plan(report, str(out), FORMATS))
    before = snapshot(out)
    changed = dict(report, generated_at="2026-12-01T00:00:00+00:00")
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        _audit_files.write(_audit_files.plan(changed, str(out), FORMATS))
    # Two files were staged before the third failed: all three temporary files are gone too.
    assert snapshot(out) == before
