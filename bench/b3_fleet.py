"""B3: fleet rollout. The same key set on 20 podman hosts, our tune playbook against the anchor style.

- ours:   ansible-playbook netfilter.conntrack.tune with tune_settings (every key in one
          settings call per host, then a verify read)
- anchor: what devsec.hardening and most roles do: an ansible.posix.sysctl loop, one
          module run per key, plus community.general.modprobe for the hashsize

Each method runs twice on fresh containers (first run changes, second must report
changed=0). Both use the containers.podman.podman connection and the same forks.
The like-for-like comparison runs the tune playbook over all hosts at once without the
health gate (the anchor playbook has neither batches nor a gate); the tune playbook's
defaults (a canary, then batches of 25 %, a 2 x 5 s health gate per batch) are timed too.

The key set is the per-namespace timeouts: nf_conntrack_max and the buckets are global
to the kernel and read-only inside containers (tune reports them skipped, sysctl fails).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common
from support.ansible import run_playbook

# A NAT gateway's timeouts (kube-proxy's established value, shorter waits); every value
# differs from the kernel default, so the first run has something to change.
KEYS = {
    "nf_conntrack_tcp_timeout_established": 86400,
    "nf_conntrack_tcp_timeout_time_wait": 60,
    "nf_conntrack_tcp_timeout_close_wait": 3600,
    "nf_conntrack_tcp_timeout_fin_wait": 60,
    "nf_conntrack_tcp_timeout_last_ack": 20,
    "nf_conntrack_tcp_timeout_syn_sent": 60,
    "nf_conntrack_tcp_timeout_syn_recv": 30,
    "nf_conntrack_tcp_timeout_close": 5,
    "nf_conntrack_tcp_timeout_max_retrans": 120,
    "nf_conntrack_tcp_timeout_unacknowledged": 120,
    "nf_conntrack_udp_timeout": 20,
    "nf_conntrack_udp_timeout_stream": 60,
    "nf_conntrack_icmp_timeout": 10,
    "nf_conntrack_generic_timeout": 300,
}
HASHSIZE = 262144

ANCHOR_PLAYBOOK = """---
- name: Apply conntrack settings the anchor way, one module run per key
  hosts: all
  gather_facts: false
  tasks:
    - name: Set each net.netfilter sysctl
      ansible.posix.sysctl:
        name: "net.netfilter.{{ item.key }}"
        value: "{{ item.value }}"
        sysctl_file: /etc/sysctl.d/90-anchor-conntrack.conf
        state: present
        reload: true
      loop: "{{ anchor_sysctls | dict2items }}"

    # community.general.modprobe fails where nf_conntrack is built in (no /proc/modules,
    # no modules.builtin), as on this kernel, so anchor roles guard it like this.
    - name: Check whether kernel modules are listed
      ansible.builtin.stat:
        path: /proc/modules
      register: anchor_proc_modules

    - name: Persist the conntrack hashsize
      community.general.modprobe:
        name: nf_conntrack
        params: "hashsize={{ anchor_hashsize }}"
        persistent: present
        state: present
      when: anchor_proc_modules.stat.exists
