"""The small version of B8: the tune rollout over mock hosts runs every batch, and the health gate
halts it in the batch with the regressing host, with the later hosts never called."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
import bench  # noqa: E402  pylint: disable=wrong-import-position
import b8_rollout_scale  # noqa: E402  pylint: disable=wrong-import-position


def test_batch_sizes_follow_the_serial_list():
    assert b8_rollout_scale.batch_sizes(20, [1, "25%"]) == [1, 5, 5, 5, 4]
    assert b8_rollout_scale.batch_sizes(1000, [1, "25%"]) == [1, 250, 250, 250, 249]
    assert b8_rollout_scale.batch_sizes(250, [100]) == [100, 100, 50]


def test_b8_rolls_out_in_batches_and_the_gate_halts_at_the_regressing_host(tmp_path):
    result = b8_rollout_scale.run(**dict(bench.SMOKE["b8"], results_dir=str(tmp_path)))
    assert result["errors"] == []
    runs = dict((r["kind"], r) for r in result["runs"] if r["hosts"] == 20)
    assert [b["hosts"] for b in runs["default"]["batches"]] == [1, 5, 5, 5, 4]
    assert [b["hosts"] for b in runs["fixed"]["batches"]] == [10, 10]
    # Every host read, recommended and applied once; a fifth were already at their recommendation.
    calls = runs["default"]["module_calls"]
    assert calls["facts start"] == calls["facts before"] == calls["facts after"] == calls["settings apply"] == 20
    assert "settings restore" not in calls and not any(b["failed"] for b in runs["default"]["batches"])
    halt, fixed_halt = result["halt"]
    assert halt["ok"] and halt["halted_after_batch"] == 2 and halt["hosts_untouched"] == 14
    assert runs["halt"]["module_calls"]["settings restore"] == 1
    # Serial 10 over 40 hosts, halted in batch 3: 30 hosts reached, 10 never called.
    assert fixed_halt["ok"] and fixed_halt["halted_after_batch"] == 3 and fixed_halt["hosts_untouched"] == 10
    assert [g["kind"] for g in result["growth"]] == ["baseline", "default", "fixed batch"]
    assert all(r["over_baseline"] > 1 for r in result["ratios"])
