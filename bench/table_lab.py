"""A namespace holding a live conntrack table of a chosen size (B2, B4): crafted UDP flows.

The global max is raised for the fill under saved_sysctls (restored on exit), and the
namespace's own UDP timeout is raised so that the entries stay while we measure.
"""
import contextlib
import time

import _paths  # noqa: F401  pylint: disable=unused-import
from support.kernel import Netns, read_int, saved_sysctls, write_value
from support.traffic import UDP_FILL_RULESET, udp_fill

UDP_TIMEOUT_SECONDS = 3600


def count(ns):
    return int(ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]).stdout.strip())


@contextlib.contextmanager
def table_namespace(max_entries):
    """A tracked namespace that may hold max_entries; global max raised, then restored."""
    with saved_sysctls():
        if read_int("nf_conntrack_max") < max_entries:
            write_value("nf_conntrack_max", max_entries)
        with Netns(prefix="ncbt", ruleset=UDP_FILL_RULESET) as ns:
            try:
                yield ns
            finally:
                # Empty the table before the namespace goes, so that the slab shrinks promptly.
                ns.conntrack("-F", check=False)


def fill_to(ns, entries, workers=2):
    """Add UDP flows until the namespace holds about `entries`; returns (count, seconds)."""
    start = time.monotonic()
    have = count(ns)
    if entries > have:
        udp_fill(ns, entries - have, udp_timeout=UDP_TIMEOUT_SECONDS, workers=workers)
    # Confirmation happens as the datagrams leave; give the last ones a moment.
    last, stable = -1, 0
    while stable < 3:
        now = count(ns)
        stable = stable + 1 if now == last else 0
        last = now
        time.sleep(0.2)
    return last, round(time.monotonic() - start, 2)
