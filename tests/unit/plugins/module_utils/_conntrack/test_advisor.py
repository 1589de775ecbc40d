"""The drop advisor on recorded trees of three kernel generations, edited per cause."""
import os
import shutil

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import advisor, gathering, reading, sizing

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
NEW = ("entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error"
       "  expect_new expect_create expect_delete search_restart")
OLD = ("entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error"
       "  expect_new expect_create expect_delete search_restart")


def stat_text(header, **values):
    names = header.split()
    row = " ".join("%08x" % values.get(n, 0) for n in names)
    return "%s\n%s\n" % (header, row)


@pytest.fixture
def host(tmp_path):
    """gather() on a copy of a recorded tree whose stat file (and settings) a test rewrites."""
    def make(name, stats=None, table=None, settings=None):
        root = tmp_path / name
        shutil.copytree(os.path.join(FIXTURES, name), str(root), symlinks=True)
        if stats is not None:
            (root / "proc/net/stat/nf_conntrack").write_text(stats)
        for key, value in (settings or {}).items():
            (root / "proc/sys/net/netfilter" / key).write_text("%s\n" % value)
        if table is not None:
            (root / "proc/net/nf_conntrack").write_text(table)
        r = reading.Reader(str(root), run_command=lambda a: (127, "", ""), which=lambda n: None)
        facts, dummy = gathering.FactsReader(r, gathering.ReadOptions(table=table is not None, kernel_log=False)).gather()
        return facts
    return make


def ids(facts):
    return dict((c["id"], c) for c in advisor.causes(facts))


UDP_LINE = ("ipv4     2 udp      17 29 src=10.0.0.%d dst=10.96.0.10 sport=%d dport=53 [UNREPLIED] src=10.244.0.5"
            " dst=10.0.0.1 sport=53 dport=%d mark=0 use=1\n")


def udp_table(n=3):
    return "".join(UDP_LINE % (i % 250, 30000 + i, 30000 + i) for i in range(n))


def test_udp_insert_race_on_4_19_is_not_mitigated(host):
    facts = host("linux-4.19", stats=stat_text(OLD, entries=1234, insert_failed=40), table=udp_table())
    cause = ids(facts)["udp_insert_race"]
    assert cause["severity"] == "warning"
    assert cause["evidence"]["kernel_mitigated"] is False and cause["evidence"]["insert_failed"] == 40
    assert "5.6" in cause["summary"] and "upgrade the kernel" in cause["remedy"]
    assert "NodeLocal DNSCache" in cause["remedy"] and "single-request-reopen" in cause["remedy"]


def test_udp_insert_race_on_5_10_is_mitigated_and_only_informs_when_clashes_resolve(host):
    facts = host("linux-5.10", stats=stat_text(NEW, clashres=9), table=udp_table())
    cause = ids(facts)["udp_insert_race"]
    assert cause["severity"] == "info" and cause["evidence"]["kernel_mitigated"] is True
    assert cause["evidence"]["clash_resolve"] == 9


def test_insert_failed_without_udp_is_no_udp_race(host):
    table = ("ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2"
             " dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1\n")
    facts = host("linux-4.19", stats=stat_text(OLD, insert_failed=4), table=table)
    assert "udp_insert_race" not in ids(facts)


def test_mitigation_text_names_the_kernel_changes():
    mitigated, text = advisor.udp_race_mitigation((5, 4))
    assert mitigated is False and "lacks" in text and "6a757c07e51f" in text
    mitigated, text = advisor.udp_race_mitigation((6, 12))
    assert mitigated is True and "lacks" not in text


def test_table_full_names_the_namespace_that_dropped(host):
    facts = host("linux-6.18", stats=stat_text(NEW, entries=7))
    facts["namespaces"] = [
        {"inode": 1, "initial": True, "owner": {"kind": "host"}, "entries": 7, "stats": {"totals": {"drop": 0}}},
        {"inode": 4026532301, "owner": {"kind": "ip-netns", "netns_name": "filler"}, "entries": 1000,
         "stats": {"totals": {"drop": 17}}},
    ]
    cause = ids(facts)["table_full"]
    assert cause["severity"] == "warning"  # drops since boot, no sample: they may predate a raised max
    assert cause["evidence"]["drop_all_namespaces"] == 17
    assert cause["namespaces"][0]["label"] == "netns filler" and "netns filler" in cause["summary"]


