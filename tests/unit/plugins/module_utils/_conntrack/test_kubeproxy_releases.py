"""kube-proxy's own test tables, release by release, against the planner's release table.

Each case below keeps the inputs and the expected value of kube-proxy's Go tests
(TestGetConntrackMax, TestGetConntrackMax_Capped and TestSetupConntrack); the tables read the
CPU count of the machine running them, so every case runs at each CPU count in CPUS. A release
whose own tests lack a case (the setup table arrived after 1.21) is held to the same case: its
start-up code takes the same path for those inputs."""
import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy

RELEASES = list(kubeproxy.RELEASES)
# 15 and 16 straddle the cap for maxPerCore 67890; 512 is the count of the cap's own test.
CPUS = (1, 2, 4, 8, 15, 16, 32, 64, 96, 512)
CAP = 1048576


def _expected_scaled(version, ncores):
    # 1.21 to 1.35 expect 67890 * ncores; 1.36 and newer expect min(67890 * ncores, 1048576).
    return min(67890 * ncores, CAP) if version >= (1, 36) else 67890 * ncores


# TestGetConntrackMax: (min, maxPerCore, expected at ncores for a release).
GET_MAX = (
    (0, 0, lambda v, n: 0),
    (1, 67890, _expected_scaled),          # scaled wins over a tiny min
    (123456, 1, lambda v, n: 123456),      # min wins over a tiny scaled value
    (123456, 0, lambda v, n: 0),           # maxPerCore 0 leaves the system setting
)


@pytest.mark.parametrize("version", RELEASES, ids=lambda v: "%d.%d" % v)
@pytest.mark.parametrize("ncores", CPUS)
@pytest.mark.parametrize("floor, per_core, expected", GET_MAX, ids=["empty", "scaled", "min", "leave"])
def test_max_matches_kube_proxys_get_conntrack_max_table(version, ncores, floor, per_core, expected):
    config = {"min": floor, "maxPerCore": per_core}
    assert kubeproxy.conntrack_max(config, ncores, version) == expected(version, ncores)


@pytest.mark.parametrize("version", [v for v in RELEASES if v >= (1, 36)], ids=lambda v: "%d.%d" % v)
def test_scaled_max_is_capped_at_one_mebi_entries_like_its_capped_test(version):
    assert kubeproxy.conntrack_max({"maxPerCore": 32768, "min": 0}, 512, version) == 1048576


@pytest.mark.parametrize("version", [v for v in RELEASES if v < (1, 36)], ids=lambda v: "%d.%d" % v)
def test_releases_before_the_cap_scale_without_limit(version):
    assert kubeproxy.conntrack_max({"maxPerCore": 32768, "min": 0}, 512, version) == 32768 * 512


# TestSetupConntrack. Calls are named as kube-proxy's fake records them. Before 1.38 the fake's
# SetMax takes no value and the hash size is checked inside the real SetMax, so the table only
# says whether SetMax is called; 1.38's fake reports 8 CPUs and hands back the max and hash size
# of the case. None for max/hashsize: the older fakes read nothing.
SETUP = (
    ("do nothing if conntrack config is empty", {}, None, None, [], []),
    ("SetMax is called if maxPerCore is specified", {"maxPerCore": 12}, 0, 0,
     ["SetMax"], ["SetMax(96)", "SetHashsize(24)"]),
    ("SetMax is not called if maxPerCore is 0", {"maxPerCore": 0}, None, None, [], []),
    ("SetTCPEstablishedTimeout is called if set", {"tcpEstablishedTimeout": 5}, None, None,
     ["SetTCPEstablishedTimeout(5)"], ["SetTCPEstablishedTimeout(5)"]),
    ("SetTCPEstablishedTimeout is not called if 0", {"tcpEstablishedTimeout": 0}, None, None, [], []),
    ("SetTCPCloseWaitTimeout is called if set", {"tcpCloseWaitTimeout": 5}, None, None,
     ["SetTCPCloseWaitTimeout(5)"], ["SetTCPCloseWaitTimeout(5)"]),
    ("SetTCPCloseWaitTimeout is not called if 0", {"tcpCloseWaitTimeout": 0}, None, None, [], []),
    ("SetTCPBeLiberal is called if true", {"tcpBeLiberal": True}, None, None,
     ["SetTCPBeLiberal(1)"], ["SetTCPBeLiberal(1)"]),
    ("SetTCPBeLiberal is not called if false", {"tcpBeLiberal": False}, None, None, [], []),
    ("SetUDPTimeout is called if set", {"udpTimeout": 5}, None, None, ["SetUDPTimeout(5)"], ["SetUDPTimeout(5)"]),
    ("SetUDPTimeout is not called if zero", {"udpTimeout": 0}, None, None, [], []),
    ("SetUDPStreamTimeout is called if set", {"udpStreamTimeout": 5}, None, None,
     ["SetUDPStreamTimeout(5)"], ["SetUDPStreamTimeout(5)"]),
    ("SetUDPStreamTimeout is not called if zero", {"udpStreamTimeout": 0}, None, None, [], []),
    # kube-proxy's fake fails this call; the planner has no errors, the calls made are the same.
    ("SetTCPEstablishedTimeout is tried when it fails", {"tcpEstablishedTimeout": 5}, None, None,
     ["SetTCPEstablishedTimeout(5)"], ["SetTCPEstablishedTimeout(5)"]),
)
# The max / hash size cases that 1.38's table adds. Hash sizes of 0 to 48 are inputs no kernel
# reports (it rounds the hash size up to a page of buckets, 512 on x86_64); they test the
# comparison only, and after_restart applies the rounding for real hosts.
SETUP_1_38 = (
    ("SetMax is not called if the sysctl is already correct", {"maxPerCore": 12}, 96, 24, []),
    ("SetMax is not called if the sysctl is higher than wanted", {"maxPerCore": 12}, 192, 48, []),
    ("SetMax is called if the sysctl is too low", {"maxPerCore": 12}, 48, 12, ["SetMax(96)", "SetHashsize(24)"]),
    ("SetHashsize is called if max is correct but hashsize isn't", {"maxPerCore": 12}, 96, 0, ["SetHashsize(24)"]),
    ("SetHashsize is not called if max is wrong but hashsize is correct", {"maxPerCore": 12}, 48, 24,
     ["SetMax(96)"]),
)
CALL = (("nf_conntrack_max", "SetMax"), ("nf_conntrack_buckets", "SetHashsize"),
        ("nf_conntrack_tcp_timeout_established", "SetTCPEstablishedTimeout"),
        ("nf_conntrack_tcp_timeout_close_wait", "SetTCPCloseWaitTimeout"),
        ("nf_conntrack_tcp_be_liberal", "SetTCPBeLiberal"), ("nf_conntrack_udp_timeout", "SetUDPTimeout"),
        ("nf_conntrack_udp_timeout_stream", "SetUDPStreamTimeout"))


