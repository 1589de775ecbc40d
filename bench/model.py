"""The recommend model, as the benchmarks ask it: memory for N entries, steady-state entries for a rate.

Everything here runs the collection's own sizing code (module_utils) against the facts of
the namespace being measured, so that B4 measures the model users get. When that code is
missing from the checkout, the answer says so (``model_source: unavailable``) instead of
substituting a formula of ours.
"""
import json
import os
import subprocess

import _paths  # noqa: F401  pylint: disable=unused-import
import common

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_probe.py")


def available():
    root = common.collections_path()
    return os.path.exists(os.path.join(root, "ansible_collections", "netfilter", "conntrack", "plugins",
                                       "module_utils", "_conntrack", "sizing.py"))


def ask(ns, inputs):
    """The recommendation (memory, entries, settings) for inputs, computed inside namespace ns."""
    cmd = [common.python_in_venv(), PROBE, common.collections_path(), json.dumps(inputs)]
    if ns is not None:
        cmd = ns.argv(cmd)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if res.returncode != 0:
        raise RuntimeError("recommend model failed: %s" % res.stderr.strip()[-800:])
    return json.loads(res.stdout)


def predicted_memory(ns, entries):
    """Bytes the model gives `entries` entries: entries x its per-entry bytes (slab object + extensions).

    The hash table is left out: the buckets do not change while the table fills, so
    the measured growth holds only entries.
    """
    if not available():
        return {"model_source": "unavailable", "entries_bytes": None}
    rec = ask(ns, {"peak_entries": int(entries), "headroom": 1.0})
    # The slab object plus the nf_ct_ext block of the extensions the facts show.
    per_entry = rec["memory"].get("per_entry_bytes", rec["memory"]["entry_bytes"])
    return {"model_source": "sizing.recommend memory.per_entry_bytes", "per_entry_bytes": per_entry,
            "entries_bytes": int(entries) * per_entry, "memory": rec["memory"], "facts_memory": rec["facts_memory"]}


def predicted_steady_entries(ns, rate_per_second, duration_seconds, time_wait_seconds):
    """The rate model's entries (Little's law) for short TCP connections, headroom 1."""
    if not available():
        return {"model_source": "unavailable", "entries": None}
    # The namespace already runs with time_wait_seconds; the model reads it from the facts.
    rec = ask(ns, {"_rate_model": {"tcp_new_per_second": rate_per_second, "tcp_duration_seconds": duration_seconds}})
    lifetime = rec["entries"]["rate_model"]["tcp"]["lifetime_seconds"]
    if abs(lifetime - duration_seconds - time_wait_seconds) > 1e-6:
        raise RuntimeError("the namespace's time_wait is not %s s (model lifetime %s s)" % (time_wait_seconds, lifetime))
    sources = rec["entries"]["sources"]
    return {"model_source": "sizing.recommend entries.sources.rate_model", "entries": sources["rate_model"],
            "entries_detail": rec["entries"]}
