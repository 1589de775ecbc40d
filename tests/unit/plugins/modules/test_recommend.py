"""netfilter.conntrack.recommend through real ansible: planning, given facts, and every bad input."""
import json
import os

import pytest

from support.ansible import run_module

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "facts")


def quiet_host():
    with open(os.path.join(FIXTURES, "quiet_host.json")) as f:
        return json.load(f)


def assert_clean_failure(result, message):
    # ansible 2.19's tree output drops "failed"; the adhoc output still says so
    assert result.get("failed") is True or "Task failed" in result["_stdout"], result
    assert "recommendation" not in result
    assert message in result["msg"]
    assert "exception" not in result
    assert "Traceback" not in result["_stdout"] + result["_stderr"]


def test_planning_2m_entries_on_16gib_gives_settings_and_memory():
    result = run_module("recommend", {"planning": True, "peak_entries": 2000000, "mem_total_bytes": "16GiB",
                                      "entry_bytes": 256})
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    rec = result["recommendation"]
    assert rec["settings"]["nf_conntrack_max"] == 3000320
    assert rec["memory"]["total_bytes"] == 3000320 * 256 + 3000320 * 8
    assert rec["planning"] is True


def test_given_facts_are_used_and_the_quiet_host_needs_no_change():
    result = run_module("recommend", {"facts": quiet_host()}, check=True)
    assert result.get("failed") is not True, result
    rec = result["recommendation"]
    assert rec["verdict"]["status"] == "ok"
    assert not any(c["change"] for c in rec["comparison"].values())


def test_a_registered_facts_result_is_accepted():
    result = run_module("recommend", {"facts": {"ansible_facts": {"conntrack": quiet_host()}},
                                      "tcp_new_per_second": 6500})
    assert result["recommendation"]["entries"]["needed"] == 780000


@pytest.mark.parametrize("args, message", [
    ({"planning": True, "tcp_new_per_second": -5}, "tcp_new_per_second must be >= 0"),
    ({"planning": True, "tcp_new_per_second": "lots"}, "tcp_new_per_second"),
    ({"planning": True, "peak_entries": 10, "headroom": 0.5}, "headroom must be >= 1"),
    ({"planning": True, "peak_entries": 10, "mem_total_bytes": "4GiB", "memory_budget": "6GiB"}, "above the RAM"),
    ({"planning": True, "peak_entries": 10, "profile": "router"}, "value of profile must be one of"),
    ({"planning": True, "peak_entries": 10, "timeouts": {"tcp_timeout_established": 99999999}},
     "outside the range the kernel accepts"),
    ({"planning": True, "peak_entries": 10, "timeouts": {"tcp_timeout_time_wait": 1}}, "below the safe floor"),
    ({"planning": True}, "planning call (no facts) needs the load"),
    ({"planning": True, "tcp_new_per_second": 1e308}, "tcp_new_per_second must be >= 0 and <= 1000000000"),
    ({"planning": True, "facts": {"schema_version": 1}}, "mutually exclusive"),
    ({"facts": {"schema_version": 1, "available": False}}, "not available"),
])
def test_bad_input_fails_with_a_clear_message_and_no_traceback(args, message):
    assert_clean_failure(run_module("recommend", args), message)


def _crowded_host():
    facts = quiet_host()
    facts["usage"].update(count=200000, max=262144)
    facts["settings"].update(nf_conntrack_count=200000, nf_conntrack_max=262144)
    return facts


def test_a_budget_below_the_live_count_fails_unless_forced():
    assert_clean_failure(run_module("recommend", {"facts": _crowded_host(), "memory_budget": "16MiB"}),
                         "Pass force=true to accept it")
    result = run_module("recommend", {"facts": _crowded_host(), "memory_budget": "16MiB", "force": True})
    assert result.get("failed") is not True, result
    assert result["recommendation"]["settings"]["nf_conntrack_max"] < 200000


def test_a_budget_that_starves_an_idle_host_fails_before_anything_unless_forced():
    assert_clean_failure(run_module("recommend", {"facts": quiet_host(), "memory_budget": "1MiB"}),
                         "under 50% of the kernel's own default of 262144")
    result = run_module("recommend", {"facts": quiet_host(), "memory_budget": "1MiB", "force": True})
    assert result.get("failed") is not True, result
    assert result["recommendation"]["settings"]["nf_conntrack_max"] == 3584
