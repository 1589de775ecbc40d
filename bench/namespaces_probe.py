"""Run namespaces.read_namespaces once (module_utils, no ansible) and print what it took, as JSON.

    namespaces_probe.py COLLECTIONS_ROOT [PREFIX]

``seconds`` is the time inside read_namespaces() without the interpreter's start-up; ``counts``
maps each ip netns name starting with PREFIX to the entries the facts give it.
"""
import json
import sys
import time


def main():
    sys.path.insert(0, sys.argv[1])
    prefix = sys.argv[2] if len(sys.argv) > 2 else ""
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import namespaces, reading
    r = reading.Reader("/")
    start = time.perf_counter()
    spaces = namespaces.read_namespaces(r)
    seconds = time.perf_counter() - start
    counts = {}
    for ns in spaces:
        name = (ns.get("owner") or {}).get("netns_name")
        if name and name.startswith(prefix):
            counts[name] = ns["entries"]
    print(json.dumps({"seconds": round(seconds, 4), "namespaces": len(spaces),
                      "readable": sum(1 for ns in spaces if ns["readable"]), "counts": counts,
                      "with_nsid": sum(1 for ns in spaces if ns["nsid"] is not None), "warnings": r.warnings}))


if __name__ == "__main__":
    main()
