"""Unit tests of the pure sizing core: the kernel's rules, the model, the verdict and bad input."""
import copy
import json
import os
import re

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel, sizing
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.sizing import SizingError, recommend

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "facts")
GIB = 1 << 30


def quiet_host(**changes):
    """This machine's facts (25 GB, 6.18, 12 entries), with dotted-path changes."""
    with open(os.path.join(FIXTURES, "quiet_host.json")) as f:
        facts = json.load(f)
    for path, value in changes.items():
        node = facts
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return facts


def full_host(count, max_entries=262144, **changes):
    facts = quiet_host(**changes)
    facts["usage"].update(count=count, max=max_entries)
    facts["settings"].update(nf_conntrack_count=count, nf_conntrack_max=max_entries)
    return facts


# --- the kernel's rules ------------------------------------------------------

@pytest.mark.parametrize("written, read_back", [(100000, 100352), (512, 512), (513, 1024), (1, 512),
                                                (262144, 262144), (1170000, 1170432)])
def test_buckets_round_up_like_the_kernel(written, read_back):
    assert kernel.round_buckets(written) == read_back


@pytest.mark.parametrize("mem, buckets", [
    (25274793984, 262144),        # this machine
    (16 * GIB, 262144),
    (4 * GIB, 65536),             # "> 4 GiB" is strict
    (4 * GIB + 4096, 262144),
    (2 * GIB, 65536),
    (GIB, 8192),                  # 1 GiB / 16384 / 8
    (512 << 20, 4096),
    (64 << 20, 1024),             # the kernel's minimum
])
def test_default_max_follows_nf_conntrack_init_start(mem, buckets):
    assert kernel.kernel_default_buckets(mem) == buckets
    assert kernel.kernel_default_max(mem) == buckets


def test_expect_max_follows_nf_conntrack_expect_init():
    assert kernel.kernel_expect_max(262144) == 4096    # what this host shows
    assert kernel.kernel_expect_max(65536) == 1024
    assert kernel.kernel_expect_max(512) == 8
    assert kernel.kernel_expect_max(100) == 4     # at least one slot


def test_buckets_for_chain_depth():
    assert sizing.buckets_for(1048576, 4) == 262144    # kube-proxy's max/4
    assert sizing.buckets_for(1000000, 1) == 1000448


# --- memory ------------------------------------------------------------------

def test_memory_is_entries_times_slab_plus_buckets_times_eight():
    assert sizing.memory_bytes(1000, 65536, 256, 8) == 1000 * 256 + 65536 * 8 == 780288


def test_no_extension_costs_nothing_and_one_costs_the_prealloc_block():
    assert sizing.extension_bytes() == 0
    assert sizing.extension_bytes(acct=True) == 128
    assert sizing.extension_bytes(nat=True, acct=True, timestamp=True, events=True) == 128
    assert sizing.extension_bytes(nat=True, acct=True, timestamp=True, events=True, labels=True, helper=True) == 192


def test_extension_allowance_follows_the_facts():
    rec = recommend(quiet_host(settings__nf_conntrack_acct=1, environment__nat_rules_present=True))
    assert rec["memory"]["extensions"] == ["acct", "nat"]
    assert rec["memory"]["per_entry_bytes"] == 256 + 128
    assert rec["memory"]["total_bytes"] == 262144 * 384 + 262144 * 8
    # events=2 allocates the block only with a listener: no allowance
    assert recommend(quiet_host())["memory"]["extension_bytes"] == 0


def test_slab_size_from_facts_else_documented_fallback():
    assert recommend(quiet_host())["memory"]["entry_bytes"] == 256
    rec = recommend(None, peak_entries=1000)
    assert rec["memory"]["entry_bytes"] == sizing.FALLBACK_ENTRY_BYTES == 320
    assert any("slab size is unknown" in w for w in rec["warnings"])


@pytest.mark.parametrize("text, expected", [("10%", 0.10), ("0.05", 0.05), (0.2, 0.2), ("2GiB", 2 * GIB),
                                            ("512MiB", 512 << 20), ("1G", GIB), (3 * GIB, 3 * GIB)])
def test_budget_accepts_fraction_percent_and_size(text, expected):
    budget = sizing.parse_budget(text, 16 * GIB)[0]
    assert budget == (int(16 * GIB * expected) if expected <= 1 else expected)


