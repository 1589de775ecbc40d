"""netfilter.conntrack.recommend reading live namespaces: the verdict and the observed rate.

conntrack-tools is the oracle for the TIME_WAIT count the observed rate comes from.
"""
from support import traffic
from support.ansible import run_module
from support.kernel import Netns, read_int, write_value


def recommend_in(ns, **args):
    args.setdefault("table", True)
    result = run_module("recommend", args, netns=ns)
    assert "recommendation" in result, result.get("msg") or result["_stdout"]
    assert result["changed"] is False
    return result["recommendation"]


def oracle_time_wait(ns):
    return sum(1 for line in ns.conntrack("-L", "-p", "tcp").stdout.splitlines()
               if len(line.split()) > 3 and line.split()[3] == "TIME_WAIT")


def test_a_full_table_is_judged_undersized_and_critical(global_sysctls):
    with Netns(ruleset=traffic.UDP_FILL_RULESET) as ns:
        write_value("nf_conntrack_max", 16)
        traffic.udp_fill(ns, 200, udp_timeout=60)
        rec = recommend_in(ns, pressure_since_boot=False)
        write_value("nf_conntrack_max", global_sysctls["nf_conntrack_max"])
    verdict = rec["verdict"]
    assert (verdict["status"], verdict["severity"]) == ("undersized", "critical"), verdict
    assert any("% full" in reason for reason in verdict["reasons"])
    assert rec["comparison"]["nf_conntrack_max"]["current"] == 16
    assert rec["settings"]["nf_conntrack_max"] > 16
    # inside a namespace the global keys cannot be written: the module says where to apply them
    assert any("read-only here" in w for w in rec["warnings"])
    assert read_int("nf_conntrack_max") == int(global_sysctls["nf_conntrack_max"])


def test_time_wait_entries_give_the_observed_close_rate(netns):
    with traffic.tcp_connections(netns, 300):
        pass  # closing them leaves their entries in TIME_WAIT for 120 s
    time_wait = oracle_time_wait(netns)
    assert time_wait >= 250
    rec = recommend_in(netns, timeouts={"tcp_timeout_time_wait": 60})
    assert rec["entries"]["rates"]["tcp_closes_per_second"] == round(time_wait / 120.0, 3)
    # the same closes at a 60 s time_wait leave half as many TIME_WAIT entries
    count = rec["entries"]["sources"]["current_count"]
    assert rec["entries"]["sources"]["observed_rate"] == count - time_wait + -(-time_wait * 60 // 120)
    assert rec["settings"]["nf_conntrack_tcp_timeout_time_wait"] == 60


def test_a_budget_that_would_starve_the_host_is_refused_without_force(netns):
    # 1MiB for 1GiB: on any host with over 64 MiB of RAM that caps max far below the kernel's own default.
    mem_total = int(open("/proc/meminfo").readline().split()[1]) * 1024
    before = read_int("nf_conntrack_max")
    refused = run_module("recommend", {"memory_budget": "1MiB", "table": False}, netns=netns)
    # ansible 2.19's tree output drops "failed"; the adhoc output still says so
    assert refused.get("failed") is True or "Task failed" in refused["_stdout"], refused
    assert "recommendation" not in refused
    assert refused["msg"].startswith("refusing a table this small: the memory budget of 1.0 MiB caps nf_conntrack_max")
    assert "the kernel's own default of" in refused["msg"] and "pass force=true" in refused["msg"]
    assert "Traceback" not in refused["_stdout"] + refused["_stderr"]
    forced = recommend_in(netns, memory_budget="1MiB", table=False, force=True)
    assert forced["memory"]["capped"] is True
    assert forced["settings"]["nf_conntrack_max"] < forced["entries"]["floor"] / 2
    assert "%d entries x" % forced["settings"]["nf_conntrack_max"] in refused["msg"]
    assert mem_total > 64 << 20 and read_int("nf_conntrack_max") == before
