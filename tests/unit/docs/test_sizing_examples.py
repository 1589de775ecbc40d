"""Every planning example in docs/sizing.md runs as written and returns the values the page shows."""
import json
import os
import re
import shlex

import pytest

from support.ansible import _bin, ansible_env
from support.kernel import run

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "sizing.md")
BLOCK = re.compile(r"```sh\n(ansible localhost -m netfilter\.conntrack\.recommend [^\n]+)\n```\s*\n```text\n(.*?)```",
                   re.S)


def examples():
    with open(DOC) as f:
        text = f.read()
    found = BLOCK.findall(text)
    assert len(found) >= 5, "docs/sizing.md lost its worked examples"
    return found


def lookup(rec, path):
    node = rec
    for key in path.split("."):
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


@pytest.mark.parametrize("command, expected", examples(), ids=lambda x: x[60:110] if x.startswith("ansible") else "")
def test_documented_example_runs_and_returns_what_the_page_says(command, expected):
    argv = shlex.split(command)
    argv[0] = _bin("ansible")
    proc = run(argv, check=False, env=ansible_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rec = json.loads(proc.stdout[proc.stdout.index("{"):])["recommendation"]
    for line in expected.strip().splitlines():
        path, want = line.split(": ", 1)
        got = lookup(rec, path)
        assert (got if isinstance(got, str) else json.dumps(got)) == want, "%s in %s" % (path, command)