"""


def _podman(*args, check=True):
    return subprocess.run(["podman"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=check)


def test_image():
    return subprocess.run([os.path.join(common.ROOT, "scripts", "test-image")], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout.strip().splitlines()[-1]


class Fleet(object):
    """n podman hosts without a network; removed on exit."""

    def __init__(self, n, image, tag):
        self.names = ["ncbench-%d-%s-%02d" % (os.getpid(), tag, i) for i in range(n)]
        self.image = image
        self.started = []

    def __enter__(self):
        try:
            for name in self.names:
                _podman("run", "-d", "--name", name, "--network", "none", "--security-opt", "unmask=/proc/sys",
                        "--cap-add", "NET_ADMIN", self.image, "sleep", "infinity")
                self.started.append(name)
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def remove(self):
        if self.started:
            # Only the containers this object started, by name.
            _podman("rm", "-f", "-t", "0", *self.started, check=False)
        self.started = []

    def inventory(self, directory):
        path = os.path.join(directory, "fleet.ini")
        with open(path, "w") as f:
            f.write("[fleet]\n")
            for name in self.names:
                f.write("%s ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n"
                        % name)
        return path

    def read_key(self, key):
        out = {}
        for name in self.names:
            res = _podman("exec", name, "cat", "/proc/sys/net/netfilter/%s" % key, check=False)
            out[name] = res.stdout.strip()
        return out


def _changed(recap):
    return sum(r["changed"] for r in recap.values())


def _failed(recap):
    return sum(r["failed"] + r["unreachable"] for r in recap.values())


def _timed(playbook, inventory, extra_vars, env):
    start = time.monotonic()
    proc, recap = run_playbook(playbook, extra_vars=extra_vars, inventory=inventory, env=env)
    seconds = time.monotonic() - start
    out = {"seconds": round(seconds, 2), "exit_code": proc.returncode, "changed": _changed(recap),
           "failed": _failed(recap), "hosts": len(recap)}
    if "ANSIBLE_CALLBACKS_ENABLED" in env:
        out["stdout"] = proc.stdout
    if proc.returncode != 0:
        out["output_tail"] = proc.stdout[-3000:] + proc.stderr[-1500:]
    return out


def _method(name, n, image, playbook, extra_vars, env, workdir, keys):
    """Two runs on a fresh fleet; returns wall times, changed counts and a check of the values."""
    with Fleet(n, image, name) as fleet:
        inventory = fleet.inventory(workdir)
        first = _timed(playbook, inventory, extra_vars, env)
        second = _timed(playbook, inventory, extra_vars, env)
        values = fleet.read_key("nf_conntrack_tcp_timeout_established")
    applied = all(v == str(keys["nf_conntrack_tcp_timeout_established"]) for v in values.values())
    out = {"first": first, "second": second, "values_applied_on_every_host": applied,
           "seconds_per_host_first": round(first["seconds"] / n, 3)}
    common.log("%-14s first %.1f s (changed %d, failed %d), second %.1f s (changed %d), applied=%s" % (
        name, first["seconds"], first["changed"], first["failed"], second["seconds"], second["changed"], applied))
    return out


def run(hosts=20, forks=None, with_defaults=True, key_count=None, results_dir=None, name="b3"):
    forks = forks or hosts
    # The smoke version applies fewer keys; established always, since it is checked on every host.
    keys = dict(list(KEYS.items())[:key_count]) if key_count else dict(KEYS)
    env = common.ansible_env()
    env["ANSIBLE_FORKS"] = str(forks)
    env["CONTAINERS_CONF"] = os.environ.get("CONTAINERS_CONF", os.path.join(common.ROOT, "scripts", "containers.conf"))
    os.environ["CONTAINERS_CONF"] = env["CONTAINERS_CONF"]
    image = test_image()
    result = {"parameters": {"hosts": hosts, "forks": forks, "keys": keys, "image": image,
                             "connection": "containers.podman.podman"}}
    workdir = tempfile.mkdtemp(prefix="nc-bench-b3-")
    try:
        anchor = os.path.join(workdir, "anchor.yml")
        with open(anchor, "w") as f:
            f.write(ANCHOR_PLAYBOOK)
        tune_vars = {"tune_settings": keys, "tune_serial": "100%", "tune_health_gate": False}
        result["tune"] = _method("tune", hosts, image, "netfilter.conntrack.tune", tune_vars, env, workdir, keys)
        result["anchor"] = _method("anchor", hosts, image, anchor,
                                   {"anchor_sysctls": keys, "anchor_hashsize": HASHSIZE}, env, workdir, keys)
        if with_defaults:
            result["tune_defaults"] = _method("tune-defaults", hosts, image, "netfilter.conntrack.tune",
                                              {"tune_settings": keys}, env, workdir, keys)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    t, a = result["tune"], result["anchor"]
    result["speedup_first_run"] = common.ratio(a["first"]["seconds"], t["first"]["seconds"], 2)
    result["speedup_second_run"] = common.ratio(a["second"]["seconds"], t["second"]["seconds"], 2)
    tune_ok = t["first"]["failed"] == 0 and t["first"]["exit_code"] == 0 and t["values_applied_on_every_host"]
    result["goals"] = {
        "tune_3x_faster_than_anchor": tune_ok and (result["speedup_first_run"] or 0) >= 3.0,
        "tune_second_run_changed_0": tune_ok and t["second"]["changed"] == 0 and t["second"]["exit_code"] == 0,
        "tune_first_run_ok": tune_ok,
        "anchor_first_run_ok": a["first"]["failed"] == 0 and a["values_applied_on_every_host"],
    }
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s" % path)
    return result


TASK_TIME = re.compile(r"^(?P<task>.+?) -+ (?P<seconds>[\d.]+)s$", re.M)


def _profiled(playbook, inventory, extra_vars, env, top=8):
    """A run with ansible.posix.profile_tasks: wall time and the slowest tasks (each task's wall time over all hosts)."""
    env = dict(env, ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
    out = _timed(playbook, inventory, extra_vars, env)
    proc_out = out.pop("stdout", "")
    tasks = [{"task": m.group("task").strip(), "seconds": float(m.group("seconds"))}
             for m in TASK_TIME.finditer(proc_out)]
    if not tasks and out["exit_code"] == 0:
        # A total of 0 s would read as free tasks: the callback printed no timings at all.
        raise common.MeasurementError("ansible.posix.profile_tasks printed no task times: %s" % proc_out[-300:])
    out["tasks"] = sorted(tasks, key=lambda t: -t["seconds"])[:top]
    out["tasks_seconds_total"] = round(sum(t["seconds"] for t in tasks), 2)
    return out


def _connection_costs(fleet, workdir, env):
    """What the podman connection costs alone (raw: no Python on the host) and with a trivial module (ping)."""
    inventory = fleet.inventory(workdir)
    costs = {}
    for label, module, args in (("raw_true", "ansible.builtin.raw", "true"), ("ping", "ansible.builtin.ping", None)):
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "fleet", "-i", inventory, "-m", module]
        if args:
            cmd += ["-a", args]
        start = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              env=support_env(env), check=False)
        costs[label] = {"seconds": round(time.monotonic() - start, 2), "exit_code": proc.returncode}
    return costs


