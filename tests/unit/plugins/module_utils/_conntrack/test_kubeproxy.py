"""kube-proxy's conntrack settings: flags, config file, the prediction and the block."""
import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy, reading

CONFIG = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
conntrack:
  maxPerCore: 65536   # doubled
  min: 131072
  tcpEstablishedTimeout: 24h0m0s
  tcpCloseWaitTimeout: 1h0m0s
  tcpBeLiberal: true
  udpTimeout: 30s
  udpStreamTimeout: 2m0s
mode: iptables
"""


def test_duration_parsing_matches_go():
    assert kubeproxy.parse_duration("24h0m0s") == 86400
    assert kubeproxy.parse_duration("1m30s") == 90
    assert kubeproxy.parse_duration("0s") == 0
    assert kubeproxy.go_duration(86400) == "24h0m0s"


def test_config_block_yaml_and_json():
    block = kubeproxy.parse_config(CONFIG)
    assert block == {"maxPerCore": 65536, "min": 131072, "tcpEstablishedTimeout": 86400, "tcpCloseWaitTimeout": 3600,
                     "tcpBeLiberal": True, "udpTimeout": 30, "udpStreamTimeout": 120}
    assert kubeproxy.parse_config('{"conntrack": {"maxPerCore": 0, "tcpBeLiberal": false}}') == {
        "maxPerCore": 0, "tcpBeLiberal": False}


def test_flags_in_both_spellings():
    flags, config = kubeproxy.parse_flags(["--conntrack-max-per-core=0", "--conntrack-min", "5000",
                                           "--conntrack-tcp-be-liberal", "--config", "/var/lib/kube-proxy/c.yaml"])
    assert flags == {"maxPerCore": 0, "min": 5000, "tcpBeLiberal": True}
    assert config == "/var/lib/kube-proxy/c.yaml"


def _placed(tmp_path, pid, argv, path, text):
    """A recorded /proc with a kube-proxy process whose --config file holds ``text``."""
    proc = tmp_path / "proc" / str(pid)
    (proc / "root" / path.lstrip("/")).parent.mkdir(parents=True)
    (proc / "comm").write_text("kube-proxy\n")
    (proc / "cmdline").write_text("\0".join(argv) + "\0")
    (proc / "root" / path.lstrip("/")).write_text(text)
    return kubeproxy.read_kube_proxy(reading.Reader(str(tmp_path)))


def test_read_through_proc_root(tmp_path):
    kp = _placed(tmp_path, 77, ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf"],
                 "/var/lib/kube-proxy/config.conf", CONFIG)
    assert kp["pid"] == 77 and kp["effective"]["maxPerCore"] == 65536 and kp["notes"] == []


def test_prediction_follows_the_release_and_raises_hashsize_to_a_quarter():
    eff = dict(kubeproxy.DEFAULTS)
    now = {"nf_conntrack_max": 1048576, "nf_conntrack_buckets": 16384}
    out = kubeproxy.predict(eff, 8, now)
    assert out["nf_conntrack_max"] == 262144  # 32768 * 8: 1.29+ (and an unknown release) lower it
    assert out["nf_conntrack_buckets"] == 65536  # raised to max / 4
    assert out["nf_conntrack_tcp_timeout_established"] == 86400
    assert "nf_conntrack_udp_timeout" not in out  # 0: left alone
    assert kubeproxy.predict(eff, 8, now, version=(1, 28))["nf_conntrack_max"] == 1048576  # kept: raise-only


def test_plan_emits_the_block_when_kube_proxy_would_undo_ours():
    facts = {"environment": {"kube_proxy": {"pid": 9, "config_file": None, "effective": dict(kubeproxy.DEFAULTS)}},
             "memory": {"cpu_count": 4}, "settings": {"nf_conntrack_max": 131072}}
    ours = {"nf_conntrack_max": 100352, "nf_conntrack_tcp_timeout_established": 3600}
    plan = kubeproxy.plan(facts, ours)
    assert plan["differs"]["nf_conntrack_max"] == {"kube_proxy": 131072, "recommended": 100352}
    assert plan["differs"]["nf_conntrack_tcp_timeout_established"]["kube_proxy"] == 86400
    assert plan["conntrack"]["min"] == 100352 and plan["conntrack"]["maxPerCore"] == 25088
    assert "tcpEstablishedTimeout: 1h0m0s" in plan["conntrack_yaml"]
    # max(maxPerCore * cpus, min) gives back exactly our max.
    assert max(plan["conntrack"]["maxPerCore"] * 4, plan["conntrack"]["min"]) == 100352


def test_plan_is_none_without_kube_proxy_and_quiet_when_ours_survives():
    assert kubeproxy.plan({"environment": {}}, {"nf_conntrack_max": 1}) is None
    facts = {"environment": {"kube_proxy": {"effective": dict(kubeproxy.DEFAULTS)}}, "memory": {"cpu_count": 2}}
    # max(32768 * 2, 131072): what it asks for is ours, and a bigger hash size is never lowered.
    plan = kubeproxy.plan(facts, {"nf_conntrack_max": 131072, "nf_conntrack_buckets": 65536,
                                  "nf_conntrack_tcp_timeout_established": 86400})
    assert plan["differs"] == {} and plan["conntrack_yaml"] is None


def test_plan_names_a_higher_max_too_since_kube_proxy_may_lower_it():
    facts = {"environment": {"kube_proxy": {"effective": dict(kubeproxy.DEFAULTS)}}, "memory": {"cpu_count": 2}}
    plan = kubeproxy.plan(facts, {"nf_conntrack_max": 1048576})
    assert plan["differs"] == {"nf_conntrack_max": {"kube_proxy": 131072, "recommended": 1048576}}
    assert "min: 1048576" in plan["conntrack_yaml"]


NULLS = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
conntrack:
  maxPerCore: null
  min: null
  tcpEstablishedTimeout: null
  tcpCloseWaitTimeout: ~
  udpTimeout: 30s
mode: ipvs
"""

