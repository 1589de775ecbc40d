"""The demand of a saturated table, from the insert and drop rates of a sample (issue 14)."""
import json
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.demand import saturated_demand
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.sizing import recommend

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "facts")


def sample(seconds=5, **deltas):
    return {"seconds": seconds, "deltas": deltas,
            "rates_per_second": {k: v / float(seconds) for k, v in deltas.items()} if seconds else {}}


def saturated_host(inserts, drops, seconds=5, max_entries=262144):
    """This machine's facts with a full default table and a live sample of the overload."""
    with open(os.path.join(FIXTURES, "quiet_host.json")) as f:
        facts = json.load(f)
    facts["usage"].update(count=max_entries, max=max_entries)
    facts["settings"].update(nf_conntrack_count=max_entries, nf_conntrack_max=max_entries)
    facts["stats"]["sample"] = sample(seconds, insert=inserts, drop=drops, count=0)
    return facts


def test_demand_is_insert_plus_drop_rate_times_the_lifetime():
    got = saturated_demand(sample(5, insert=10000, drop=30000), 262144, 120, 120)
    assert got["new_per_second"] == 8000.0
    assert (got["admitted_per_second"], got["drops_per_second"]) == (2000.0, 6000.0)
    assert got["entries"] == 960000
    assert "insert 2000/s + drop 6000/s" in got["how"] and "960000 entries" in got["how"]


def test_without_an_insert_counter_a_full_table_admits_count_over_lifetime():
    # Linux 6.x prints insert as 0: 262144 entries of 120 s leave (and arrive) at 2184.5/s.
    got = saturated_demand(sample(5, insert=0, drop=6575, count=0), 262144, 120, 120)
    assert got["admitted_per_second"] == 2184.533
    assert got["new_per_second"] == 3499.533
    assert got["entries"] == 419944
    assert "count 262144 / 120 s per entry" in got["how"]


def test_a_growing_table_adds_its_growth_to_the_admitted_rate():
    got = saturated_demand(sample(10, drop=100, count=1000), 100000, 100, 100)
    # mean count 100500 / 100 s + 1000 / 10 s
    assert got["admitted_per_second"] == 1105.0


def test_the_new_lifetime_scales_the_entries():
    got = saturated_demand(sample(5, insert=10000, drop=30000), 262144, 120, 60)
    assert got["entries"] == 480000


@pytest.mark.parametrize("the_sample", [
    None, {}, {"seconds": 5}, sample(0, insert=1, drop=1), sample(5, insert=100, drop=0),
    sample(5, drop=True),
])
def test_no_figure_without_drops_or_a_window(the_sample):
    assert saturated_demand(the_sample, 262144, 120, 120) is None


@pytest.mark.parametrize("count, lifetime_now", [(None, 120), (0, 120), (True, 120), (262144, 0), (262144, None)])
def test_no_figure_without_an_insert_counter_and_a_count_with_its_lifetime(count, lifetime_now):
    assert saturated_demand(sample(5, insert=0, drop=100), count, lifetime_now, 120) is None


def test_no_figure_without_a_new_lifetime():
    assert saturated_demand(sample(5, insert=10, drop=10), 262144, 120, 0) is None


def test_a_saturated_default_table_without_insert_counts_is_sized_for_the_offered_rate():
    # What this machine's kernel shows at 3500 new/s offered: insert stays 0.
    rec = recommend(saturated_host(inserts=0, drops=6575), profile="nat_gateway", pressure_since_boot=False)
    assert rec["entries"]["sources"]["pressure"] == 419944
    assert "admitted 2184.5/s (count 262144 / 120 s per entry" in rec["reasons"]["nf_conntrack_max"]


def test_a_saturated_default_table_is_sized_for_the_offered_rate_not_for_max_plus_one():
    # 8000 new/s offered, the full table takes 2185/s (262144 / 120 s) and drops the rest.
    rec = recommend(saturated_host(inserts=10925, drops=29075), profile="nat_gateway", pressure_since_boot=False)
    entries = rec["entries"]
    assert entries["driver"] == "pressure"
    assert entries["sources"]["pressure"] == 960000
    assert entries["rates"]["saturated_demand"]["new_per_second"] == 8000.0
    assert rec["settings"]["nf_conntrack_max"] >= 1440000
    assert "insert 2185/s + drop 5815/s" in rec["reasons"]["nf_conntrack_max"]
    assert rec["verdict"]["severity"] == "critical"


def test_a_small_overload_still_gets_at_least_max_plus_one():
    rec = recommend(saturated_host(inserts=5, drops=5), pressure_since_boot=False)
    assert rec["entries"]["sources"]["pressure"] == 262145
    assert "saturated_demand" not in rec["entries"]["rates"]


def test_drops_since_boot_alone_give_no_demand_figure():
    facts = saturated_host(inserts=10925, drops=0)
    facts["stats"]["totals"]["drop"] = 5000
    rec = recommend(facts)
    assert rec["entries"]["sources"]["pressure"] == 262145