def support_env(env):
    from support.ansible import ansible_env
    return ansible_env(env)


def _scale_point(n, image, env, workdir, keys, forks, with_anchor=True):
    env = dict(env, ANSIBLE_FORKS=str(forks))
    tune_vars = {"tune_settings": keys, "tune_serial": "100%", "tune_health_gate": False}
    row = {"hosts": n, "forks": forks}
    methods = [("tune", "netfilter.conntrack.tune", tune_vars)]
    if with_anchor:
        methods.append(("anchor", os.path.join(workdir, "anchor.yml"),
                        {"anchor_sysctls": keys, "anchor_hashsize": HASHSIZE}))
    for label, playbook, extra in methods:
        with Fleet(n, image, "%s%d" % (label[0], n)) as fleet:
            inventory = fleet.inventory(workdir)
            if label == "tune":
                row["connection"] = _connection_costs(fleet, workdir, env)
            run_ = _profiled(playbook, inventory, extra, env)
            values = fleet.read_key("nf_conntrack_tcp_timeout_established")
        run_["values_applied_on_every_host"] = all(v == str(keys["nf_conntrack_tcp_timeout_established"])
                                                   for v in values.values())
        run_["seconds_per_host"] = round(run_["seconds"] / n, 3)
        row[label] = run_
        common.log("B3 scale %d hosts, forks %d: %-6s %.1f s (%.2f s per host, changed %d, failed %d)" % (
            n, forks, label, run_["seconds"], run_["seconds_per_host"], run_["changed"], run_["failed"]))
    if with_anchor:
        row["anchor_over_tune"] = common.ratio(row["anchor"]["seconds"], row["tune"]["seconds"], 2)
    return row


def scale(hosts=(10, 20, 50), forks=None, key_count=None, anchor_max_hosts=20, results_dir=None, name="b3_scale"):
    """First runs only, at several fleet sizes, with per-task timings and the connection's own cost.

    forks: None means one fork per host, as B3 does; the fork count is recorded per row.
    anchor_max_hosts: the anchor (one module run per key) only up to that fleet size.
    """
    keys = dict(list(KEYS.items())[:key_count]) if key_count else dict(KEYS)
    env = common.ansible_env()
    env["CONTAINERS_CONF"] = os.environ.get("CONTAINERS_CONF", os.path.join(common.ROOT, "scripts", "containers.conf"))
    os.environ["CONTAINERS_CONF"] = env["CONTAINERS_CONF"]
    image = test_image()
    result = {"parameters": {"hosts": list(hosts), "forks": forks, "keys": keys, "image": image,
                             "connection": "containers.podman.podman"}, "rows": []}
    workdir = tempfile.mkdtemp(prefix="nc-bench-b3s-")
    try:
        with open(os.path.join(workdir, "anchor.yml"), "w") as f:
            f.write(ANCHOR_PLAYBOOK)
        for n in hosts:
            result["rows"].append(_scale_point(n, image, env, workdir, keys, forks or n,
                                               with_anchor=anchor_max_hosts is None or n <= anchor_max_hosts))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    left = _podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    result["containers_left"] = [c for c in left if c.startswith("ncbench-%d-" % os.getpid())]
    rows = result["rows"]
    for label in ("tune", "anchor"):
        result["%s_growth" % label] = [{"hosts": r["hosts"], "seconds": r[label]["seconds"],
                                        "seconds_per_host": r[label]["seconds_per_host"]} for r in rows if label in r]
    result["goals"] = {"every_run_ok": all(r[m]["failed"] == 0 and r[m]["exit_code"] == 0
                                           and r[m]["values_applied_on_every_host"] for r in rows
                                           for m in ("tune", "anchor") if m in r),
                       "containers_removed": not result["containers_left"]}
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s" % path)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
