"""kube-proxy writes its keys at each start: the settings backend says what survives its restart."""
from support.fakehost import make_host
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import planning
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.writing import ConntrackSettings


def kube_proxy_host(tmp_path):
    root = make_host(tmp_path)
    proc = root / "proc/4242"
    proc.mkdir()
    (proc / "comm").write_text("kube-proxy\n")
    return root


def planned(root, settings, **kw):
    b = ConntrackSettings(settings, root=str(root), granularity=512, **kw)
    b.validate()
    b.plan()
    return b


def test_respect_applies_the_keys_kube_proxy_writes_only_when_configured_and_says_why(tmp_path):
    b = planned(kube_proxy_host(tmp_path), {"nf_conntrack_udp_timeout": 15, "nf_conntrack_max": 1048576})
    assert set(b.result()["skipped_keys"]) == {"nf_conntrack_max"}
    assert "writes this key to its own value" in b.result()["skipped_keys"]["nf_conntrack_max"]
    assert b.result()["runtime"]["nf_conntrack_udp_timeout"]["after"] == 15
    assert any(w.startswith("nf_conntrack_udp_timeout lowered from 30 to 15") and "1.29" in w for w in b.warnings)


def test_override_warns_that_kube_proxy_writes_its_own_value_back(tmp_path):
    root = kube_proxy_host(tmp_path)
    b = planned(root, {"nf_conntrack_max": 1048576, "nf_conntrack_tcp_timeout_established": 3600,
                       "nf_conntrack_buckets": 262144}, kube_proxy="override")
    assert not b.result()["skipped_keys"]
    raised = [w for w in b.warnings if w.startswith("nf_conntrack_max set to 1048576")]
    lowered = [w for w in b.warnings if w.startswith("nf_conntrack_tcp_timeout_established lowered")]
    assert raised and lowered and all("writes its own value back" in w for w in raised + lowered)
    buckets = [w for w in b.warnings if w.startswith("nf_conntrack_buckets=262144")]
    assert buckets and "only raises it" in buckets[0]


def test_outcome_with_kube_proxys_intended_value_and_release():
    text = planning.kube_proxy_outcome("nf_conntrack_max", 1048576, 262144, intended=131072)
    assert "does not survive" in text and "writes 131072" in text
    assert "survives" in planning.kube_proxy_outcome("nf_conntrack_max", 1048576, 262144, intended=131072,
                                                     version=(1, 38))
    text = planning.kube_proxy_outcome("nf_conntrack_max", 131072, 262144, intended=524288, version=(1, 38))
    assert "does not survive" in text and "524288" in text
