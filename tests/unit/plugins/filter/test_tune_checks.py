"""The tune role's verify and health-gate comparisons."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.filter.tune_checks import (
    health_regressions, settings_mismatches)


def facts(settings, initial=True, kube_proxy=False, page=4096):
    return {"initial_netns": initial, "host_settable": initial, "settings": settings,
            "environment": {"kube_proxy_running": kube_proxy},
            "memory": {"page_size_bytes": page, "bucket_size_bytes": 8}}


def sampled(drop=0.0, insert_failed=0.0, early_drop=0.0, table_full=0, last_seen=None):
    rates = {"drop": drop, "insert_failed": insert_failed, "early_drop": early_drop}
    return {"stats": {"sample": {"seconds": 1, "rates_per_second": rates}},
            "kernel_log": {"table_full_count": table_full, "last_seen_seconds_since_boot": last_seen}}


def test_matching_runtime_has_no_mismatch():
    want = {"nf_conntrack_max": 262144, "nf_conntrack_tcp_timeout_time_wait": 60}
    assert settings_mismatches(want, facts(dict(want))) == {}


def test_buckets_compare_after_the_kernels_rounding():
    assert settings_mismatches({"nf_conntrack_buckets": 100000}, facts({"nf_conntrack_buckets": 100352})) == {}


def test_buckets_rounding_follows_the_page_size():
    # 64 KiB pages hold 8192 list heads.
    assert settings_mismatches({"nf_conntrack_buckets": 100000},
                               facts({"nf_conntrack_buckets": 106496}, page=65536)) == {}


def test_a_value_that_did_not_take_is_reported():
    got = settings_mismatches({"nf_conntrack_max": 262144, "nf_conntrack_udp_timeout": 30},
                              facts({"nf_conntrack_max": 65536, "nf_conntrack_udp_timeout": 30}))
    assert got == {"nf_conntrack_max": {"desired": 262144, "runtime": 65536}}


def test_a_key_missing_from_the_kernel_is_reported():
    got = settings_mismatches({"nf_conntrack_tcp_timeout_unacknowledged": 300}, facts({}))
    assert got == {"nf_conntrack_tcp_timeout_unacknowledged": {"desired": 300, "runtime": None}}


def test_skipped_keys_are_not_expected_to_change():
    got = settings_mismatches({"nf_conntrack_helper": 1}, facts({"nf_conntrack_helper": 0}),
                              {"nf_conntrack_helper": "not present"})
    assert got == {}


def test_global_keys_are_ignored_outside_the_initial_namespace():
    want = {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 65536, "nf_conntrack_expect_max": 1024,
            "nf_conntrack_udp_timeout": 60}
    got = settings_mismatches(want, facts({"nf_conntrack_max": 1, "nf_conntrack_udp_timeout": 30}, initial=False))
    assert got == {"nf_conntrack_udp_timeout": {"desired": 60, "runtime": 30}}


def test_kube_proxy_keys_are_ignored_only_when_respected():
    want = {"nf_conntrack_tcp_timeout_established": 432000}
    runtime = facts({"nf_conntrack_tcp_timeout_established": 86400}, kube_proxy=True)
    assert settings_mismatches(want, runtime, None, "respect") == {}
    assert settings_mismatches(want, runtime, None, "override") == {
        "nf_conntrack_tcp_timeout_established": {"desired": 432000, "runtime": 86400}}


def test_non_integer_desired_value_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="nf_conntrack_max"):
        settings_mismatches({"nf_conntrack_max": "lots"}, facts({"nf_conntrack_max": 1}))


def test_steady_rates_pass_the_gate():
    assert health_regressions(sampled(drop=1.0), sampled(drop=1.0)) == []


def test_fewer_drops_after_tuning_pass_the_gate():
    assert health_regressions(sampled(drop=0.0), sampled(drop=50.0)) == []


@pytest.mark.parametrize("name", ["drop", "early_drop", "insert_failed"])
def test_a_rising_rate_fails_the_gate(name):
    reasons = health_regressions(sampled(**{name: 3.0}), sampled())
    assert len(reasons) == 1 and reasons[0].startswith(name)


def test_a_rise_within_the_tolerance_passes():
    assert health_regressions(sampled(drop=0.5), sampled(), tolerance_per_second=1.0) == []


def test_new_table_full_messages_after_tuning_fail_the_gate():
    before_start, before = sampled(table_full=10), sampled(table_full=10)
    after_start, after = sampled(table_full=10), sampled(table_full=12)
    reasons = health_regressions(after, before, after_start, before_start)
    assert reasons == ["2 'table full' kernel messages in the window after tuning, 0 before"]


def test_table_full_messages_that_slowed_down_pass_the_gate():
    before_start, before = sampled(table_full=0), sampled(table_full=40)
    after_start, after = sampled(table_full=41), sampled(table_full=43)
    assert health_regressions(after, before, after_start, before_start) == []


def test_table_full_messages_in_a_full_ring_buffer_are_seen_by_their_time():
    # The count stands still: each new line pushed an old one out of the buffer.
    before_start, before = sampled(table_full=260, last_seen=100.0), sampled(table_full=260, last_seen=100.0)
    after_start, after = sampled(table_full=260, last_seen=100.0), sampled(table_full=260, last_seen=131.5)
    assert health_regressions(after, before, after_start, before_start) == [
        "1 'table full' kernel messages in the window after tuning, 0 before"]


def test_a_host_without_stats_is_not_judged():
    assert health_regressions({"stats": {"sample": None}}, sampled(drop=9.0)) == []
