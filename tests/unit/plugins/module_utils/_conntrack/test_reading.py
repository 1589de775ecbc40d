"""The facts gathering against recorded trees from several kernel generations."""
import os
import shutil

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, kernel, reading

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))


def tree(name):
    return os.path.join(FIXTURES, name)


@pytest.fixture
def copy_tree(tmp_path):
    """A writable copy of a recorded tree, for edge cases built from it."""
    def make(name):
        dest = tmp_path / name
        shutil.copytree(tree(name), str(dest), symlinks=True)
        return dest
    return make


def fake_runner(outputs):
    """A run_command that answers from a dict {argv[0]: (rc, out, err)} and records calls."""
    calls = []

    def run(argv):
        argv = [os.path.basename(argv[0])] + list(argv[1:])  # reading passes the resolved path
        calls.append(argv)
        return outputs.get(argv[0], (127, "", "not found"))
    run.calls = calls
    return run


def which_for(outputs):
    return lambda name: "/usr/sbin/" + name if name in outputs else None


def gather(root, run_command=None, which=None, popen=None, sleep=None, **options):
    """The facts of a recorded tree: the seams go to the Reader, the rest are ReadOptions."""
    clock = reading.Clock(reading.SYSTEM_CLOCK.monotonic, sleep or reading.SYSTEM_CLOCK.sleep)
    r = reading.Reader(str(root), run_command=run_command or fake_runner({}), which=which or (lambda name: None),
                       popen=popen, clock=clock)
    return gathering.FactsReader(r, gathering.ReadOptions(**options)).gather()


# ------------------------------------------------------------------ 6.18 tree

def test_new_kernel_stats_keep_header_names_and_add_conntrack_tools_names():
    facts, warnings = gather(tree("linux-6.18"))
    stats = facts["stats"]
    assert stats["source"] == "proc" and stats["cpus"] == 2
    assert stats["columns"][:3] == ["entries", "clashres", "found"]
    totals = stats["totals"]
    assert totals["found"] == 0x1a + 0x20
    assert totals["drop"] == 0x10 + 0x06
    assert totals["early_drop"] == 7
    assert totals["insert_failed"] == 5
    assert totals["clashres"] == totals["clash_resolve"] == 4
    assert totals["chainlength"] == totals["chaintoolong"] == 1
    assert totals["search_restart"] == 1


def test_entries_column_is_the_namespace_count_not_a_per_cpu_sum():
    facts, _w = gather(tree("linux-6.18"))
    assert facts["stats"]["totals"]["entries"] == 7  # two CPUs print 7 each


def test_new_kernel_availability_settings_and_usage():
    facts, warnings = gather(tree("linux-6.18"))
    assert facts["available"] is True and facts["active"] is True
    assert facts["module"] == "builtin"
    assert facts["kernel_release"] == "6.18.44-fc-v445"
    assert facts["settings"]["nf_conntrack_max"] == 262144
    assert facts["settings"]["nf_conntrack_tcp_timeout_time_wait"] == 120
    assert all(k.startswith("nf_conntrack_") for k in facts["settings"])
    assert facts["module_parameters"] == {"hashsize": 262144, "expect_hashsize": 1024, "acct": False, "tstamp": False}
    usage = facts["usage"]
    assert usage["count"] == 7 and usage["max"] == 262144 and usage["buckets"] == 262144
    assert usage["usage_ratio"] == pytest.approx(7 / 262144)
    assert usage["chain_depth_avg"] == pytest.approx(7 / 262144)
    assert usage["chain_depth_at_max"] == 1.0
    assert warnings == []


def test_sysfs_slab_gives_memory_per_entry():
    facts, _w = gather(tree("linux-6.18"))
    mem = facts["memory"]
    assert mem["source"] == "sysfs"
    assert (mem["object_size_bytes"], mem["slab_size_bytes"]) == (248, 256)
    assert (mem["active_objects"], mem["total_objects"]) == (80, 144)
    assert mem["slab_bytes_in_use"] == 144 * 256
    assert mem["hash_table_bytes"] == 262144 * mem["bucket_size_bytes"]
    assert mem["cpu_count"] == 2
    assert mem["mem_total_bytes"] > 0


