"""namespaces.read_namespaces against a recorded host with containers, a pod and bind mounts."""
import os

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, namespaces, reading

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures"))
TREE = os.path.join(FIXTURES, "namespaces-6.18")
HOST, DNS, POD, PODMAN, SVC, IDLE, LOST = 4026531840, 4026532301, 4026532302, 4026532303, 4026532304, 4026532305, 4026532306


def read(**kwargs):
    r = reading.Reader(TREE)
    return dict((ns["inode"], ns) for ns in namespaces.read_namespaces(r, **kwargs)), r.warnings


def test_every_namespace_is_found_from_processes_and_bind_mounts():
    spaces, warnings = read()
    assert set(spaces) == {HOST, DNS, POD, PODMAN, SVC, IDLE, LOST}
    assert warnings == []


def test_the_module_namespace_comes_first_then_the_fullest():
    r = reading.Reader(TREE)
    order = [ns["inode"] for ns in namespaces.read_namespaces(r)]
    assert order[0] == HOST and order[1] == DNS


def test_counts_and_drops_are_summed_over_cpus_with_the_facts_parser():
    spaces, dummy = read()
    dns = spaces[DNS]
    assert dns["readable"] is True and dns["entries"] == 37
    assert dns["stats"]["totals"]["drop"] == 5
    assert dns["stats"]["totals"]["insert_failed"] == 1
    assert dns["stats"]["totals"]["clash_resolve"] == 4  # the conntrack-tools alias, as in the host's facts
    assert dns["stats"]["cpus"] == 2
    assert dns["pids"] == [100, 101] and dns["process_count"] == 3


def test_docker_container_is_named_from_its_config():
    owner = read()[0][DNS]["owner"]
    assert owner["kind"] == "container" and owner["runtime"] == "docker"
    assert owner["container_name"] == "dns-cache"
    assert owner["netns_name"] == "4f1a2b3c"


def test_kubernetes_pod_uid_name_and_namespace_without_the_api():
    owner = read()[0][POD]["owner"]
    assert owner["kind"] == "pod" and owner["runtime"] == "containerd"
    assert owner["pod_uid"] == "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert (owner["pod_namespace"], owner["pod_name"]) == ("shop", "web-0")


def test_podman_container_is_named_from_the_storage_file():
    owner = read()[0][PODMAN]["owner"]
    assert (owner["runtime"], owner["container_name"]) == ("podman", "edge-proxy")


def test_systemd_service_and_escaped_bind_mount_name():
    owner = read()[0][SVC]["owner"]
    assert owner["kind"] == "service" and owner["service"] == "privnet.service"
    assert read()[0][SVC]["bind_mounts"] == ["/run/netns/with space"]


def test_a_namespace_without_a_process_is_listed_as_unreadable_with_the_reason():
    idle = read()[0][IDLE]
    assert idle["readable"] is False and idle["pids"] == []
    assert "no process runs in it" in idle["reason"] and "/run/netns/idle" in idle["reason"]
    assert idle["owner"]["kind"] == "ip-netns" and idle["owner"]["netns_name"] == "idle"


def test_a_process_that_left_gives_a_reason_not_an_error():
    lost = read()[0][LOST]
    assert lost["readable"] is False and "missing" in lost["reason"]


def test_host_namespace_is_marked_host_and_current():
    host = read()[0][HOST]
    assert host["current"] is True and host["owner"]["kind"] == "host" and host["entries"] == 12


def test_table_is_walked_per_namespace_only_when_asked():
    assert read()[0][DNS]["table"] is None
    table = read(table=True, table_limit=1)[0][DNS]["table"]
    assert table["entries_read"] == 1 and table["truncated"] is True


def test_nsid_is_not_asked_on_a_recorded_tree():
    dns = read()[0][DNS]
    assert dns["nsid"] is None and "recorded tree" in dns["nsid_note"]


def test_the_gather_adds_the_namespaces_only_when_asked():
    facts, dummy = gathering.FactsReader(reading.Reader(TREE), gathering.ReadOptions(namespaces="none")).gather()
    assert "namespaces" not in facts
    facts, dummy = gathering.FactsReader(reading.Reader(TREE), gathering.ReadOptions(namespaces="all")).gather()
    assert len(facts["namespaces"]) == 7


def test_owner_from_cgroupfs_paths():
    cg = "11:pids:/kubepods/besteffort/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427/%s\n" % ("d" * 64)
    owner = namespaces.owner_from_cgroup(cg)
    assert owner["kind"] == "pod" and owner["container_id"] == "d" * 64 and owner["runtime"] == "kubernetes"
    assert namespaces.owner_from_cgroup("0::/docker/%s\n" % ("e" * 64))["runtime"] == "docker"
    assert namespaces.owner_from_cgroup("0::/system.slice/crio-%s.scope\n" % ("f" * 64))["runtime"] == "cri-o"
