"""The filters give the same figures as the sizing core, and refuse bad input cleanly."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.netfilter.conntrack.plugins.filter import sizing as filters
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import sizing


def test_filters_are_registered():
    assert set(filters.FilterModule().filters()) == {"conntrack_memory", "conntrack_buckets",
                                                     "conntrack_default_max"}


def test_folk_formula_on_this_kernel():
    # 1000 entries of 256 bytes and 65536 buckets of 8 bytes, not 376 and 16
    assert filters.conntrack_memory(1000, 65536) == 780288


def test_memory_defaults_buckets_to_the_rounded_chain_depth():
    assert filters.conntrack_memory(100000) == 100000 * 256 + 100352 * 8
    assert filters.conntrack_memory(1048576, chain_depth=4) == sizing.memory_bytes(1048576, 262144)


def test_buckets_filter_rounds_like_the_kernel():
    assert filters.conntrack_buckets(100000) == 100352
    assert filters.conntrack_buckets("1048576", 4) == 262144


def test_default_max_filter():
    assert filters.conntrack_default_max("16GiB") == 262144
    assert filters.conntrack_default_max(2 << 30) == 65536


@pytest.mark.parametrize("call", [lambda: filters.conntrack_memory(-1), lambda: filters.conntrack_memory("x"),
                                  lambda: filters.conntrack_buckets(10, 0), lambda: filters.conntrack_default_max("lots")])
def test_bad_input_is_a_filter_error(call):
    with pytest.raises(AnsibleFilterError):
        call()
