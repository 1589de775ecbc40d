"""docs/kubernetes.md's per-release table is the planner's release table, row for row."""
import os
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "kubernetes.md")
SECTION = re.compile(r"<!-- release-table -->\n(.*?)<!-- /release-table -->", re.S)


def _raise_only(rel):
    if rel.raise_only:
        return "every key it writes"
    return "nf_conntrack_max" if rel.max_raise_only else "none"


def _at(rel, cpus):
    asked = kubeproxy.writes(kubeproxy.effective({}), cpus, {}, rel.version)
    return "{:,} / {:,}".format(asked["nf_conntrack_max"], asked["nf_conntrack_buckets"])


def rendered():
    lines = ["| Release | Config fields | Cap on maxPerCore x CPUs | Only raises (besides the hash size) "
             "| Layouts served | Defaults at 8 CPUs | Defaults at 64 CPUs |",
             "|---|---|---|---|---|---|---|"]
    for rel in kubeproxy.RELEASES.values():
        fields = "base + 1.29 fields" if "udpTimeout" in rel.fields else "base"
        cap = "{:,}".format(rel.cap) if rel.cap else "none"
        lines.append("| %d.%d | %s | %s | %s | %s | %s | %s |" % (
            rel.version + (fields, cap, _raise_only(rel), ", ".join(rel.layouts), _at(rel, 8), _at(rel, 64))))
    return "\n".join(lines) + "\n"


def test_the_documented_release_table_is_the_planners():
    with open(DOC) as f:
        text = f.read()
    found = SECTION.search(text)
    assert found, "docs/kubernetes.md lost its release table markers"
    assert found.group(1) == rendered(), "regenerate the table in docs/kubernetes.md:\n" + rendered()


def test_the_documented_defaults_and_cap_are_the_planners():
    with open(DOC) as f:
        text = f.read()
    for key, value in kubeproxy.DEFAULTS.items():
        shown = kubeproxy.go_duration(value) if key in kubeproxy.DURATIONS and value else str(value).lower()
        assert "`%s: %s`" % (key, shown) in text or (value == 0 and "`%s: 0s`" % key in text), key
    assert "{:,}".format(kubeproxy.MAX_CAP) in text
