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
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, reading, sizing
    facts = gathering.FactsReader(reading.Reader(), gathering.ReadOptions(table=inputs.pop("_table", False))).gather()[0]
    load = inputs.pop("_rate_model", None)
    if load is not None:
        # Little's law alone, under the timeouts this namespace runs with now: the model
        # itself, without the safety floors a recommendation puts on timeouts it proposes.
        full = dict.fromkeys(("tcp_new_per_second", "udp_new_per_second", "other_new_per_second"))
        full.update(tcp_duration_seconds=0, udp_duration_seconds=0, udp_stream_share=0)
        full.update(load)
        total, parts = sizing.rate_entries(full, facts["settings"])
        print(json.dumps({"entries": {"sources": {"rate_model": total}, "rate_model": parts,
                                      "timeouts": facts["settings"]}}))
        return
    rec = sizing.recommend(facts, **inputs)
    print(json.dumps({"memory": rec.get("memory"), "entries": rec.get("entries"),
                      "settings": rec.get("settings"), "warnings": rec.get("warnings"),
                      "facts_memory": facts.get("memory")}))


if __name__ == "__main__":
    main()
