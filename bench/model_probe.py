"""Ask our recommend code what it predicts, from inside a namespace, and print it as JSON.

    model_probe.py COLLECTIONS_ROOT '{"peak_entries": 100000, ...}'

It gathers this namespace's facts (what `netfilter.conntrack.recommend` does on a host)
and calls the sizing module with the given inputs, so that extensions such as NAT are
decided by the same facts the module would see.
"""
import json
import sys


def main():
    sys.path.insert(0, sys.argv[1])
    inputs = json.loads(sys.argv[2])
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import reading, sizing
    facts = reading.gather(table=inputs.pop("_table", False))[0]
    rec = sizing.recommend(facts, **inputs)
    print(json.dumps({"memory": rec.get("memory"), "entries": rec.get("entries"),
                      "settings": rec.get("settings"), "warnings": rec.get("warnings"),
                      "facts_memory": facts.get("memory")}))


if __name__ == "__main__":
    main()
