"""Run our modules and playbooks through real ansible, the way users do."""
import json
import os
import re
import sys
import tempfile

from .kernel import run

RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
                   r"\s+failed=(?P<failed>\d+)", re.M)


def ansible_env(extra=None):
    env = dict(os.environ)
    env.setdefault("ANSIBLE_PYTHON_INTERPRETER", sys.executable)
    env.setdefault("ANSIBLE_HOST_KEY_CHECKING", "False")
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    env.setdefault("ANSIBLE_RETRY_FILES_ENABLED", "False")
    env.setdefault("ANSIBLE_DEPRECATION_WARNINGS", "False")
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)  # None unsets: a guest's inventory names its own python
        else:
            env[key] = value
    return env


def _bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def run_module(module, args=None, netns=None, check=False, diff=False, env=None, etc=None, timeout=None,
               target=("localhost", "localhost,")):
    """Run one module with ``ansible -m``, on localhost unless ``target`` is (host, inventory);
    returns its result dict. ``etc``: a support.etc.EtcOverlay, so that the real /etc is never written."""
    if "." not in module:
        module = "netfilter.conntrack." + module
    with tempfile.TemporaryDirectory() as tree:
        host, inventory = target
        cmd = [_bin("ansible"), host, "-i", inventory, "-m", module, "-t", tree]
        if inventory == "localhost,":
            cmd += ["-c", "local"]
        if args:
            # An empty JSON object would reach the module as a raw parameter.
            cmd += ["-a", json.dumps(args)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if etc is not None:
            cmd = etc.argv(cmd)
        if netns is not None:
            cmd = netns.argv(cmd)
        proc = run(cmd, check=False, env=ansible_env(env), timeout=timeout)
        path = os.path.join(tree, host)
        if not os.path.exists(path):
            raise RuntimeError("no result from %s: %s\n%s" % (module, proc.stdout, proc.stderr))
        with open(path) as f:
            result = json.load(f)
    # The tree callback leaves "failed" out of failed results; the exit code says it.
    result.setdefault("failed", proc.returncode != 0)
    result["_stdout"] = proc.stdout
    result["_stderr"] = proc.stderr
    return result


def run_playbook(playbook, extra_vars=None, inventory="localhost,", netns=None, check=False, diff=False,
                 env=None, args=(), etc=None):
    """Run a playbook (a path or an FQCN); returns (proc, {host: recap dict})."""
    cmd = [_bin("ansible-playbook"), "-i", inventory, playbook]
    if inventory == "localhost,":
        cmd += ["-c", "local"]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    cmd += list(args)
    if etc is not None:
        cmd = etc.argv(cmd)
    if netns is not None:
        cmd = netns.argv(cmd)
    proc = run(cmd, check=False, env=ansible_env(env))
    recap = {m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"}
             for m in RECAP.finditer(proc.stdout)}
    return proc, recap