# --- entries needed -------------------------------------------------------------

def test_little_law_6500_new_tcp_per_second_with_time_wait_120_is_780k():
    rec = recommend(None, tcp_new_per_second=6500, mem_total_bytes="16GiB", entry_bytes=256)
    assert rec["entries"]["needed"] == 780000
    assert rec["entries"]["driver"] == "rate_model"
    assert "6500 new/s x 120 s in the table = 780k entries" in rec["reasons"]["nf_conntrack_max"]
    assert rec["settings"]["nf_conntrack_max"] == 1170432          # 780k x 1.5, rounded to 512
    assert rec["settings"]["nf_conntrack_buckets"] == 1170432
    assert rec["settings"]["nf_conntrack_max"] % 512 == 0


def test_udp_flows_live_udp_timeout_or_stream_timeout():
    rec = recommend(None, udp_new_per_second=1000, udp_stream_share=0.25, mem_total_bytes="16GiB")
    # 0.25 x 120 + 0.75 x 30 = 52.5 s
    assert rec["entries"]["rate_model"]["udp"]["lifetime_seconds"] == 52.5
    assert rec["entries"]["needed"] == 52500


def test_observed_rate_from_time_wait_count_scales_with_the_new_time_wait():
    facts = full_host(count=100000)
    facts["table"]["tcp_states"] = {"ESTABLISHED": 10000, "TIME_WAIT": 90000}
    rec = recommend(facts, timeouts={"tcp_timeout_time_wait": 60})
    assert rec["entries"]["rates"]["tcp_closes_per_second"] == 750.0      # 90000 / 120 s
    assert rec["entries"]["sources"]["observed_rate"] == 10000 + 750 * 60
    assert rec["entries"]["sources"]["current_count"] == 100000


def test_truncated_table_walk_gives_no_observed_rate():
    facts = full_host(count=100000, table__truncated=True)
    facts["table"]["tcp_states"] = {"TIME_WAIT": 90000}
    assert recommend(facts)["entries"]["sources"]["observed_rate"] is None


@pytest.mark.parametrize("counter", ["drop", "insert_failed", "early_drop"])
def test_pressure_makes_the_recommendation_exceed_the_current_max(counter):
    facts = full_host(count=1000, max_entries=1000)
    facts["stats"]["totals"][counter] = 296
    rec = recommend(facts, headroom=1)
    assert rec["entries"]["sources"]["pressure"] == 1001
    assert rec["settings"]["nf_conntrack_max"] > 1000
    assert rec["verdict"]["status"] == "undersized"
    assert rec["verdict"]["severity"] == "critical"


def test_table_full_in_the_kernel_log_is_pressure():
    facts = full_host(count=10, max_entries=300000, kernel_log__table_full_count=4)
    rec = recommend(facts)
    assert rec["entries"]["driver"] == "pressure"
    assert rec["settings"]["nf_conntrack_max"] > 300000


def test_drops_seen_in_a_sample_are_critical_pressure_now():
    facts = full_host(count=1000, max_entries=300000)
    facts["stats"]["sample"] = {"seconds": 5, "deltas": {"drop": 50},
                                "rates_per_second": {"drop": 10.0, "insert_failed": 0, "early_drop": 0}}
    rec = recommend(facts, pressure_since_boot=False)
    assert rec["entries"]["driver"] == "pressure"
    assert "drop 10/s now" in rec["reasons"]["nf_conntrack_max"]
    assert rec["verdict"]["severity"] == "critical"


def test_old_drops_on_a_now_quiet_table_warn_and_can_be_ignored():
    facts = full_host(count=10, max_entries=827392, kernel_log__table_full_count=70, kernel_log__netns=[4])
    rec = recommend(facts)
    assert (rec["verdict"]["status"], rec["verdict"]["severity"]) == ("undersized", "warning")
    assert "since boot (netns 4)" in rec["reasons"]["nf_conntrack_max"]
    assert "pressure_since_boot=false" in rec["reasons"]["nf_conntrack_max"]
    rec = recommend(facts, pressure_since_boot=False)
    assert rec["entries"]["sources"]["pressure"] is None
    assert rec["verdict"]["status"] == "ok"