def test_table_full_in_netns_is_counted_with_its_time_and_namespace():
    facts, _w = gather(tree("linux-6.18"))
    log = facts["kernel_log"]
    assert log["readable"] is True and log["source"] == "kmsg"
    assert log["table_full_count"] == 3
    assert log["netns"] == [4026532246]
    assert log["last_seen_seconds_since_boot"] == pytest.approx(770.964869)
    assert log["last_seen"] == "2026-11-21T05:49:21+00:00"  # btime 1795239391 + 770 s


def test_table_walk_is_opt_in():
    facts, _w = gather(tree("linux-6.18"))
    assert facts["table"] is None
    facts, _w = gather(tree("linux-6.18"), table=True, top_sources=1)
    assert facts["table"]["entries_read"] == 7
    assert facts["table"]["top_sources"] == [{"address": "127.0.0.1", "count": 4}]


# ------------------------------------------------------------------ 4.19 tree

def test_old_kernel_header_without_clash_resolve_or_chaintoolong_still_sums():
    facts, _w = gather(tree("linux-4.19"))
    totals = facts["stats"]["totals"]
    assert "searched" in totals and "delete_list" in totals
    assert "clash_resolve" not in totals and "chaintoolong" not in totals
    assert facts["stats"]["cpus"] == 4
    assert totals["found"] == 0x12d687 + 0x112a88 + 0xf4240 + 0xdbba0
    assert totals["drop"] == 8 and totals["insert_failed"] == 2
    assert totals["icmp_error"] == totals["error"] == 4
    assert totals["entries"] == 1234


def test_loadable_module_is_told_from_initstate_and_proc_modules():
    facts, _w = gather(tree("linux-4.19"))
    assert facts["module"] == "loadable"


def test_slabinfo_is_the_fallback_for_memory():
    facts, _w = gather(tree("linux-4.19"))
    mem = facts["memory"]
    assert mem["source"] == "slabinfo"
    assert mem["slab_size_bytes"] == 320 and mem["object_size_bytes"] is None
    assert mem["slab_bytes_in_use"] == 1488 * 320
    assert mem["cpu_count"] == 4  # from /proc/cpuinfo when cpu/online is missing
    assert mem["mem_total_bytes"] == 8167548 * 1024


def test_plain_table_full_messages_are_counted():
    facts, _w = gather(tree("linux-4.19"))
    log = facts["kernel_log"]
    assert log["table_full_count"] == 3
    assert log["netns"] == []
    assert log["last_seen_seconds_since_boot"] == 6000.0


def test_sysctl_precedence_follows_sysctl_system():
    facts, _w = gather(tree("linux-4.19"))
    persistent = facts["environment"]["persistent"]
    assert persistent["sysctl_files"] == [
        "/etc/sysctl.d/50-conntrack.conf",      # masks /usr/lib/sysctl.d/50-conntrack.conf
        "/run/sysctl.d/60-timeouts.conf",
        "/usr/lib/sysctl.d/70-legacy.conf",
        "/etc/sysctl.d/99-sysctl.conf",
        "/etc/sysctl.conf",                     # last
    ]
    sysctl = persistent["sysctl"]
    assert sysctl["nf_conntrack_max"] == {"value": 262144, "file": "/etc/sysctl.conf"}
    # slash form and the "-" (ignore errors) prefix are understood
    assert sysctl["nf_conntrack_tcp_timeout_time_wait"] == {"value": 30, "file": "/run/sysctl.d/60-timeouts.conf"}
    assert sysctl["nf_conntrack_udp_timeout"] == {"value": 60, "file": "/usr/lib/sysctl.d/70-legacy.conf"}


def test_legacy_net_nf_conntrack_max_alias_counts_as_nf_conntrack_max(copy_tree):
    root = copy_tree("linux-4.19")
    os.remove(str(root / "etc" / "sysctl.conf"))
    facts, _w = gather(root)
    assert facts["environment"]["persistent"]["sysctl"]["nf_conntrack_max"] == {
        "value": 1048576, "file": "/usr/lib/sysctl.d/70-legacy.conf"}
    assert facts["environment"]["drift"]["nf_conntrack_max"] == {
        "runtime": 262144, "persisted": 1048576, "file": "/usr/lib/sysctl.d/70-legacy.conf"}