V1ALPHA2 = """apiVersion: kubeproxy.config.k8s.io/v1alpha2
kind: KubeProxyConfiguration
linux:
  masqueradeAll: false
  conntrack:
    maxPerCore: 0
    tcpEstablishedTimeout: 2h0m0s
  oomScoreAdj: -999
"""


def test_null_fields_take_kube_proxys_defaults_rather_than_meaning_no_write():
    assert kubeproxy.parse_config(NULLS) == {"udpTimeout": 30}
    config = kubeproxy.effective(kubeproxy.parse_config(NULLS))
    asked = kubeproxy.writes(config, 8, {}, (1, 30))
    assert asked["nf_conntrack_max"] == 262144
    assert asked["nf_conntrack_tcp_timeout_established"] == 86400
    assert asked["nf_conntrack_udp_timeout"] == 30
    assert kubeproxy.parse_config('{"conntrack": {"maxPerCore": null, "udpTimeout": null}}') == {}


def test_a_null_duration_keeps_the_rest_of_the_block(tmp_path):
    kp = _placed(tmp_path, 5, ["kube-proxy", "--config=/etc/kp.yaml"], "/etc/kp.yaml", NULLS)
    assert kp["notes"] == [] and kp["layout"] == "v1alpha1"
    assert kp["effective"]["tcpEstablishedTimeout"] == 86400 and kp["effective"]["udpTimeout"] == 30


def test_v1alpha2_linux_conntrack_layout_is_read_and_flagged_as_not_served(tmp_path):
    assert kubeproxy.parse_config_file(V1ALPHA2) == ({"maxPerCore": 0, "tcpEstablishedTimeout": 7200}, "v1alpha2")
    assert kubeproxy.parse_config_file('{"linux": {"conntrack": {"min": 5}}}') == ({"min": 5}, "v1alpha2")
    kp = _placed(tmp_path, 5, ["kube-proxy", "--config", "/etc/kp.yaml"], "/etc/kp.yaml", V1ALPHA2)
    assert kp["layout"] == "v1alpha2" and "does not load" in kp["notes"][0]
    assert kubeproxy.render_block({"maxPerCore": 0}, "v1alpha2") == "linux:\n  conntrack:\n    maxPerCore: 0\n"


@pytest.mark.parametrize("maximum", [100352, 262144, 1048576, 1049088, 2097152, 4194304])
@pytest.mark.parametrize("cpus", [1, 2, 4, 8, 16, 32, 64, 512])
def test_the_emitted_block_reproduces_our_max_on_every_release(maximum, cpus):
    block, note = kubeproxy.max_block(maximum, cpus)
    assert note is None
    for version in kubeproxy.RELEASES:
        assert kubeproxy.writes(block, cpus, {}, version)["nf_conntrack_max"] == maximum


def test_the_plan_says_plainly_when_no_block_can_hold_our_max():
    block, note = kubeproxy.max_block(300, 512)
    assert block == {"maxPerCore": 0} and "asks for at least 512" in note and "maxPerCore: 0" in note
    block, note = kubeproxy.max_block(262144, None)
    assert block == {"maxPerCore": 0} and "CPU count is unknown" in note


def test_plan_names_the_cap_as_the_reason_it_lowers_our_max():
    facts = {"environment": {"kube_proxy": {"effective": dict(kubeproxy.DEFAULTS, maxPerCore=67890),
                                            "version": "v1.36.1"}},
             "memory": {"cpu_count": 16}}
    plan = kubeproxy.plan(facts, {"nf_conntrack_max": 1086240})
    assert plan["release"] == "1.36" and plan["reproduces"] and plan["note"] is None
    assert plan["predicted"]["nf_conntrack_max"] == 1048576
    lowered = plan["lowers"]["nf_conntrack_max"]
    assert lowered["kube_proxy"] == 1048576 and "capped at 1048576" in lowered["reason"]
    assert "maxPerCore: 65536" in plan["conntrack_yaml"] and "min: 1086240" in plan["conntrack_yaml"]


def test_the_release_is_read_from_the_executables_build_information(tmp_path):
    kp = _placed(tmp_path, 9, ["kube-proxy", "--config=/c.yaml"], "/c.yaml", NULLS)
    assert kp["version"] is None  # no executable recorded: the release is unknown
    # The link flags Go records, straddling a read chunk boundary.
    body = b"\0" * (kubeproxy._EXE_CHUNK - 70) + b"\xff Go buildinf:build\t-ldflags=-X k8s.io/component-base/" \
        b"version.gitVersion=v1.36.2 -X other\n"
    (tmp_path / "proc/9/exe").write_bytes(body)
    kp = kubeproxy.read_kube_proxy(reading.Reader(str(tmp_path)))
    assert kp["version"] == "v1.36.2" and kubeproxy.release(kp["version"]).cap == 1048576
