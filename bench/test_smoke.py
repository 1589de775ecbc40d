"""Small versions of the benchmarks (seconds each), so that the bench code cannot rot.

They run the same code as `bench/run` with the sizes of bench.SMOKE and write their
JSON into a temporary directory. The figures are not judged here (2 shared cores);
what is checked is that each benchmark measures what it claims to measure.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
import bench  # noqa: E402  pylint: disable=wrong-import-position
import model  # noqa: E402  pylint: disable=wrong-import-position
from lab import Lab, run_ab  # noqa: E402  pylint: disable=wrong-import-position


def _namespaces():
    return set(subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, universal_newlines=True,
                              check=True).stdout.split())


def _kwargs(name, tmp_path):
    kwargs = dict(bench.SMOKE[name])
    kwargs["results_dir"] = str(tmp_path)
    return kwargs


def _json(tmp_path, name):
    with open(os.path.join(str(tmp_path), name + ".json")) as f:
        return json.load(f)


def test_lab_tracks_only_through_the_dnat_and_leaves_nothing_behind():
    from support.kernel import exclusive_kernel
    with exclusive_kernel():
        with Lab() as lab:
            lab.no_ruleset()
            direct = run_ab(lab.client, lab.direct_url, 500, 50)
            direct_count = lab.gateway_count()
            lab.dnat()
            nat = run_ab(lab.client, lab.nat_url, 500, 50)
            nat_count = lab.gateway_count()
            names = {lab.client.name, lab.gateway.name, lab.backend.name}
            nginx_pid = lab.nginx.pid
    assert direct["complete_requests"] == 500 and nat["complete_requests"] == 500
    assert direct_count == 0, "the baseline path must not be tracked"
    assert nat_count >= 500, "every DNATed connection must have an entry"
    assert not names & _namespaces(), "the lab's namespaces must be deleted"
    assert not os.path.exists("/proc/%d" % nginx_pid), "nginx must be stopped"


def test_b1_replays_the_case_study_broken_state_and_restores_the_machine(tmp_path):
    import b1_seed
    result = b1_seed.run(tune=True, **_kwargs("b1", tmp_path))
    assert _json(tmp_path, "b1")["broken_completed"] == result["broken_completed"]
    # The case study: with max 1000 the table fills, the kernel drops, ab gives up.
    assert result["broken_completed"] < bench.SMOKE["b1"]["broken_requests"]
    assert result["broken_drops"] > 0
    assert result["phases"]["baseline"][0]["gateway_count_after"] == 0
    assert result["phases"]["ceiling"][0]["complete_requests"] == bench.SMOKE["b1"]["requests"]
    assert result["ceiling_drops"] == 0
    assert result["goals"]["machine_values_restored"]
    assert not result.get("errors"), result["errors"]
    assert _json(tmp_path, "b1")["tuned_over_ceiling_spread"]["rounds"] == bench.SMOKE["b1"]["rounds"]
    # The tuned phase always runs: the role and the sizing code are part of this checkout.
    assert result["tuned_drops"] == 0
    assert result["tuned_values"]["nf_conntrack_max"] > b1_seed.BROKEN_MAX


def test_b2_walk_reads_the_whole_table_and_agrees_with_conntrack(tmp_path):
    import b2_facts
    result = b2_facts.run(**_kwargs("b2", tmp_path))
    table = result["tables"]["10000"]
    listed = int(table["pipelines"]["count"]["output_head"].split()[0])
    assert abs(table["entries"] - 10000) <= 10
    assert table["facts_walk"]["entries_read"] == listed
    assert table["facts_walk"]["by_protocol"] == {"udp": listed}
    assert table["facts_walk_ansible"]["entries_read"] == listed
    assert 0 < table["facts_walk"]["peak_rss_bytes"] < 100 * 2 ** 20


def test_b4_measures_slab_growth_and_little_steady_state(tmp_path):
    import b4_model
    result = b4_model.run(**_kwargs("b4", tmp_path))
    row = result["memory"]["sizes"]["10000"]
    # The slab grows by its own object size per entry, whatever the model says.
    per_entry = row["slab_growth_bytes"] / float(row["entries"])
    assert 0.8 * row["slab_object_size"] <= per_entry <= 1.5 * row["slab_object_size"]
    little = result["little"]
    assert little["pacer"]["failed"] == 0
    expected = little["pacer"]["achieved_rate_per_second"] * little["time_wait_seconds"]
    assert 0.5 * expected <= little["observed_steady_entries"] <= 1.5 * expected
    assert model.available(), "the sizing code must be on the collections path"
    assert row["predicted"]["entries_bytes"] > 0 and little["predicted"]["entries"] > 0


def test_b3_both_rollouts_apply_the_keys_on_podman_hosts(tmp_path):
    import b3_fleet
    result = b3_fleet.run(**_kwargs("b3", tmp_path))
    assert result["goals"]["anchor_first_run_ok"]
    assert result["anchor"]["second"]["changed"] == 0
    assert result["goals"]["tune_first_run_ok"]
    assert result["goals"]["tune_second_run_changed_0"]
    out = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}"], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    assert "ncbench-%d-" % os.getpid() not in out


def test_b5_fills_the_table_and_tunes_it_from_observation_alone(tmp_path):
    import b5_sustained
    result = b5_sustained.run(**_kwargs("b5", tmp_path))
    assert _json(tmp_path, "b5")["tune_runs_observed"] == result["tune_runs_observed"]
    phases = result["phases"]
    offered = bench.SMOKE["b5"]["rate_per_second"]
    # The small table fills: the kernel drops and logs it, and the clients see failures.
    assert phases["default"]["drops"] > 0
    assert phases["default"]["failure_rate"] > 0
    assert phases["default"]["first_full_after_seconds"] is not None
    # The series is sampled once a second with every counter the issue names.
    series = result["observed"]["series"]
    assert len(series) >= result["parameters"]["window_seconds"]
    assert {"count", "drop", "insert", "insert_failed", "early_drop", "table_full", "max"} <= set(series[0])
    # Tuned from what the gateway showed: the demand comes from the counters, not from max + 1,
    # and errs high (a retried SYN counts twice), never below what was offered.
    tune = result["observed"]["tunes"][0]
    assert tune["exit_code"] == 0
    assert "new flows/s over the" in tune["max_reason"]
    assert tune["demand_new_per_second"] >= 0.8 * offered
    assert 1 <= result["tune_runs_observed"] <= 2
    for phase in ("tuned", "declared", "ceiling"):
        assert phases[phase]["drops"] == 0, phase
        assert phases[phase]["failure_rate"] == 0, phase
    assert result["declared"]["tune"]["declared_tcp_new_per_second"] > 0
    # Every paired round measured (wrk ran and connected from each client), the ratio's spread kept.
    assert not result["errors"], result["errors"]
    spread = _json(tmp_path, "b5")["tuned_over_ceiling_spread"]
    assert spread["rounds"] == bench.SMOKE["b5"]["rounds"] and spread["median"] > 0 and spread["iqr"] >= 0
    assert all(r["tuned"]["requests"] > 0 and r["ceiling"]["requests"] > 0 for r in result["rounds"])
    assert result["goals"]["machine_values_restored"]
    assert not result["etc_put_back"]["added"], "rollback must leave no drop-in behind"
    assert not set(result["lab_namespaces"]) & _namespaces(), "the lab's namespaces must be deleted"