def test_drift_lists_keys_whose_persisted_value_differs():
    facts, _w = gather(tree("linux-4.19"))
    drift = facts["environment"]["drift"]
    assert "nf_conntrack_max" not in drift  # /etc/sysctl.conf matches the runtime value
    assert drift["nf_conntrack_tcp_timeout_time_wait"] == {
        "runtime": 120, "persisted": 30, "file": "/run/sysctl.d/60-timeouts.conf"}
    assert drift["nf_conntrack_udp_timeout"]["persisted"] == 60
    # loadable module: modprobe.d hashsize 131072 vs 65536 buckets now
    assert drift["nf_conntrack_buckets"] == {"runtime": 65536, "persisted": 131072,
                                             "file": "/etc/modprobe.d/nf_conntrack.conf"}


def test_buckets_drift_compares_after_the_kernels_rounding(copy_tree):
    root = copy_tree("linux-6.18")
    (root / "etc" / "sysctl.d" / "90-ct.conf").write_text("net.netfilter.nf_conntrack_buckets = 261700\n")
    facts, _w = gather(root)
    assert "nf_conntrack_buckets" not in facts["environment"]["drift"]  # 261700 rounds up to 262144
    (root / "etc" / "sysctl.d" / "90-ct.conf").write_text("net.netfilter.nf_conntrack_buckets = 100000\n")
    facts, _w = gather(root)
    assert facts["environment"]["drift"]["nf_conntrack_buckets"]["persisted"] == 100000


def test_modprobe_and_modules_load_are_read():
    facts, _w = gather(tree("linux-4.19"))
    persistent = facts["environment"]["persistent"]
    assert persistent["modprobe"] == {
        "hashsize": {"value": 131072, "file": "/etc/modprobe.d/nf_conntrack.conf"},
        "expect_hashsize": {"value": 2048, "file": "/etc/modprobe.d/nf_conntrack.conf"}}
    assert persistent["modules_load"] == ["/etc/modules-load.d/conntrack.conf"]


def test_kernel_command_line_hashsize_wins_and_counts_for_builtin(copy_tree):
    root = copy_tree("linux-6.18")
    (root / "proc" / "cmdline").write_text("quiet nf_conntrack.hashsize=524288\n")
    facts, _w = gather(root)
    env = facts["environment"]
    assert env["persistent"]["modprobe"]["hashsize"] == {"value": 524288, "file": "/proc/cmdline"}
    assert env["drift"]["nf_conntrack_buckets"]["persisted"] == 524288


def test_table_with_offloaded_entry_and_gre():
    facts, _w = gather(tree("linux-4.19"), table=True)
    t = facts["table"]
    assert t["without_timeout"] == 1 and t["by_protocol"]["gre"] == 1
    assert t["by_family"] == {"ipv4": 7, "ipv6": 2}


def test_ip_forward_is_read():
    facts, _w = gather(tree("linux-4.19"))
    assert facts["environment"]["ip_forward"] is True


# ------------------------------------------------------------------ 5.10 tree: edge cases

def test_max_zero_means_unlimited_and_ratio_is_null():
    facts, _w = gather(tree("linux-5.10"))
    usage = facts["usage"]
    assert usage["max"] == 0
    assert usage["usage_ratio"] is None and usage["usage_percent"] is None
    assert usage["chain_depth_at_max"] is None
    assert usage["chain_depth_avg"] == 0.0


def test_clash_resolve_without_chaintoolong_header():
    facts, _w = gather(tree("linux-5.10"))
    totals = facts["stats"]["totals"]
    assert totals["clash_resolve"] == 2 and "chaintoolong" not in totals


def test_empty_table_walk():
    facts, _w = gather(tree("linux-5.10"), table=True)
    assert facts["table"]["entries_read"] == 0 and facts["table"]["truncated"] is False


def test_missing_slab_gives_null_memory_and_a_warning():
    facts, warnings = gather(tree("linux-5.10"))
    mem = facts["memory"]
    assert mem["source"] == "none" and mem["slab_size_bytes"] is None and mem["slab_bytes_in_use"] is None
    assert mem["hash_table_bytes"] == 16384 * mem["bucket_size_bytes"]
    assert any("slab" in w for w in warnings)


def test_unreadable_kernel_log_is_a_warning_not_a_failure():
    facts, warnings = gather(tree("linux-5.10"))
    assert facts["kernel_log"]["readable"] is False
    assert facts["kernel_log"]["table_full_count"] is None
    assert any("kernel log" in w for w in warnings)


# ------------------------------------------------------------------ no conntrack

