"""A temporary root that looks like a host, for the settings backend's unit tests."""
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel

DEFAULTS = {
    "nf_conntrack_max": 262144,
    "nf_conntrack_buckets": 65536,
    "nf_conntrack_expect_max": 4096,
    "nf_conntrack_count": 3,
    "nf_conntrack_tcp_timeout_established": 432000,
    "nf_conntrack_tcp_timeout_close_wait": 60,
    "nf_conntrack_tcp_timeout_time_wait": 120,
    "nf_conntrack_udp_timeout": 30,
    "nf_conntrack_tcp_loose": 1,
    "nf_conntrack_acct": 0,
}
DROPIN = "/etc/sysctl.d/90-netfilter-conntrack.conf"


def make_host(tmp_path, module="builtin", netns="initial", values=None):
    root = tmp_path / "root"
    nf = root / "proc/sys/net/netfilter"
    nf.mkdir(parents=True)
    for key, value in (values or DEFAULTS).items():
        (nf / key).write_text("%d\n" % value)
    (nf / "nf_conntrack_count").chmod(0o444)
    if netns != "initial":
        for key in kernel.GLOBAL_KEYS:
            (nf / key).chmod(0o444)
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text("6.18.0-test\n")
    params = root / "sys/module/nf_conntrack/parameters"
    params.mkdir(parents=True)
    (params / "hashsize").write_text("65536\n")
    if module == "loadable":
        (root / "sys/module/nf_conntrack/initstate").write_text("live\n")
    (root / "etc/sysctl.d").mkdir(parents=True)
    return root
