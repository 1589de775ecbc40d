"""netfilter.conntrack.recommend on this host next to a kube-proxy config placed for the test.

kube-proxy is not installed here: a stand-in process named kube-proxy (prctl PR_SET_NAME) runs
with ``--config`` pointing at a KubeProxyConfiguration the test writes, which the facts read
through /proc/PID/root as they would a DaemonSet's ConfigMap. It lives for one module run,
under the kernel lock, since other checkouts' settings tests defer to a running kube-proxy.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from support.ansible import run_module

STAND_IN = ("import ctypes, time\n"
            "ctypes.CDLL(None).prctl(15, b'kube-proxy', 0, 0, 0)\n"
            "time.sleep(120)\n")

NULLS = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
conntrack:
  maxPerCore: null
  min: null
  tcpEstablishedTimeout: null
  tcpCloseWaitTimeout: 1h0m0s
  udpTimeout: 30s
"""

V1ALPHA2 = """apiVersion: kubeproxy.config.k8s.io/v1alpha2
kind: KubeProxyConfiguration
linux:
  conntrack:
    maxPerCore: 0
"""


@pytest.fixture
def kube_proxy_with(tmp_path, kernel_lock):
    started = []

    def start(text):
        path = tmp_path / "kube-proxy.yaml"
        path.write_text(text)
        proc = subprocess.Popen([sys.executable, "-c", STAND_IN, "--config=%s" % path])
        started.append(proc)
        deadline = time.time() + 10
        while time.time() < deadline:
            with open("/proc/%d/comm" % proc.pid) as f:
                if f.read().strip() == "kube-proxy":
                    return proc.pid, str(path)
            time.sleep(0.05)
        raise RuntimeError("the stand-in never took the name kube-proxy")

    yield start
    for proc in started:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def recommend():
    result = run_module("recommend", {"profile": "kubernetes_node"})
    assert "recommendation" in result, result.get("msg") or result["_stdout"]
    return result["recommendation"]


def expected_max(cpus):
    # kube-proxy's rule with its defaults, independent of the planner: max(32768 x CPUs, 131072),
    # the scaled part capped at 1,048,576 on the newest releases (an unknown release is read so).
    return max(min(32768 * cpus, 1048576), 131072)


def test_null_fields_in_a_placed_config_mean_kube_proxys_defaults(kube_proxy_with):
    pid, path = kube_proxy_with(NULLS)
    rec = recommend()
    kp = rec["kube_proxy"]
    assert kp["pid"] == pid and kp["config_file"] == path and kp["layout"] == "v1alpha1"
    assert kp["effective"]["maxPerCore"] == 32768 and kp["effective"]["tcpEstablishedTimeout"] == 86400
    cpus = os.cpu_count()
    wanted = expected_max(cpus)
    assert kp["predicted"]["nf_conntrack_max"] == wanted
    assert kp["predicted"]["nf_conntrack_udp_timeout"] == 30
    ours = rec["settings"]["nf_conntrack_max"]
    if ours != wanted:
        assert kp["differs"]["nf_conntrack_max"] == {"kube_proxy": wanted, "recommended": ours}
        # The emitted block, put through kube-proxy's rule for this host, gives back our max.
        block = kp["conntrack"]
        assert kp["reproduces"] and max(min(block["maxPerCore"] * cpus, 1048576), block["min"]) == ours
        assert "min: %d" % ours in kp["conntrack_yaml"]


def test_a_v1alpha2_config_is_read_and_flagged_as_not_served(kube_proxy_with):
    pid, path = kube_proxy_with(V1ALPHA2)
    rec = recommend()
    kp = rec["kube_proxy"]
    assert kp["pid"] == pid and kp["layout"] == "v1alpha2"
    assert kp["effective"]["maxPerCore"] == 0
    assert "nf_conntrack_max" not in kp["predicted"]  # maxPerCore 0: kube-proxy leaves the max alone
