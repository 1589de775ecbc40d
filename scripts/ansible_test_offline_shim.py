"""Let `ansible-test --venv` bootstrap pip without its download site.

ansible-test fetches a get-pip script from a host this machine cannot reach, but
it first looks in ~/.ansible/test/cache/get_pip_<version>.py. We place a small
script there that installs pip from the stdlib's ensurepip and then hands the
requested packages to that pip (PyPI is reachable).
"""
import os
import re
import sys
from pathlib import Path

import ansible_test  # the venv's own copy, so the version matches

SHIM = '''\
import subprocess
import sys

subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True, stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install"] + args).returncode)
'''

source = (Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
versions = set(re.findall(r"pip='([0-9.]+)'", source)) or {"24.2"}
cache = Path(os.path.expanduser("~/.ansible/test/cache"))
cache.mkdir(parents=True, exist_ok=True)
for version in versions:
    path = cache / ("get_pip_%s.py" % version.replace(".", "_"))
    if not path.exists() or path.read_text() != SHIM:
        path.write_text(SHIM)
        print("placed %s" % path, file=sys.stderr)
