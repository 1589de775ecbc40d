"""The small version of B6 (20 namespaces): the namespaces read agrees with the ip netns exec loop."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
import bench  # noqa: E402  pylint: disable=wrong-import-position


def test_b6_counts_every_namespace_like_conntrack_inside_and_leaves_none(tmp_path):
    import b6_namespaces
    kwargs = dict(bench.SMOKE["b6"], results_dir=str(tmp_path))
    result = b6_namespaces.run(**kwargs)
    size = result["sizes"][str(bench.SMOKE["b6"]["sizes"][0])]
    assert size["counts_agree"] and size["inserted_seen"]
    assert size["facts"]["readable"] >= bench.SMOKE["b6"]["sizes"][0]
    left = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, universal_newlines=True,
                          check=True).stdout
    assert b6_namespaces.PREFIX not in left
