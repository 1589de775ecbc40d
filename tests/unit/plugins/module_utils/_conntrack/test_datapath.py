"""Where else connection state lives: eBPF maps and the ENA allowance, on small recorded trees."""
import os

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import datapath, reading

ETHTOOL = """NIC statistics:
     tx_timeout: 0
     bw_in_allowance_exceeded: 0
     conntrack_allowance_exceeded: 1432
     conntrack_allowance_available: 0
"""


def test_a_pinned_cilium_map_names_the_datapath(tmp_path):
    (tmp_path / "sys/fs/bpf/tc/globals").mkdir(parents=True)
    (tmp_path / "sys/fs/bpf/tc/globals/cilium_ct4_global").write_text("")
    assert datapath.read_ebpf(reading.Reader(str(tmp_path)))[0] == "cilium"
    assert datapath.read_ebpf(reading.Reader(str(tmp_path / "nothing")))[0] is None


def test_ethtool_runs_only_for_an_ena_device(tmp_path):
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, ETHTOOL, ""
    (tmp_path / "sys/class/net/eth0/device").mkdir(parents=True)
    os.symlink("../../../bus/pci/drivers/ena", str(tmp_path / "sys/class/net/eth0/device/driver"))
    (tmp_path / "sys/class/net/lo").mkdir(parents=True)
    r = reading.Reader(str(tmp_path), run_command=run, which=lambda name: "/usr/sbin/" + name)
    ena, note = datapath.read_ena(r)
    assert note is None and [c[1:] for c in calls] == [["-S", "eth0"]]
    assert ena == [{"interface": "eth0", "conntrack_allowance_exceeded": 1432, "conntrack_allowance_available": 0}]


def test_without_ethtool_the_note_says_so(tmp_path):
    (tmp_path / "sys/class/net/eth0/device").mkdir(parents=True)
    os.symlink("../../../bus/pci/drivers/ena", str(tmp_path / "sys/class/net/eth0/device/driver"))
    ena, note = datapath.read_ena(reading.Reader(str(tmp_path), which=lambda name: None))
    assert ena == [] and "ethtool is not installed" in note