def test_table_full_from_the_host_counters(host):
    cause = ids(host("linux-6.18"))["table_full"]  # the recorded tree has drop=22 over two CPUs
    assert cause["evidence"]["drop"] == 22


def test_invalid_rising_suggests_be_liberal_with_its_trade_off(host):
    facts = host("linux-5.10", stats=stat_text(NEW, new=1000, invalid=50))
    cause = ids(facts)["invalid_packets"]
    assert "nf_conntrack_tcp_be_liberal=1" in cause["remedy"] and "trade-off" in cause["remedy"]
    assert cause["evidence"]["invalid_share_of_new"] == 0.05


def test_invalid_with_be_liberal_already_on_points_elsewhere(host):
    facts = host("linux-6.18", stats=stat_text(NEW, new=1000, invalid=50), settings={"nf_conntrack_tcp_be_liberal": 1})
    assert "asymmetric routing" in ids(facts)["invalid_packets"]["remedy"]


def test_chaintoolong_exists_only_from_5_15_and_points_at_buckets(host):
    facts = host("linux-6.18", stats=stat_text(NEW, chainlength=3))
    cause = ids(facts)["chains_too_deep"]
    assert cause["evidence"]["chaintoolong"] == 3 and "nf_conntrack_buckets" in cause["remedy"]
    assert "chains_too_deep" not in ids(host("linux-5.10", stats=stat_text(NEW)))


def test_search_restart_high_against_lookups(host):
    facts = host("linux-6.18", stats=stat_text(NEW, found=1000, search_restart=500))
    assert ids(facts)["search_restart"]["evidence"]["search_restart"] == 500


def test_notrack_is_only_a_suggestion_for_natless_udp(host):
    facts = host("linux-6.18", stats=stat_text(NEW), table=udp_table(12000))
    facts["environment"]["nat_rules_present"] = False
    cause = ids(facts)["notrack_candidate"]
    assert cause["severity"] == "info" and "notrack" in cause["remedy"] and "nothing applies it" in cause["remedy"]
    facts["environment"]["nat_rules_present"] = True
    assert "notrack_candidate" not in ids(facts)


def test_ebpf_datapath_and_ena_allowance_say_the_table_is_not_the_limit(host):
    facts = host("linux-6.18", stats=stat_text(NEW))
    facts["environment"]["datapath"] = {"ebpf": "cilium", "ebpf_evidence": "pinned map x", "ena_note": None,
                                        "ena": [{"interface": "eth0", "conntrack_allowance_exceeded": 12,
                                                 "conntrack_allowance_available": 0}]}
    found = ids(facts)
    assert "does not fix" in found["ebpf_datapath"]["summary"]
    assert found["ena_conntrack_allowance"]["severity"] == "critical"
    assert "not in nf_conntrack" in found["ena_conntrack_allowance"]["summary"]


def test_a_quiet_host_has_no_causes(host):
    assert advisor.causes(host("linux-5.10", stats=stat_text(NEW))) == []


def test_recommend_verdict_carries_the_causes(host):
    facts = host("linux-4.19", stats=stat_text(OLD, entries=1234, insert_failed=40), table=udp_table())
    verdict = sizing.recommend(facts)["verdict"]
    assert [c["id"] for c in verdict["causes"]] == [c["id"] for c in advisor.causes(facts)]
    assert sizing.recommend(None, peak_entries=1000)["verdict"]["causes"] == []


def test_the_module_namespace_is_not_counted_twice_and_logged_netns_get_labels(host):
    facts = host("linux-6.18")  # drop=22 in the module's own namespace
    facts["kernel_log"] = {"table_full_count": 3, "netns": [4026532301]}
    facts["namespaces"] = [
        {"inode": 4026531840, "current": True,
         "owner": {"kind": "container", "container_name": "me", "runtime": "podman"},
         "stats": {"totals": {"drop": 22}}},
        {"inode": 4026532301, "owner": {"kind": "pod", "pod_name": "web-0", "pod_namespace": "shop"},
         "stats": {"totals": {"drop": 8}}},
    ]
    ev = ids(facts)["table_full"]["evidence"]
    assert ev["drop_all_namespaces"] == 30
    assert ev["table_full_netns_labels"] == ["pod shop/web-0"]
