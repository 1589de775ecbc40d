# -*- coding: utf-8 -*-
"""kernel.py: the one home of what the collection knows about nf_conntrack."""

import ast
import os

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel, writing

PLUGINS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "..", "plugins"))
KERNEL_PY = os.path.join(PLUGINS, "module_utils", "_conntrack", "kernel.py")


def plugin_sources():
    for top, _dirs, names in os.walk(PLUGINS):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(top, name)
                with open(path) as f:
                    yield path, f.read()


def others():
    return [(path, text) for path, text in plugin_sources() if path != KERNEL_PY]


def literal_collections(text, dicts=True):
    """The string sets of every literal tuple, list, set and (with ``dicts``) dict keys in a source."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) or (dicts and isinstance(node, ast.Dict)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            yield set(i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str))


@pytest.mark.parametrize("marker, rule", [
    ("-(-", "rounding up (buckets, max, alignment)"),
    ("MemTotal:", "parsing /proc/meminfo"),
    ('"#;"', "parsing sysctl.d lines"),
    ("def kernel_version(", "reading the kernel version"),
])
def test_each_kernel_rule_is_written_only_in_kernel_py(marker, rule):
    assert marker in open(KERNEL_PY).read()
    assert [path for path, text in others() if marker in text] == [], rule


def test_no_other_plugin_lists_the_global_kube_proxy_or_timeout_keys():
    kube_proxy = set(kernel.kube_proxy_keys(by_default_only=True))
    for path, text in others():
        # A result dict may well hold max, buckets and expect_max; a list of them is a key set.
        for names in literal_collections(text, dicts=False):
            assert not set(kernel.GLOBAL_KEYS) <= names, path
            assert not kube_proxy <= names, path
        for names in literal_collections(text):
            assert len(set(kernel.KERNEL_TIMEOUTS) & names) <= 5, path


def test_the_users_of_the_table_see_the_same_objects():
    assert writing.KEYS is kernel.WRITABLE_KEYS
    assert writing.GLOBAL_KEYS is kernel.GLOBAL_KEYS
    assert kernel.round_buckets is writing.round_buckets


def test_table_has_every_writable_key_with_a_consistent_range():
    assert len(kernel.KERNEL_TIMEOUTS) == 25
    assert len([k for k, s in kernel.WRITABLE_KEYS.items() if s.kind == "timeout"]) == 34
    assert kernel.GLOBAL_KEYS == ("nf_conntrack_buckets", "nf_conntrack_expect_max", "nf_conntrack_max")
    assert "nf_conntrack_count" in kernel.KEYS and "nf_conntrack_count" not in kernel.WRITABLE_KEYS
    for name, spec in kernel.KEYS.items():
        assert kernel.KEY_RE.match(name)
        assert spec.minimum <= spec.maximum
        assert spec.default is None or spec.minimum <= spec.default <= spec.maximum, name
        assert spec.scope in ("global", "netns") and spec.group in ("table", "timeout", "option", "frag6")


def test_buckets_round_up_like_the_kernel():
    assert kernel.round_buckets(100000) == 100352
    assert kernel.round_buckets(1) == 512
    assert kernel.round_buckets(65536) == 65536
    assert kernel.round_buckets(100353, kernel.bucket_granularity(16384, 8)) == 102400  # 16 KiB pages
    assert kernel.bucket_granularity() == 512


def test_mem_total_is_read_from_text_or_bytes_and_none_when_missing():
    assert kernel.mem_total_bytes("MemTotal:       16384 kB\nMemFree: 1 kB\n") == 16384 * 1024
    assert kernel.mem_total_bytes(b"MemTotal:16 kB\n") is None  # the kernel always pads
    assert kernel.mem_total_bytes(b"MemTotal: 16kB\n") == 16 * 1024
    assert kernel.mem_total_bytes("") is None and kernel.mem_total_bytes(None) is None


def test_sysctl_lines_and_conntrack_names():
    assert kernel.parse_sysctl_line("-net/netfilter/nf_conntrack_max = 5") == ("net.netfilter.nf_conntrack_max", "5")
    assert kernel.parse_sysctl_line("; comment") is None
    assert kernel.conntrack_name("net.nf_conntrack_max") == "nf_conntrack_max"
    assert kernel.conntrack_name("net.netfilter.nf_conntrack_acct") == "nf_conntrack_acct"
    assert kernel.conntrack_name("net.ipv4.ip_forward") is None


def test_kube_proxy_keys_by_release():
    assert kernel.kube_proxy_keys((1, 28)) == ("nf_conntrack_buckets", "nf_conntrack_max",
                                               "nf_conntrack_tcp_timeout_close_wait",
                                               "nf_conntrack_tcp_timeout_established")
    newer = set(kernel.kube_proxy_keys((1, 29))) - set(kernel.kube_proxy_keys((1, 28)))
    assert newer == {"nf_conntrack_tcp_be_liberal", "nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"}
    assert kernel.kube_proxy_keys(by_default_only=True) == kernel.kube_proxy_keys((1, 28))


@pytest.mark.parametrize("key, intended, current, version, after", [
    # 1.29 to 1.37 write their own value whenever it differs: a higher max of ours is lowered.
    ("nf_conntrack_max", 131072, 262144, (1, 30), 131072),
    ("nf_conntrack_max", 131072, 262144, None, 131072),       # unknown release: assume it can lower ours
    ("nf_conntrack_max", 131072, 262144, (1, 28), 262144),    # 1.22 to 1.28 left a higher value alone
    ("nf_conntrack_max", 131072, 262144, (1, 38), 262144),    # raise-only again for max (kubernetes#142035)
    ("nf_conntrack_tcp_timeout_established", 86400, 432000, (1, 38), 86400),  # ... for max alone
    ("nf_conntrack_tcp_timeout_established", 86400, 432000, (1, 25), 432000),
    ("nf_conntrack_max", 524288, 262144, (1, 28), 524288),    # a lower value is raised in every release
    ("nf_conntrack_udp_timeout", 0, 15, None, 15),            # 0: its configuration leaves the key alone
    ("nf_conntrack_udp_timeout", None, 15, None, 15),
    ("nf_conntrack_buckets", 100000, 65536, None, 100352),    # the kernel rounds what kube-proxy writes
    ("nf_conntrack_buckets", 65536, 262144, None, 262144),    # the hash size is only ever raised
    ("nf_conntrack_tcp_timeout_time_wait", 300, 120, None, 120),   # never written by kube-proxy
])
def test_what_kube_proxy_leaves_after_its_restart_depends_on_its_release(key, intended, current, version, after):
    assert kernel.after_kube_proxy_restart(key, intended, current, version) == after


def test_kube_proxy_asks_for_a_quarter_of_max_as_buckets():
    assert kernel.kube_proxy_buckets(1048576) == 262144
