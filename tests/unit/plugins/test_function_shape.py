# -*- coding: utf-8 -*-
"""No function in plugins/ is over about 80 lines or takes more than 7 parameters, unless it says why."""

import ast
import os

from unit.plugins.module_utils._conntrack.test_kernel import PLUGINS, plugin_sources

MAX_LINES = 80
MAX_PARAMETERS = 7

# (path under plugins/, function): each one has a comment above it that says why.
ALLOWED = set()


def parameter_count(node):
    args = node.args
    names = [a.arg for a in getattr(args, "posonlyargs", []) + args.args + args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return len([n for n in names if n not in ("self", "cls")])


def functions():
    for path, text in plugin_sources():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield os.path.relpath(path, PLUGINS), node


def test_functions_are_short_and_take_few_parameters():
    too_big = []
    for path, node in functions():
        lines = node.end_lineno - node.lineno + 1
        if (lines > MAX_LINES or parameter_count(node) > MAX_PARAMETERS) and (path, node.name) not in ALLOWED:
            too_big.append("%s:%d %s (%d lines, %d parameters)" % (path, node.lineno, node.name, lines,
                                                                   parameter_count(node)))
    assert too_big == []


def test_the_allowlist_holds_only_functions_that_need_it():
    found = dict(((path, node.name), node) for path, node in functions())
    for entry in ALLOWED:
        node = found.get(entry)
        if node is None:
            continue  # gone or renamed: nothing left to allow
        assert node.end_lineno - node.lineno + 1 > MAX_LINES or parameter_count(node) > MAX_PARAMETERS, entry
