"""Make ``ansible_collections.netfilter.conntrack`` and ``support`` importable from a plain checkout."""
import hashlib
import os
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def _collections_root():
    parts = ROOT.split(os.sep)
    if parts[-3:] == ["ansible_collections", "netfilter", "conntrack"]:
        return os.sep.join(parts[:-3])
    digest = hashlib.sha256(ROOT.encode()).hexdigest()[:12]
    base = os.path.join("/tmp", "netfilter.conntrack-%s" % digest, "linked")
    link = os.path.join(base, "ansible_collections", "netfilter", "conntrack")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.realpath(link) != ROOT:
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(ROOT, link)
    return base


sys.path.insert(0, TESTS)
sys.path.insert(0, _collections_root())


@pytest.fixture
def kernel_lock():
    """Serialize live-kernel tests across every test run on this machine."""
    from support.kernel import exclusive_kernel
    with exclusive_kernel():
        yield


@pytest.fixture
def global_sysctls(kernel_lock):
    """Save nf_conntrack_max, buckets and expect_max; restore them whatever happens."""
    from support.kernel import saved_sysctls
    with saved_sysctls() as saved:
        yield saved


@pytest.fixture
def netns(kernel_lock):
    """A fresh namespace whose nftables rule makes conntrack track it."""
    from support.kernel import Netns
    with Netns() as ns:
        yield ns