def test_quiet_host_keeps_the_kernel_default_and_changes_nothing():
    rec = recommend(quiet_host())
    assert rec["settings"] == {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 262144,
                               "nf_conntrack_expect_max": 4096}
    assert not any(c["change"] for c in rec["comparison"].values())
    assert rec["verdict"]["status"] == "ok"
    assert "kernel's own default" in rec["reasons"]["nf_conntrack_max"]


def test_kubernetes_profile_floor_is_32768_per_cpu_at_least_131072():
    rec = recommend(None, profile="kubernetes_node", peak_entries=1, cpu_count=8, mem_total_bytes="2GiB")
    assert rec["settings"]["nf_conntrack_max"] == 262144
    assert rec["settings"]["nf_conntrack_tcp_timeout_established"] == 86400
    assert rec["settings"]["nf_conntrack_tcp_timeout_close_wait"] == 3600
    rec = recommend(None, profile="kubernetes_node", peak_entries=1, cpu_count=2, mem_total_bytes="2GiB")
    assert rec["settings"]["nf_conntrack_max"] == 131072


def test_profile_timeouts_change_the_rate_model():
    rec = recommend(None, profile="nat_gateway", udp_new_per_second=100, mem_total_bytes="16GiB")
    assert rec["entries"]["rate_model"]["udp"]["lifetime_seconds"] == 60
    assert "RFC 4787" in rec["reasons"]["nf_conntrack_udp_timeout"]


def test_override_wins_over_profile_and_has_its_reason():
    rec = recommend(None, profile="kubernetes_node", peak_entries=1, timeouts={"tcp_timeout_established": 7200})
    assert rec["settings"]["nf_conntrack_tcp_timeout_established"] == 7200
    assert rec["reasons"]["nf_conntrack_tcp_timeout_established"].startswith("your override")


# --- budget --------------------------------------------------------------------------

def test_budget_caps_max_warns_and_shows_which_time_wait_fits():
    rec = recommend(None, tcp_new_per_second=6500, mem_total_bytes="16GiB", entry_bytes=256,
                    memory_budget="128MiB")
    mem = rec["memory"]
    assert mem["capped"] is True
    assert mem["total_bytes"] <= 128 << 20
    assert any("capped" in w for w in rec["warnings"])
    fit = rec["timeouts_fitting_budget"]
    assert fit and fit[0]["key"] == "nf_conntrack_tcp_timeout_time_wait"
    # at that time_wait the need x headroom fits under the cap
    assert 6500 * fit[0]["timeout_seconds"] * 1.5 <= rec["settings"]["nf_conntrack_max"]


def test_tradeoff_table_lists_memory_per_time_wait():
    rec = recommend(None, tcp_new_per_second=6500, mem_total_bytes="16GiB", entry_bytes=256)
    rows = dict((r["timeout_seconds"], r) for r in rec["tradeoffs"]
                if r["key"] == "nf_conntrack_tcp_timeout_time_wait")
    assert sorted(rows) == [30, 60, 120]
    assert rows[60]["entries_needed"] == 390000
    assert rows[30]["memory_bytes"] < rows[60]["memory_bytes"] < rows[120]["memory_bytes"]


def test_namespaces_multiply_the_worst_case():
    rec = recommend(None, peak_entries=100000, namespaces=10, mem_total_bytes="16GiB", entry_bytes=256)
    assert rec["memory"]["all_namespaces_full_bytes"] == 10 * rec["memory"]["entries_bytes"] \
        + rec["memory"]["hash_table_bytes"]
    assert any("each network namespace" in w for w in rec["warnings"])


# --- verdict -------------------------------------------------------------------------

@pytest.mark.parametrize("count, status, severity", [(100000, "ok", "ok"), (196608, "undersized", "warning"),
                                                     (235930, "undersized", "critical")])
def test_verdict_uses_75_and_90_percent_thresholds(count, status, severity):
    facts = full_host(count=count)
    rec = recommend(facts, headroom=1)
    assert (rec["verdict"]["status"], rec["verdict"]["severity"]) == (status, severity)


def test_chains_too_deep_when_max_far_above_buckets():
    facts = quiet_host()
    facts["usage"].update(max=262144, buckets=16384)
    rec = recommend(facts)
    assert rec["verdict"]["status"] == "chains_too_deep"
    assert rec["comparison"]["nf_conntrack_buckets"] == {"current": 16384, "recommended": 262144, "change": True}