def test_no_conntrack_is_available_false_without_failure():
    facts, warnings = gather(tree("no-conntrack"))
    assert facts["available"] is False and facts["active"] is False
    assert facts["module"] == "loadable"  # in modules.dep, not loaded
    assert facts["settings"] == {} and facts["usage"] is None and facts["stats"] is None
    assert facts["host_settable"] is False
    assert facts["schema_version"] == 1


def test_no_conntrack_and_no_module_file_is_absent(copy_tree):
    root = copy_tree("no-conntrack")
    shutil.rmtree(str(root / "lib"))
    facts, _w = gather(root)
    assert facts["module"] == "absent"


# ------------------------------------------------------------------ unreadable files

def _make_unreadable(path):
    # Tests run as root, so a mode cannot stop a read; a directory in the file's place can.
    os.remove(str(path))
    os.mkdir(str(path))


def test_unreadable_files_give_partial_facts_and_warnings(copy_tree):
    root = copy_tree("linux-6.18")
    _make_unreadable(root / "proc" / "net" / "stat" / "nf_conntrack")
    _make_unreadable(root / "proc" / "sys" / "net" / "netfilter" / "nf_conntrack_tcp_timeout_close")
    _make_unreadable(root / "sys" / "kernel" / "slab" / "nf_conntrack" / "slab_size")
    _make_unreadable(root / "dev" / "kmsg")
    facts, warnings = gather(root, table=True)
    assert facts["available"] is True
    assert facts["settings"]["nf_conntrack_max"] == 262144
    assert "nf_conntrack_tcp_timeout_close" not in facts["settings"]
    assert facts["stats"]["source"] == "none" and facts["stats"]["totals"] == {}
    assert facts["memory"]["source"] == "none"
    assert facts["kernel_log"]["readable"] is False
    assert facts["table"]["entries_read"] == 7
    joined = "\n".join(warnings)
    for name in ("/proc/net/stat/nf_conntrack", "nf_conntrack_tcp_timeout_close", "slab_size", "kernel log"):
        assert name in joined


def test_garbled_stat_file_warns_and_falls_back_to_conntrack_s(copy_tree):
    root = copy_tree("linux-6.18")
    (root / "proc" / "net" / "stat" / "nf_conntrack").write_text("entries found\n0000000g\n")
    with open(os.path.join(tree("linux-6.18"), "conntrack-S.txt")) as f:
        outputs = {"conntrack": (0, f.read(), "")}
    facts, warnings = gather(root, run_command=fake_runner(outputs), which=which_for(outputs))
    assert facts["stats"]["source"] == "conntrack"
    assert facts["stats"]["cpus"] == 2
    assert facts["stats"]["columns"][:3] == ["found", "invalid", "insert"]
    assert facts["stats"]["totals"]["chaintoolong"] == 0
    assert any("cannot parse" in w for w in warnings)


def test_stats_fall_back_to_conntrack_s_when_proc_file_is_missing(copy_tree):
    root = copy_tree("linux-5.10")
    os.remove(str(root / "proc" / "net" / "stat" / "nf_conntrack"))
    outputs = {"conntrack": (0, "cpu=0   \tfound=3 invalid=1 insert=0 insert_failed=2 drop=5 early_drop=0 error=0 "
                                "search_restart=0 clash_resolve=0 chaintoolong=1 \n"
                                "cpu=1   \tfound=4 invalid=0 insert=0 insert_failed=0 drop=1 early_drop=0 error=0 "
                                "search_restart=0 clash_resolve=0 chaintoolong=0 \n", "")}
    run = fake_runner(outputs)
    facts, _w = gather(root, run_command=run, which=which_for(outputs))
    assert ["conntrack", "-S"] in run.calls
    assert facts["stats"]["totals"] == {"found": 7, "invalid": 1, "insert": 0, "insert_failed": 2, "drop": 6,
                                        "early_drop": 0, "error": 0, "search_restart": 0, "clash_resolve": 0,
                                        "chaintoolong": 1}


def test_summary_mode_runs_no_conntrack_command_when_proc_exists():
    outputs = {"conntrack": (0, "", ""), "nft": (0, "", "")}
    run = fake_runner(outputs)
    gather(tree("linux-6.18"), run_command=run, which=which_for(outputs))
    assert all(argv[0] != "conntrack" for argv in run.calls)


# ------------------------------------------------------------------ sampling

