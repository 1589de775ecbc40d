"""Run our facts code (module_utils, no ansible) once and print what it took, as JSON.

    facts_probe.py COLLECTIONS_ROOT summary|walk

Run inside the namespace whose table is measured; the caller takes the peak RSS of this
process from wait4(). ``seconds`` is the time inside gather() itself, without the
interpreter's start-up.
"""
import json
import sys
import time


def main():
    sys.path.insert(0, sys.argv[1])
    mode = sys.argv[2]
    start = time.perf_counter()
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, reading
    imported = time.perf_counter()
    facts, warnings = gathering.FactsReader(reading.Reader(), gathering.ReadOptions(table=(mode == "walk"))).gather()
    done = time.perf_counter()
    table = facts.get("table") or {}
    print(json.dumps({
        "mode": mode, "seconds": round(done - imported, 4), "import_seconds": round(imported - start, 4),
        "count": (facts.get("usage") or {}).get("count"),
        "entries_read": table.get("entries_read"), "table_source": table.get("source"),
        "by_protocol": table.get("by_protocol"), "tcp_states": table.get("tcp_states"),
        "top_sources": (table.get("top_sources") or [])[:3], "warnings": warnings,
    }))


if __name__ == "__main__":
    main()
