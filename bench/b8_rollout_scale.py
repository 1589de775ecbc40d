"""B8: the tune rollout's controller cost at 100 and 1,000 inventory hosts, on a mock connection.

No host is touched and no module code runs: every inventory host uses the bench-only
``conntrack_mock`` connection (bench/plugins/connection), which reads the module name and
arguments from the pipelined AnsiballZ payload and answers with a result shaped like the real
module's, from replies recorded on this machine (bench/fixtures/b8_replies.json), varied per host
(table size, fill, load; every fifth host is already at its recommendation, so its settings call
is ok, not changed). What is measured is Ansible's controller work and the role's own:
templating, the gate's filter, the strategy, forks and result handling. A real rollout adds the
module run times and the two sample windows per host.

Runs, each an ``ansible-playbook netfilter.conntrack.tune`` with forks 25 and a 1 s health sample
window (``conntrack_tune_health_sample_seconds=1``, which the mock does not wait for):

- ``default``: serial [1, '25%'] (the playbook's default), at each size;
- ``fixed``: serial 100, at each size;
- ``halt``: serial [1, '25%'] with one host of batch 2 reporting a drop rate after tuning: the gate
  halts the rollout after that batch and the later hosts get no call at all (asserted);
- ``fixed_halt`` (above the smallest size, instead of both): serial 100 with one regressing host
  in batch 3, so that two full batches of 100 give a fixed batch's cost in the big inventory;
- ``baseline``: the same hosts, serial and forks running ansible.builtin.ping once (Ansible's own
  cost per host and batch; the tune role runs 17 tasks per host).

Per run: wall time and peak RSS (GNU time), the seconds of each batch and of each task in it
(bench/plugins/callback/batch_timing.py), module calls per kind (the mock's call log). Growth is
seconds per host at 1,000 over seconds per host at 100: 1.0 is linear.
"""
import json
import os
import shutil
import sys
import tempfile

import _paths  # noqa: F401  pylint: disable=unused-import
import common

