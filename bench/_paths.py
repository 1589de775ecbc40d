"""Put tests/ (for ``support``), bench/ and the collection's import root on sys.path."""
import importlib.util
import os
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
TESTS = os.path.join(ROOT, "tests")
RESULTS = os.path.join(BENCH, "results")

for path in (TESTS, BENCH):
    if path not in sys.path:
        sys.path.insert(0, path)


def _load_tests_conftest():
    # tests/conftest.py exposes this checkout as ansible_collections.netfilter.conntrack;
    # loaded under another name so that it never clashes with bench/conftest.py.
    name = "_nc_tests_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(TESTS, "conftest.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_load_tests_conftest()
