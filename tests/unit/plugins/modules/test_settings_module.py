"""The module's glue: arguments in, backend result out, failures as fail_json."""
import json

import pytest
from support.module_args import patch_module_args

from ansible_collections.netfilter.conntrack.plugins.modules import settings as settings_module

from unit.plugins.module_utils._conntrack.test_writing import DROPIN, make_host, snapshot


def run(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            settings_module.main()
    return json.loads(capsys.readouterr().out)


def test_module_reports_runtime_files_and_desired(tmp_path, capsys):
    root = make_host(tmp_path)
    res = run(capsys, settings={"nf_conntrack_buckets": 100000}, root=str(root), _ansible_diff=True)
    assert res["changed"] is True
    assert res["runtime"]["nf_conntrack_buckets"]["after"] == res["desired"]["nf_conntrack_buckets"]
    assert res["files"][DROPIN]["changed"] is True
    assert res["diff"][0]["before_header"].startswith("runtime")
    assert run(capsys, settings={"nf_conntrack_buckets": 100000}, root=str(root))["changed"] is False


def test_module_check_mode_writes_nothing(tmp_path, capsys):
    root = make_host(tmp_path)
    before = snapshot(root)
    res = run(capsys, settings={"nf_conntrack_udp_timeout": 5}, root=str(root), _ansible_check_mode=True)
    assert res["changed"] is True
    assert snapshot(root) == before


def test_module_fails_cleanly_on_bad_input(tmp_path, capsys):
    root = make_host(tmp_path)
    before = snapshot(root)
    res = run(capsys, settings={"nf_conntrack_max; rm -rf /": 1}, root=str(root))
    assert res["failed"] is True and res["changed"] is False
    assert "not an nf_conntrack sysctl name" in res["msg"]
    assert snapshot(root) == before