PLUGINS = os.path.join(common.ROOT, "bench", "plugins")
FORKS = 25
SAMPLE_SECONDS = 1
PING = """---
- name: Ping every host in the tune playbook's batches (baseline)
  hosts: all
  gather_facts: false
  serial: %s
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def batch_sizes(count, serial):
    """The batch sizes ansible-core makes of count hosts for a serial list (a percentage rounds down,
    at least 1; the last entry repeats)."""
    sizes, left, i = [], count, 0
    while left > 0:
        item = serial[min(i, len(serial) - 1)]
        size = max(1, int(count * int(item[:-1]) / 100.0)) if isinstance(item, str) else int(item)
        sizes.append(min(size, left))
        left -= sizes[-1]
        i += 1
    return sizes


def write_inventory(workdir, count, regress=()):
    path = os.path.join(workdir, "hosts.ini")
    with open(path, "w") as f:
        # An explicit interpreter, as big fleets set it: no discovery round trip per host.
        f.write("[all:vars]\nansible_connection=conntrack_mock\nansible_python_interpreter=/usr/bin/python3\n"
                "[fleet]\n")
        for i in range(count):
            f.write("node%05d bench_mock_index=%d%s\n" % (i, i, " bench_mock_regress=true" if i in regress else ""))
    return path


def one_run(count, kind, serial, forks=FORKS, regress=()):
    workdir = tempfile.mkdtemp(prefix="nc-b8-")
    try:
        inventory = write_inventory(workdir, count, regress)
        calls, timing = os.path.join(workdir, "calls.log"), os.path.join(workdir, "timing.json")
        env = dict(os.environ, **common.ansible_env())
        env.update(ANSIBLE_CONNECTION_PLUGINS=os.path.join(PLUGINS, "connection"),
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(PLUGINS, "callback"),
                   ANSIBLE_CALLBACKS_ENABLED="batch_timing", ANSIBLE_FORKS=str(forks),
                   ANSIBLE_DISPLAY_OK_HOSTS="False", ANSIBLE_DISPLAY_SKIPPED_HOSTS="False",
                   NC_BENCH_MOCK_LOG=calls, NC_BENCH_TIMING=timing)
        if kind == "baseline":
            playbook = os.path.join(workdir, "ping.yml")
            with open(playbook, "w") as f:
                f.write(PING % json.dumps(serial))
            extra = []
        else:
            playbook = "netfilter.conntrack.tune"
            extra = ["-e", json.dumps({"conntrack_tune_serial": serial,
                                       "conntrack_tune_health_sample_seconds": SAMPLE_SECONDS})]
        res = common.measure([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
                              playbook] + extra, env=env, timeout_seconds=3600)
        if res["exit_code"] != (2 if regress else 0):
            raise RuntimeError("%s at %d hosts exited %d:\n%s\n%s" % (
                kind, count, res["exit_code"], res["stdout"][-3000:], res["stderr"][-3000:]))
        with open(timing) as f:
            timed = json.load(f)
        called, by_kind = set(), {}
        with open(calls) as f:
            for line in f:
                host, module, what = line.split()
                called.add(host)
                by_kind["%s %s" % (module, what)] = by_kind.get("%s %s" % (module, what), 0) + 1
        batches = [{"hosts": max([t["hosts"] for t in b["tasks"]] or [0]), "seconds": b["seconds"],
                    "failed": b["failed"], "tasks": len(b["tasks"])} for b in timed["batches"]]
        tasks = {}
        for b in timed["batches"]:
            for t in b["tasks"]:
                name = t["name"].split(" : ", 1)[-1]
                tasks[name] = round(tasks.get(name, 0.0) + t["seconds"], 4)
        return {"hosts": count, "kind": kind, "serial": serial, "forks": forks, "seconds": res["seconds"],
                "seconds_per_host": round(res["seconds"] / count, 5), "peak_rss_bytes": res["peak_rss_bytes"],
                "user_seconds": res["user_seconds"], "system_seconds": res["system_seconds"],
                "batches": batches, "task_seconds": tasks, "module_calls": by_kind,
                "hosts_called": sorted(called)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check_halt(row, count, serial, regress_host, halt_batch):
    """The rollout stopped after the batch with the regressing host: later hosts got no call."""
    sizes = batch_sizes(count, serial)
    reached = sum(sizes[:halt_batch])
    expected = ["node%05d" % i for i in range(reached)]
    problems = []
    if len(row["batches"]) != halt_batch:
        problems.append("%d batches ran, expected %d" % (len(row["batches"]), halt_batch))
    if row["hosts_called"] != expected:
        problems.append("hosts called: %d, expected the first %d" % (len(row["hosts_called"]), reached))
    if row["batches"] and row["batches"][-1]["failed"] != ["node%05d" % regress_host]:
        problems.append("failed in the last batch: %s" % row["batches"][-1]["failed"])
    return {"halted_after_batch": len(row["batches"]), "hosts_reached": len(row["hosts_called"]),
            "hosts_untouched": count - len(row["hosts_called"]), "regressing_host": "node%05d" % regress_host,
            "ok": not problems, "problems": problems}


def _summary(row):
    rows = row["batches"]
    tune_batches = [b for b in rows if b["hosts"] > 1]
    return {"canary_seconds": rows[0]["seconds"] if rows else None,
            "batch_seconds": [b["seconds"] for b in rows],
            "seconds_per_host_in_batches": round(sum(b["seconds"] for b in tune_batches)
                                                 / float(sum(b["hosts"] for b in tune_batches) or 1), 5)}


def plan(sizes, fixed_serial, halt_batch):
    """(hosts, kind, serial, halt batch or None) per run. At the smallest size every kind; above it
    the baseline, the default rollout, and serial fixed_serial halted in batch halt_batch + 1: its
    full batches before the halt give the cost of a fixed batch in the big inventory."""
    default = [1, "25%"]
    runs = []
    for count in sizes:
        runs += [(count, "baseline", default, None), (count, "default", default, None)]
        if count == sizes[0]:
            runs += [(count, "fixed", [fixed_serial], None), (count, "halt", default, halt_batch)]
        else:
            runs.append((count, "fixed_halt", [fixed_serial], halt_batch + 1))
    return runs


def run(sizes=(100, 1000), fixed_serial=100, forks=FORKS, halt_batch=2, results_dir=None):
    result = {"benchmark": "b8", "method": "mock connection (bench/plugins/connection/conntrack_mock.py): "
              "controller side only, no module code runs", "forks": forks, "health_sample_seconds": SAMPLE_SECONDS,
              "runs": [], "halt": [], "growth": [], "ratios": []}
    for count, kind, serial, halt_at in plan(sizes, fixed_serial, halt_batch):
        regress = ()
        if halt_at:
            batches = batch_sizes(count, serial)
            regress = (sum(batches[:halt_at - 1]) + batches[halt_at - 1] // 2,)
        common.log("b8: %s, %d hosts, serial %s, forks %d" % (kind, count, serial, forks))
        row = one_run(count, kind, serial, forks, regress)
        row.update(_summary(row))
        if halt_at:
            row["halt"] = check_halt(row, count, serial, regress[0], halt_at)
            result["halt"].append(dict(row["halt"], hosts=count, serial=serial))
        del row["hosts_called"]
        result["runs"].append(row)
        common.log("b8: %s, %d hosts: %.1f s, %.1f ms per host, peak RSS %.0f MiB, batches %s" % (
            kind, count, row["seconds"], 1000 * row["seconds_per_host"], row["peak_rss_bytes"] / 1048576.0,
            row["batch_seconds"]))
        common.write_result("b8", result, results_dir)
    by = dict(((r["kind"], r["hosts"]), r) for r in result["runs"])
    for kind in ("baseline", "default"):
        for small, big in zip(sizes, sizes[1:]):
            if (kind, small) in by and (kind, big) in by:
                result["growth"].append({
                    "kind": kind, "from": small, "to": big, "hosts_ratio": common.ratio(big, small),
                    "seconds_ratio": common.ratio(by[kind, big]["seconds"], by[kind, small]["seconds"]),
                    "per_host_ratio": common.ratio(by[kind, big]["seconds_per_host"], by[kind, small]["seconds_per_host"]),
                    "peak_rss_ratio": common.ratio(by[kind, big]["peak_rss_bytes"], by[kind, small]["peak_rss_bytes"])})
    # The same batch of fixed_serial hosts in a small and in a big inventory: does a batch cost
    # more when the inventory around it is bigger?
    small_fixed = by.get(("fixed", sizes[0]))
    for count in sizes[1:]:
        big = by.get(("fixed_halt", count))
        if small_fixed and big and len(big["batches"]) > 1:
            full = [b["seconds"] for b in big["batches"][:-1]]
            result["growth"].append({"kind": "fixed batch", "from": sizes[0], "to": count,
                                     "hosts_ratio": common.ratio(count, sizes[0]),
                                     "batch_seconds_ratio": common.ratio(common.median(full),
                                                                         small_fixed["batches"][0]["seconds"])})
    for count in sizes:
        if ("default", count) in by and ("baseline", count) in by:
            result["ratios"].append({"hosts": count, "kind": "default", "over_baseline": common.ratio(
                by["default", count]["seconds"], by["baseline", count]["seconds"])})
    result["errors"] = ["halt at %d hosts: %s" % (h["hosts"], "; ".join(h["problems"])) for h in result["halt"]
                        if not h["ok"]]
    result["machine"] = common.machine()
    common.write_result("b8", result, results_dir)
    return result