def test_sample_gives_rates_and_handles_32_bit_wrap(copy_tree):
    root = copy_tree("linux-6.18")
    stat_path = root / "proc" / "net" / "stat" / "nf_conntrack"
    header = stat_path.read_text().splitlines()[0]
    zero = " ".join(["00000000"] * 17)

    def row(drop, chain, entries="00000007"):
        cols = zero.split()
        cols[0], cols[7], cols[10] = entries, chain, drop
        return " ".join(cols)
    stat_path.write_text("\n".join([header, row("fffffffe", "00000000"), row("00000010", "00000000")]) + "\n")

    def tick(seconds):
        assert seconds == 2
        stat_path.write_text("\n".join([header, row("00000002", "00000004"), row("00000014", "00000000")]) + "\n")
        (root / "proc" / "sys" / "net" / "netfilter" / "nf_conntrack_count").write_text("27\n")
    facts, _w = gather(root, sample_seconds=2, sleep=tick)
    sample = facts["stats"]["sample"]
    assert sample["seconds"] == 2
    assert sample["deltas"]["drop"] == 4 + 4  # cpu0 wrapped from 0xfffffffe to 2
    assert sample["deltas"]["count"] == 20
    assert sample["rates_per_second"] == {"count": 10.0, "drop": 4.0, "insert_failed": 0.0,
                                          "early_drop": 0.0, "chaintoolong": 2.0}


def test_sample_on_old_kernel_has_null_chaintoolong_rate(copy_tree):
    root = copy_tree("linux-4.19")
    facts, _w = gather(root, sample_seconds=1, sleep=lambda s: None)
    rates = facts["stats"]["sample"]["rates_per_second"]
    assert rates["chaintoolong"] is None and rates["drop"] == 0.0


# ------------------------------------------------------------------ namespace

def _ns_links(root, own, init):
    ns = root / "proc" / "self" / "ns"
    ns.mkdir(parents=True)
    os.symlink("net:[%d]" % own, str(ns / "net"))
    ns1 = root / "proc" / "1" / "ns"
    ns1.mkdir(parents=True)
    os.symlink("net:[%d]" % init, str(ns1 / "net"))


def test_initial_namespace_by_inode(copy_tree):
    root = copy_tree("linux-6.18")
    _ns_links(root, 4026531833, 4026531833)
    facts, _w = gather(root)
    assert facts["initial_netns"] is True and facts["host_settable"] is True


def test_read_only_global_keys_mean_a_non_initial_namespace(copy_tree):
    root = copy_tree("linux-6.18")
    _ns_links(root, 4026532177, 4026532177)  # a container whose pid 1 shares its netns
    for key in kernel.GLOBAL_KEYS:
        os.chmod(str(root / "proc" / "sys" / "net" / "netfilter" / key), 0o444)
    facts, _w = gather(root)
    assert facts["initial_netns"] is False and facts["host_settable"] is False


def test_namespace_unknown_without_ns_links():
    facts, _w = gather(tree("linux-4.19"))
    assert facts["initial_netns"] is None


# ------------------------------------------------------------------ environment commands

def test_nat_rules_from_nftables():
    outputs = {"nft": (0, "table ip nat {\n chain postrouting {\n  type nat hook postrouting priority srcnat; policy accept;\n"
                          "  oifname \"eth0\" masquerade\n }\n}\n", "")}
    facts, _w = gather(tree("linux-6.18"), run_command=fake_runner(outputs), which=which_for(outputs))
    assert facts["environment"]["nat_rules_present"] is True
    assert facts["environment"]["nat_rules_source"] == "nftables"


def test_legacy_iptables_nat_is_only_asked_when_the_kernel_has_the_table(copy_tree):
    outputs = {"nft": (0, "table inet filter {\n}\n", ""),
               "iptables-save": (0, "*nat\n:PREROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n", "")}
    run = fake_runner(outputs)
    facts, _w = gather(tree("linux-6.18"), run_command=run, which=which_for(outputs))
    assert facts["environment"]["nat_rules_present"] is False
    assert all(argv[0] != "iptables-save" for argv in run.calls)  # it would load iptable_nat
    root = copy_tree("linux-6.18")
    (root / "proc" / "net" / "ip_tables_names").write_text("filter\nnat\n")
    facts, _w = gather(root, run_command=run, which=which_for(outputs))
    assert facts["environment"]["nat_rules_present"] is True
    assert facts["environment"]["nat_rules_source"] == "iptables"


