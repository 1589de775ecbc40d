# -*- coding: utf-8 -*-
"""The shape rules of plugins/: short functions with few parameters, classes and files of a readable
size, state set in __init__, kernel names imported from kernel."""

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


MAX_CLASS_LINES = 300
MAX_FILE_LINES = 600
MAX_ATTRIBUTES_OUTSIDE_INIT = 5


def test_classes_are_under_300_lines_and_files_under_600():
    too_big = []
    for path, text in plugin_sources():
        rel = os.path.relpath(path, PLUGINS)
        # The module files hold their DOCUMENTATION/RETURN blocks; the limit is for the code.
        if not rel.startswith("modules") and len(text.splitlines()) > MAX_FILE_LINES:
            too_big.append("%s (%d lines)" % (rel, len(text.splitlines())))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                lines = node.end_lineno - node.lineno + 1
                too_big.append("%s:%d class %s (%d lines)" % (rel, node.lineno, node.name, lines))
    assert too_big == []


def test_a_class_sets_its_state_in_init():
    # An attribute first set in a later method works only if that method ran first.
    scattered = []
    for path, text in plugin_sources():
        for cls in ast.walk(ast.parse(text)):
            if not isinstance(cls, ast.ClassDef):
                continue
            outside = set()
            for method in cls.body:
                if not isinstance(method, ast.FunctionDef) or method.name == "__init__":
                    continue
                for node in ast.walk(method):
                    if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                            and isinstance(node.value, ast.Name) and node.value.id == "self"):
                        outside.add(node.attr)
            if len(outside) > MAX_ATTRIBUTES_OUTSIDE_INIT:
                scattered.append("%s class %s: %s" % (os.path.relpath(path, PLUGINS), cls.name, sorted(outside)))
    assert scattered == []


def test_kernel_names_are_imported_from_kernel_not_re_exported():
    aliases = []
    for path, text in plugin_sources():
        if path.endswith(os.path.join("_conntrack", "kernel.py")):
            continue
        for node in ast.parse(text).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute)
                    and isinstance(node.value.value, ast.Name) and node.value.value.id == "kernel"):
                aliases.append("%s:%d" % (os.path.relpath(path, PLUGINS), node.lineno))
    assert aliases == []
