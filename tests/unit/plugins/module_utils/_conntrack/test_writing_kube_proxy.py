"""kube-proxy only raises the keys it writes: the settings backend says what survives its restart."""
from support.fakehost import make_host
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import writing
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
    assert set(b.skipped) == {"nf_conntrack_max"}
    assert "raising it to its own value" in b.skipped["nf_conntrack_max"]
    assert b.runtime["nf_conntrack_udp_timeout"]["after"] == 15
    assert any(w.startswith("nf_conntrack_udp_timeout lowered from 30 to 15") and "1.29" in w for w in b.warnings)


def test_override_says_a_raised_value_survives_and_a_lowered_one_does_not(tmp_path):
    root = kube_proxy_host(tmp_path)
    b = planned(root, {"nf_conntrack_max": 1048576, "nf_conntrack_tcp_timeout_established": 3600},
                kube_proxy="override")
    assert not b.skipped
    raised = [w for w in b.warnings if w.startswith("nf_conntrack_max=1048576 survives")]
    lowered = [w for w in b.warnings if w.startswith("nf_conntrack_tcp_timeout_established lowered")]
    assert raised and lowered and "raises it back" in lowered[0]


def test_outcome_with_kube_proxys_intended_value():
    assert "survives" in writing.kube_proxy_outcome("nf_conntrack_max", 1048576, 262144, intended=131072)
    text = writing.kube_proxy_outcome("nf_conntrack_max", 131072, 262144, intended=524288)
    assert "does not survive" in text and "524288" in text