def test_chaintoolong_drops_are_critical():
    facts = quiet_host()
    facts["stats"]["totals"]["chaintoolong"] = 5
    assert recommend(facts)["verdict"]["severity"] == "critical"


def test_oversized_when_a_full_table_would_blow_the_budget():
    facts = quiet_host()
    facts["usage"].update(max=50000000, buckets=50000128)
    rec = recommend(facts)
    assert rec["verdict"]["status"] == "oversized"
    assert rec["settings"]["nf_conntrack_max"] == 262144


def test_a_budget_that_cuts_max_below_the_live_count_needs_force():
    facts = full_host(count=200000, max_entries=262144)
    with pytest.raises(SizingError) as info:
        recommend(facts, memory_budget="16MiB")
    assert "below the 200000 entries in the table now" in str(info.value)
    assert "force=true" in str(info.value) and "memory budget" in str(info.value)
    assert info.value.option == "force"


def test_a_capped_max_below_the_current_count_is_a_warning_with_force():
    facts = full_host(count=200000, max_entries=262144)
    rec = recommend(facts, memory_budget="16MiB", force=True)
    assert rec["settings"]["nf_conntrack_max"] < 200000
    assert any("below the current count 200000" in w for w in rec["warnings"])


@pytest.mark.parametrize("profile", sorted(sizing.PROFILES))
def test_each_profile_reason_is_said_once_and_true_for_the_value_it_explains(profile):
    spec = sizing.PROFILES[profile]
    rec = recommend(quiet_host(), profile=profile)
    assert sorted(spec["reasons"]) == sorted(spec["timeouts"])
    texts = dict((key, rec["reasons"][key]) for key in spec["timeouts"])
    # once: the profile's references stay in rec["profile"], and no key repeats another's reason
    assert rec["profile"]["sources"] == spec["sources"]
    assert not any(source in text for source in spec["sources"] for text in texts.values())
    tails = [text.split("); ", 1)[1] for text in texts.values()]
    assert len(set(tails)) == len(tails)
    for key, seconds in spec["timeouts"].items():
        text = texts[key]
        assert text.startswith("%s profile: %d s (kernel default " % (profile, seconds)), text
        # every bound is cited in seconds so that it can be held against the value
        assert not re.search(r"at (least|most) [0-9.]+ (min|minutes|h|hours)\b", text), text
        for bound in re.findall(r"at least (\d+) s\b", text):
            assert seconds >= int(bound), text
        for bound in re.findall(r"at most (\d+) s\b", text):
            assert seconds <= int(bound), text


def test_a_budget_far_below_the_kernel_default_is_refused_with_the_arithmetic():
    # The typo of 1MiB for 1GiB on an idle host: 3584 entries where the kernel alone gives 262144.
    with pytest.raises(SizingError) as info:
        recommend(quiet_host(), memory_budget="1MiB")
    message = str(info.value)
    assert message.startswith("refusing a table this small: the memory budget of 1.0 MiB caps nf_conntrack_max"
                              " at 3584 (3584 entries x 256 B + 3584 buckets x 8 B = 924.0 KiB), under 50% of the"
                              " kernel's own default of 262144 for 23.5 GiB of RAM.")
    assert message.endswith("raise memory_budget, or pass force=true to accept it")
    assert (info.value.option, info.value.value) == ("memory_budget", "1MiB")


def test_a_budget_below_the_peak_seen_with_headroom_is_refused():
    # 118784 fits 30MiB and the count, but not the count with the 1.5 headroom.
    with pytest.raises(SizingError) as info:
        recommend(full_host(count=100000), memory_budget="30MiB")
    assert "below the 100000 entries seen in the table now x 1.5 headroom = 150000" in str(info.value)


def test_force_accepts_a_small_table_and_keeps_the_warnings():
    rec = recommend(quiet_host(), memory_budget="1MiB", force=True)
    assert rec["settings"]["nf_conntrack_max"] == 3584
    assert any("below the kernel's own default" in w for w in rec["warnings"])


def test_a_budget_that_still_holds_half_the_kernel_default_and_the_peak_is_accepted():
    rec = recommend(quiet_host(), memory_budget="40MiB")
    assert rec["memory"]["capped"] is True and rec["settings"]["nf_conntrack_max"] >= 262144 / 2


