"""The audit flags a node whose kube-proxy will cap or lower the table the collection sized."""
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_rules


def _rec(version, cpus, ours):
    facts = {"environment": {"kube_proxy": {"effective": dict(kubeproxy.DEFAULTS), "version": version,
                                            "config_file": "/var/lib/kube-proxy/config.conf"}},
             "memory": {"cpu_count": cpus}}
    return {"kube_proxy": kubeproxy.plan(facts, ours)}


def test_a_capped_max_on_a_big_node_is_flagged_with_the_release_and_the_cap():
    rec = _rec("v1.37.0", 64, {"nf_conntrack_max": 2097152, "nf_conntrack_buckets": 524288})
    found = _audit_rules.rule_kube_proxy_lowers({}, rec, {}, {})
    # The hash size is only ever raised, so ours stays; the max is cut to the cap.
    assert [f["key"] for f in found] == ["nf_conntrack_max"]
    by_key = dict((f["key"], f) for f in found)
    assert by_key["nf_conntrack_max"]["value"] == 1048576 and by_key["nf_conntrack_max"]["threshold"] == 2097152
    assert "kube-proxy 1.37" in by_key["nf_conntrack_max"]["message"]
    assert "capped at 1048576" in by_key["nf_conntrack_max"]["evidence"]["reason"]
    assert "kube_proxy_lowers" in _audit_rules.RULE_NAMES and _audit_rules.rule_kube_proxy_lowers in _audit.RULES


def test_a_raise_only_release_keeps_a_higher_max_and_is_not_flagged():
    rec = _rec("v1.38.0", 64, {"nf_conntrack_max": 2097152, "nf_conntrack_buckets": 524288})
    assert _audit_rules.rule_kube_proxy_lowers({}, rec, {}, {}) == []


def test_no_kube_proxy_no_finding():
    assert _audit_rules.rule_kube_proxy_lowers({}, {"kube_proxy": None}, {}, {}) == []
    assert _audit_rules.rule_kube_proxy_lowers({}, None, {}, {}) == []