def _calls(written, with_values):
    names = dict(CALL)
    if with_values:
        return ["%s(%d)" % (names[k], v) for k, v in written.items()]
    # The older fakes: SetMax bare, the hash size hidden inside it, the others with their seconds.
    return [names[k] if k == "nf_conntrack_max" else "%s(%d)" % (names[k], v)
            for k, v in written.items() if k != "nf_conntrack_buckets"]


def _served(version, config):
    return all(key in kubeproxy.release(version).fields for key in config)


@pytest.mark.parametrize("version", RELEASES, ids=lambda v: "%d.%d" % v)
@pytest.mark.parametrize("name, config, cur_max, cur_hash, older, newest", SETUP, ids=[c[0] for c in SETUP])
def test_writes_match_kube_proxys_setup_conntrack_table(version, name, config, cur_max, cur_hash, older, newest):
    if not _served(version, config):
        # The field came with 1.29: an older kube-proxy has nothing to write it with.
        assert kubeproxy.writes(config, 8, {}, version) == {}
        return
    if version >= (1, 38):
        current = {"nf_conntrack_max": cur_max or 0, "nf_conntrack_buckets": cur_hash or 0}
        assert _calls(kubeproxy.writes(config, 8, current, version), True) == newest
    else:
        for ncores in CPUS:
            assert _calls(kubeproxy.writes(config, ncores, {}, version), False) == older


@pytest.mark.parametrize("name, config, cur_max, cur_hash, expected", SETUP_1_38, ids=[c[0] for c in SETUP_1_38])
def test_max_and_hash_size_follow_the_newest_setup_table(name, config, cur_max, cur_hash, expected):
    current = {"nf_conntrack_max": cur_max, "nf_conntrack_buckets": cur_hash}
    assert _calls(kubeproxy.writes(config, 8, current, (1, 38)), True) == expected


# Rules from the source that the test tables do not state.
@pytest.mark.parametrize("version, current, after", [
    ((1, 21), 262144, 131072),   # writes its value whenever it differs
    ((1, 22), 262144, 262144),   # 1.22 to 1.28 only raise
    ((1, 28), 262144, 262144),
    ((1, 29), 262144, 131072),   # 1.29 went back to writing it whenever it differs
    ((1, 37), 262144, 131072),
    ((1, 38), 262144, 262144),   # 1.38 only raises the max again
    (None, 262144, 131072),      # unknown release: assume it can lower ours
])
def test_a_higher_max_survives_only_on_raise_only_releases(version, current, after):
    assert kubeproxy.after_restart("nf_conntrack_max", 131072, current, version) == after


@pytest.mark.parametrize("version", RELEASES, ids=lambda v: "%d.%d" % v)
def test_default_config_on_a_big_host_is_capped_from_1_36(version):
    config = kubeproxy.effective({})
    asked = kubeproxy.writes(config, 64, {}, version)
    capped = version >= (1, 36)
    assert asked["nf_conntrack_max"] == (1048576 if capped else 2097152)
    assert asked["nf_conntrack_buckets"] == (262144 if capped else 524288)


def test_a_floor_above_the_cap_is_written_as_it_is():
    # The cap cuts maxPerCore x CPUs only; min is returned unchanged when the scaled value is smaller.
    assert kubeproxy.conntrack_max({"maxPerCore": 1, "min": 4194304}, 64, (1, 38)) == 4194304
    assert kubeproxy.conntrack_max({"maxPerCore": 65536, "min": 4194304}, 64, (1, 38)) == 1048576


def test_release_strings_and_versions_outside_the_table():
    assert kubeproxy.release("v1.30.2").version == (1, 30)
    assert kubeproxy.release((1, 19)).version == (1, 21)
    assert kubeproxy.release((1, 45)).version == kubeproxy.NEWEST
    assert kubeproxy.release(None) is kubeproxy.UNKNOWN and not kubeproxy.UNKNOWN.known
    assert kubeproxy.release((1, 28)).flags == ("--conntrack-max-per-core", "--conntrack-min",
                                                "--conntrack-tcp-timeout-established",
                                                "--conntrack-tcp-timeout-close-wait")
    assert "--conntrack-udp-timeout-stream" in kubeproxy.release((1, 29)).flags
