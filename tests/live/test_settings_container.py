"""netfilter.conntrack.settings inside a real podman container (its own network namespace).

The module runs with the container's python3 and the test venv's ansible mounted read-only,
the way AnsiballZ would run it there. The container has no network and is removed afterwards.
"""
import json
import os
import uuid

import pytest

import ansible
from support.kernel import read_int, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = "localhost/netfilter-conntrack-test:latest"
CONTAINERS_CONF = os.path.join(ROOT, "scripts", "containers.conf")
SITE = os.path.dirname(os.path.dirname(ansible.__file__))
MODULE = "ansible_collections.netfilter.conntrack.plugins.modules.settings"


def podman(*args, check=True):
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    return run(["podman"] + list(args), check=check, env=env)


@pytest.fixture(scope="module", autouse=True)
def image():
    """Builds the local image on a fresh machine; a no-op when it is current."""
    env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
    run([os.path.join(ROOT, "scripts", "test-image")], env=env, timeout=600)
    return IMAGE


@pytest.fixture(params=["unmasked", "default"])
def container(request):
    name = "nct-settings-%s" % uuid.uuid4().hex[:8]
    opts = ["--security-opt=unmask=/proc/sys"] if request.param == "unmasked" else []
    podman("run", "-d", "--name", name, "--network", "none", *opts,
           "-v", "%s:/venvsp:ro" % SITE,
           "-v", "%s:/coll/ansible_collections/netfilter/conntrack:ro" % ROOT,
           IMAGE, "sleep", "infinity")
    try:
        yield name, request.param
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def in_container(name, settings, check_mode=False, **extra):
    args = dict(extra, settings=settings, _ansible_check_mode=check_mode)
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": args})
    script = 'printf "%s" "$1" > /tmp/args.json && PYTHONPATH=/venvsp:/coll python3 -m ' + MODULE + ' /tmp/args.json'
    out = podman("exec", name, "sh", "-c", script, "sh", payload, check=False).stdout
    return json.loads(out[out.index("{"):])


def cat(name, path):
    return podman("exec", name, "cat", path, check=False).stdout


def test_container_applies_namespace_keys_skips_host_keys_and_reruns_clean(kernel_lock, container):
    # The lock: this test reads the global max, which other live tests change.
    name, mode = container
    host_max = read_int("nf_conntrack_max")
    settings = {"nf_conntrack_max": host_max + 4096, "nf_conntrack_buckets": 131072,
                "nf_conntrack_udp_timeout": 17, "nf_conntrack_tcp_timeout_time_wait": 9}
    predicted = in_container(name, settings, check_mode=True)
    assert predicted["changed"] is True
    assert cat(name, "/etc/sysctl.d/90-netfilter-conntrack.conf") == "", "check mode wrote a file"

    res = in_container(name, settings)
    assert not res.get("failed"), res
    assert res["changed"] is True
    assert res["environment"]["initial_netns"] is False
    assert "namespace" in res["skipped_keys"]["nf_conntrack_max"]
    assert "namespace" in res["skipped_keys"]["nf_conntrack_buckets"]
    assert read_int("nf_conntrack_max") == host_max
    dropin = cat(name, "/etc/sysctl.d/90-netfilter-conntrack.conf")
    assert "net.netfilter.nf_conntrack_udp_timeout = 17\n" in dropin
    assert "nf_conntrack_max" not in dropin
    if mode == "unmasked":
        assert cat(name, "/proc/sys/net/netfilter/nf_conntrack_udp_timeout").strip() == "17"
        assert res["desired"] == {"nf_conntrack_udp_timeout": 17, "nf_conntrack_tcp_timeout_time_wait": 9}
    else:
        # Podman's default read-only /proc/sys: nothing at runtime, said so per key.
        assert "read-only" in res["skipped_keys"]["nf_conntrack_udp_timeout"]
        assert res["desired"] == {}

    again = in_container(name, settings)
    assert again["changed"] is False

    strict = in_container(name, settings, strict=True)
    assert strict.get("failed") and "strict" in strict["msg"]