def test_planning_has_no_host_to_starve_and_is_never_refused():
    rec = recommend(None, peak_entries=1000, mem_total_bytes="16GiB", memory_budget="1MiB")
    assert rec["settings"]["nf_conntrack_max"] < 262144 / 2


@pytest.mark.parametrize("option, value, accepted", [
    ("tcp_new_per_second", 1e308, "<= 1000000000"),
    ("tcp_new_per_second", float("inf"), "finite"),
    ("udp_duration_seconds", 1e300, "<= 31536000"),
    ("peak_entries", 1e12, "<= 2147483647"),
    ("peak_entries", -1, ">= 0"),
    ("headroom", 0, ">= 1 and <= 100"),
    ("headroom", 1e9, ">= 1 and <= 100"),
    ("target_chain_depth", 1e6, "<= 64"),
    ("entry_bytes", 10 ** 9, "<= 65536"),
    ("cpu_count", 0, ">= 1"),
    ("mem_total_bytes", 1e300, "<= "),
    ("memory_budget", "lots", "a share of RAM above 0 and at most 100%"),
    ("memory_budget", "0%", "above 0"),
])
def test_absurd_numbers_are_refused_naming_the_option_the_value_and_the_range(option, value, accepted):
    inputs = {"peak_entries": 10}
    inputs[option] = value
    with pytest.raises(SizingError) as info:
        recommend(None, **inputs)
    message = str(info.value)
    assert option in message and accepted in message, message
    assert repr(value) in message or str(value) in message, message
    assert info.value.option == option


def test_validate_inputs_refuses_what_recommend_refuses_without_facts():
    with pytest.raises(SizingError) as info:
        sizing.validate_inputs(tcp_new_per_second=1e308)
    assert info.value.option == "tcp_new_per_second" and info.value.value == 1e308
    # A share of RAM is fine before the RAM is known.
    sizing.validate_inputs(memory_budget="5%", headroom="2", peak_entries="100")


def test_a_bad_timeout_names_the_key_and_the_accepted_seconds():
    with pytest.raises(SizingError) as info:
        sizing.validate_inputs(timeouts={"tcp_timeout_time_wait": 5})
    assert info.value.option == "timeouts.tcp_timeout_time_wait"
    assert "30..2147483" in str(info.value)


def test_planning_is_not_judged():
    rec = recommend(None, peak_entries=10)
    assert rec["planning"] is True
    assert rec["verdict"]["judged"] is False


def test_registered_facts_result_is_unwrapped():
    facts = quiet_host()
    assert sizing.unwrap_facts({"ansible_facts": {"conntrack": facts}}) is facts
    assert sizing.unwrap_facts({"conntrack": facts}) is facts
    assert sizing.unwrap_facts(facts) is facts


# --- bad input -----------------------------------------------------------------------

@pytest.mark.parametrize("inputs, message", [
    ({"tcp_new_per_second": -1}, "tcp_new_per_second must be >= 0"),
    ({"udp_new_per_second": "many"}, "udp_new_per_second must be a number"),
    ({"tcp_new_per_second": float("nan")}, "finite"),
    ({"peak_entries": 10, "headroom": 0.9}, "headroom must be >= 1"),
    ({"peak_entries": 10, "mem_total_bytes": "4GiB", "memory_budget": "8GiB"}, "above the RAM"),
    ({"peak_entries": 10, "mem_total_bytes": "4GiB", "memory_budget": "150%"}, "above the RAM"),
    ({"peak_entries": 10, "profile": "router"}, "unknown profile 'router'"),
    ({"peak_entries": 10, "timeouts": {"tcp_timeout_established": 9999999}}, "outside the range the kernel accepts"),
    ({"peak_entries": 10, "timeouts": {"tcp_timeout_time_wait": 5}}, "below the safe floor of 30"),
    ({"peak_entries": 10, "timeouts": {"tcp_timeout_bogus": 60}}, "unknown timeout"),
    ({"peak_entries": 10, "timeouts": {"udp_timeout": "soon"}}, "must be a number"),
    ({}, "planning call (no facts) needs the load"),
    ({"tcp_duration_seconds": 5}, "planning call (no facts) needs the load"),
    ({"peak_entries": 10, "memory_budget": "10%"}, "RAM is unknown"),
    ({"peak_entries": 10, "target_chain_depth": 0}, "target_chain_depth"),
    ({"peak_entries": 10, "udp_stream_share": 2}, "udp_stream_share"),
])
def test_bad_input_raises_a_clear_sizing_error(inputs, message):
    with pytest.raises(SizingError) as info:
        recommend(None, **inputs)
    assert message in str(info.value)