def test_nft_failure_is_a_warning_and_nat_unknown():
    outputs = {"nft": (1, "", "Operation not permitted")}
    facts, warnings = gather(tree("linux-6.18"), run_command=fake_runner(outputs), which=which_for(outputs))
    assert facts["environment"]["nat_rules_present"] is None
    assert any("Operation not permitted" in w for w in warnings)


def test_kube_proxy_is_found_by_comm(copy_tree):
    root = copy_tree("linux-6.18")
    (root / "proc" / "4242").mkdir()
    (root / "proc" / "4242" / "comm").write_text("kube-proxy\n")
    facts, _w = gather(root)
    assert facts["environment"]["kube_proxy_running"] is True


def test_kube_proxy_absent():
    facts, _w = gather(tree("linux-6.18"))
    assert facts["environment"]["kube_proxy_running"] is False


def test_dmesg_is_the_fallback_when_kmsg_is_missing(copy_tree):
    root = copy_tree("linux-4.19")
    os.remove(str(root / "dev" / "kmsg"))
    outputs = {"dmesg": (0, "[ 5000.000000] nf_conntrack: table full, dropping packet\n"
                            "[ 7000.250000] nf_conntrack: nf_conntrack: table full in netns 4026532300, dropping packet\n", "")}
    facts, _w = gather(root, run_command=fake_runner(outputs), which=which_for(outputs))
    log = facts["kernel_log"]
    assert log["source"] == "dmesg" and log["table_full_count"] == 2
    assert log["netns"] == [4026532300] and log["last_seen_seconds_since_boot"] == 7000.25


def test_journal_is_the_last_resort(copy_tree):
    root = copy_tree("linux-4.19")
    os.remove(str(root / "dev" / "kmsg"))
    outputs = {"dmesg": (1, "", "dmesg: read kernel buffer failed: Operation not permitted"),
               "journalctl": (0, "[  812.100000] host kernel: nf_conntrack: table full, dropping packet\n", "")}
    facts, warnings = gather(root, run_command=fake_runner(outputs), which=which_for(outputs))
    assert facts["kernel_log"]["source"] == "journal" and facts["kernel_log"]["table_full_count"] == 1
    assert not any("kernel log" in w for w in warnings)


def test_gather_switches_skip_sections():
    facts, _w = gather(tree("linux-6.18"), kernel_log=False, environment=False)
    assert facts["kernel_log"] is None and facts["environment"] is None


def test_an_empty_nat_chain_is_not_a_nat_rule():
    chains = "table ip nat {\n\tchain POSTROUTING {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n"

    def run(argv):
        assert argv[0] == "/usr/sbin/nft"
        run.calls.append([os.path.basename(argv[0])] + list(argv[1:]))
        return 0, chains, ""
    run.calls = []
    facts, _w = gather(tree("linux-6.18"), run_command=run, which=which_for({"nft": 1}))
    assert facts["environment"]["nat_rules_present"] is False
    assert ["nft", "list", "table", "ip", "nat"] in run.calls  # only the nat table is listed in full
    assert ["nft", "list", "ruleset"] not in run.calls


def test_kube_proxy_run_by_hyperkube_is_found(copy_tree):
    root = copy_tree("linux-6.18")
    (root / "proc" / "77").mkdir()
    (root / "proc" / "77" / "comm").write_text("hyperkube\n")
    (root / "proc" / "77" / "cmdline").write_bytes(b"/hyperkube\0proxy\0--v=2\0")
    facts, _w = gather(root)
    assert facts["environment"]["kube_proxy_running"] is True


def test_tuning_record_is_reported_under_environment(copy_tree):
    root = copy_tree("linux-4.19")
    facts, _w = gather(root)
    assert facts["environment"]["tuning_record"] is None
    record = root / "etc/ansible/facts.d/netfilter_conntrack.fact"
    record.parent.mkdir(parents=True)
    record.write_text('{"schema_version": 1, "original": {"nf_conntrack_max": 262144}, '
                      '"applied": {"nf_conntrack_max": 524288}}\n')
    facts, _w = gather(root)
    assert facts["environment"]["tuning_record"]["original"] == {"nf_conntrack_max": 262144}
    assert facts["environment"]["tuning_record_error"] is None
    record.write_text("[1]")
    facts, warnings = gather(root)
    assert facts["environment"]["tuning_record"] is None
    assert "cannot be used: it holds JSON but not an object" in facts["environment"]["tuning_record_error"]
    assert any("mv /etc/ansible/facts.d/netfilter_conntrack.fact" in w for w in warnings)
