"""The small version of B7: the audit role over generated hosts from a jsonfile fact cache reports
every host it was given, with the failed ones as failed, and times the aggregation task."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
import bench  # noqa: E402  pylint: disable=wrong-import-position
import b7_fleet_audit  # noqa: E402  pylint: disable=wrong-import-position


def test_the_generated_fleet_has_every_kind_of_host():
    templates = b7_fleet_audit._templates()
    facts = [b7_fleet_audit.host_facts(i, templates) for i in range(len(b7_fleet_audit.KINDS))]
    assert facts[b7_fleet_audit.KINDS.index("failed")] is None
    ratios = set(f["usage"]["count"] / float(f["usage"]["max"]) for f in facts if f)
    assert min(ratios) < 0.05 and max(ratios) > 0.8


def test_b7_audits_every_cached_host_and_times_the_aggregation(tmp_path):
    result = b7_fleet_audit.run(**dict(bench.SMOKE["b7"], results_dir=str(tmp_path)))
    for row in result["sizes"]:
        assert row["aggregation_seconds"] is not None
        assert row["report_bytes"]["report.html"] > 0
        assert set(row["render_seconds"]) == {"json", "csv", "markdown", "html"}
    assert [r["hosts"] for r in result["sizes"]] == list(bench.SMOKE["b7"]["sizes"])
    for first in (result["sizes"][0], result["per_host"][0]):
        failed = sum(1 for i in range(first["hosts"]) if b7_fleet_audit.KINDS[i % len(b7_fleet_audit.KINDS)] == "failed")
        assert first["by_status"] == {"ok": first["hosts"] - failed, "failed": failed, "unreachable": 0}
    # Both methods judged the same cache: the same report, whichever way it was built.
    assert result["sizes"][0]["report_bytes"]["report.csv"] == result["per_host"][0]["report_bytes"]["report.csv"]
    assert result["per_host_over_cache"][0]["hosts"] == result["sizes"][0]["hosts"]
    # The same fleet from a redis cache (a private redis-server the benchmark starts and stops):
    # the same report as from the jsonfile cache.
    assert [r["hosts"] for r in result["redis"]] == list(bench.SMOKE["b7"]["redis_sizes"])
    redis_row = result["redis"][0]
    assert redis_row["cache"] == "redis" and redis_row["by_status"] == result["sizes"][0]["by_status"]
    assert redis_row["report_bytes"]["report.csv"] == result["sizes"][0]["report_bytes"]["report.csv"]
    assert result["redis_over_jsonfile"][0]["hosts"] == redis_row["hosts"]