def test_facts_without_conntrack_are_refused():
    with pytest.raises(SizingError, match="not available"):
        recommend({"schema_version": 1, "available": False})


def test_recommend_does_not_change_its_facts():
    facts = quiet_host()
    before = copy.deepcopy(facts)
    recommend(facts, tcp_new_per_second=10)
    assert facts == before


# --- every namespace (facts with namespaces: all) ----------------------------------------

def with_namespaces(facts, *spaces):
    facts["namespaces"] = [dict({"current": True, "entries": facts["usage"]["count"], "owner": {"kind": "host"},
                                 "stats": {"totals": {"drop": 0}}})]
    for name, entries, drop in spaces:
        facts["namespaces"].append({"current": False, "entries": entries, "owner": {"kind": "ip-netns", "netns_name": name},
                                    "stats": {"totals": {"drop": drop}}})
    return facts


def test_the_fullest_namespace_drives_the_max_when_the_host_itself_is_quiet():
    facts = with_namespaces(full_host(count=120, max_entries=262144), ("web", 200000, 0), ("db", 3000, 0))
    rec = recommend(facts, headroom=1.5)
    assert rec["entries"]["sources"]["largest_namespace"] == 200000
    assert rec["entries"]["driver"] == "largest_namespace"
    assert rec["settings"]["nf_conntrack_max"] >= 300000
    assert "the fullest namespace, netns web (200000 entries" in rec["reasons"]["nf_conntrack_max"]


def test_memory_prices_the_real_counts_of_every_namespace_beside_the_worst_case():
    facts = with_namespaces(full_host(count=120), ("web", 20000, 0), ("db", 3000, 0))
    rec = recommend(facts)
    memory = rec["memory"]
    assert memory["namespaces_counted"] == 3
    per_entry = memory["per_entry_bytes"]
    assert memory["at_namespace_counts_bytes"] == (120 + 20000 + 3000) * per_entry + memory["hash_table_bytes"]
    assert any("3 namespaces hold 23120 entries" in w and "netns web" in w for w in rec["warnings"])
    summary = rec["namespaces"]
    assert summary["namespaces"] == 3 and summary["readable"] == 3 and summary["entries_total"] == 23120
    # One price for what the namespaces hold: the summary quotes the memory figure, not a second model.
    assert summary["memory_bytes_at_counts"] == memory["at_namespace_counts_bytes"]
    assert summary["largest"]["label"] == "netns web" and summary["largest"]["entries"] == 20000
    assert summary["largest"]["share_of_max"] == round(20000 / float(rec["settings"]["nf_conntrack_max"]), 4)


def test_the_namespace_summary_is_null_without_the_list_and_counts_the_unreadable():
    assert recommend(full_host(count=120))["namespaces"] is None
    facts = with_namespaces(full_host(count=120), ("web", 500, 0))
    facts["namespaces"].append({"inode": 3, "owner": {"kind": "ip-netns", "netns_name": "idle"},
                                "entries": None, "readable": False})
    summary = recommend(facts)["namespaces"]
    assert summary["namespaces"] == 3 and summary["readable"] == 2 and summary["entries_total"] == 620


def test_drops_in_another_namespace_are_pressure_on_the_one_global_max():
    facts = with_namespaces(full_host(count=120, max_entries=4096), ("filler", 4096, 700))
    rec = recommend(facts)
    assert rec["entries"]["sources"]["pressure"] == 4097
    assert "drop=700 since boot in netns filler" in rec["reasons"]["nf_conntrack_max"] or \
        rec["entries"]["driver"] == "largest_namespace"
    assert rec["verdict"]["status"] == "undersized"


def test_without_a_namespace_list_nothing_changes():
    rec = recommend(full_host(count=120))
    assert rec["entries"]["sources"]["largest_namespace"] is None and "namespaces_counted" not in rec["memory"]
