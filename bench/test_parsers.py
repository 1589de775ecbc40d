"""The bench's readers of tool output: a tool that did not run, or measured nothing, is an
error with its reason, never a figure of 0 (pure: no root, no lab)."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
import b5_sustained  # noqa: E402  pylint: disable=wrong-import-position
import common  # noqa: E402  pylint: disable=wrong-import-position
from lab import parse_ab  # noqa: E402  pylint: disable=wrong-import-position

WRK_OK = """Running 3s test @ http://10.200.1.254:8080/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.00ms  20.00ms   90.00%
    Req/Sec     4.10k   300.00     4.50k    70.00%
  12300 requests in 3.00s, 1.70MB read
  Socket errors: connect 0, read 0, write 0, timeout 2
Requests/sec:   4100.00
Transfer/sec:    580.00KB
"""
WRK_NEVER_CONNECTED = """Running 3s test @ http://10.200.1.254:8080/
  1 threads and 16 connections
  0 requests in 3.00s, 0.00B read
  Socket errors: connect 16, read 0, write 0, timeout 0
Requests/sec:      0.00
Transfer/sec:       0.00B
"""
# What `ip netns exec NS wrk` prints where nothing installed wrk.
WRK_MISSING = 'exec of "wrk" failed: No such file or directory\n'


def test_wrk_figures_are_read_from_its_report():
    assert b5_sustained.parse_wrk(WRK_OK, 0) == {"requests_per_second": 4100.0, "requests": 12300, "socket_errors": 2}


@pytest.mark.parametrize("text, code, reason", [
    (WRK_MISSING, 255, "wrk exited 255: exec of \"wrk\" failed"),
    ("", 0, "wrk printed no Requests/sec: no output"),
    (WRK_NEVER_CONNECTED, 0, "wrk completed no request (socket errors: Socket errors: connect 16"),
])
def test_wrk_that_measured_nothing_is_an_error_with_its_reason(text, code, reason):
    with pytest.raises(common.MeasurementError, match=reason.replace("(", r"\(")):
        b5_sustained.parse_wrk(text, code)


class _Client(object):
    """A lab client whose wrk is a shell printing what a machine without wrk prints."""

    name = "nclabc0"

    def popen(self, cmd, **kwargs):
        return subprocess.Popen(["sh", "-c", "printf '%s'; exit 255" % WRK_MISSING.strip()], **kwargs)


class _Lab(object):
    clients = [_Client(), _Client()]
    nat_url = "http://10.200.1.254:8080/"

    def flush_table(self):
        pass

    def gateway_stats(self):
        return {"drop": 0}


def test_rounds_without_wrk_carry_the_reason_and_judge_no_goal(monkeypatch):
    monkeypatch.setattr(b5_sustained, "_set_globals", lambda values: None)
    result = {"rounds": b5_sustained._paired_rounds(_Lab(), {"rounds": 11, "round_seconds": 1, "wrk_connections": 4},
                                                    {"nf_conntrack_max": 1})}
    goal = b5_sustained._rounds_summary(result)
    assert goal is None and result["tuned_over_ceiling"] is None
    assert len(result["rounds"]) == 1, "a tool that failed once is not run ten more times"
    assert 'tuned round 1 not measured: nclabc0: wrk exited 255: exec of "wrk" failed' in result["errors"][0]


def test_ab_that_did_not_run_is_an_error_and_an_abort_under_load_is_a_result():
    with pytest.raises(common.MeasurementError, match='ab exited 255 without figures: exec of "ab" failed'):
        parse_ab("", 'exec of "ab" failed: No such file or directory\n', 255, 0.1, 3000, 500)
    aborted = parse_ab("Total of 1200 requests completed\n", "apr_pollset_poll: The timeout specified has expired",
                       1, 4.0, 3000, 500)
    assert aborted["aborted"] and aborted["complete_requests"] == 1200 and aborted["requests_per_second"] == 300.0


def test_goal_is_judged_on_the_median_of_enough_rounds_with_its_spread():
    ratios = [0.87, 1.21, 0.99, 1.0, 0.98, 1.02, 0.97, 1.01, 0.95, 1.03, 0.96]
    spread = common.spread(ratios)
    assert spread["median"] == 0.99 and spread["rounds"] == 11
    assert spread["q1"] == 0.965 and spread["q3"] == 1.015
    assert common.judged(spread, 0.97) is True
    # One pair swings 0.87-1.21: fewer than GOAL_ROUNDS pairs judge nothing.
    assert common.judged(common.spread(ratios[:5]), 0.97) is None
