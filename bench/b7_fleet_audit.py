"""B7: the fleet audit on the controller at 100, 1,000 and 10,000 hosts, from a fact cache.

No managed host is touched: per-host conntrack facts are generated from the recorded audit
fixture (tests/unit/fixtures/audit/fleet.json), varied into NAT gateways, Kubernetes nodes
with 30 pods' worth of entries, idle hosts, hosts that drop, and hosts whose facts are missing
(they show as failed), and written to a ``jsonfile`` fact cache. Two ways to audit that cache
are measured in the same run:

- ``cache``: the ``netfilter.conntrack.audit_cache`` playbook, a play on the controller alone
  whose one task (the cache_audit action) judges every host and writes the report (the way the
  docs give for big fleets);
- ``per_host``: the audit role's main entry point over the whole inventory with
  ``conntrack_audit_gather=false``, a task per host (the baseline, run at the small sizes only:
  its projection at the bigger ones is recorded).

The cache playbook runs over a ``jsonfile`` cache at every size and over a ``redis`` cache
(Debian's redis-server, started by the benchmark on 127.0.0.1 at a free port with no
persistence and a memory cap, stopped by its PID) at the sizes given for it.

Per size: wall time and peak RSS of the ansible-playbook run (GNU time; the largest process,
the controller or a fork), the time of each role task (profile_tasks), the report sizes, and
the time to render each format from the same report in this process (the filter's own cost,
without Ansible around it). Growth is each figure divided by the one at the previous size,
against the host ratio: 10 means linear.
"""
import contextlib
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common

FIXTURE = os.path.join(common.ROOT, "tests", "unit", "fixtures", "audit", "fleet.json")
KINDS = ("nat", "k8s", "idle", "dropping", "nat", "k8s", "idle", "nat", "k8s", "failed")
FORKS = 25
GOALS = {"seconds_max_at_10000": 120.0, "peak_rss_bytes_max_at_10000": 2 * 1024 ** 3}
PLAYBOOK = """---
- name: Audit the fleet from the fact cache, a task per host
  hosts: all
  gather_facts: false
  roles:
    - role: netfilter.conntrack.conntrack_audit
      vars:
        conntrack_audit_gather: false
        conntrack_audit_dir: %s
        conntrack_audit_formats: [json, csv, markdown, html]
"""
# The task that builds the report, per method.
AGGREGATION_TASK = {"per_host": "Judge the fleet once", "cache": "Judge every cached host and write the reports"}


_SOURCES = {"nat": "gw-ok-1", "k8s": "k8s-crit-3", "idle": "lb-warn-2", "dropping": "lb-warn-2"}


def _fixture():
    with open(FIXTURE) as f:
        return dict((h["host"], h) for h in json.load(f))


def _templates():
    hosts = _fixture()
    return dict((kind, hosts[name]["facts"]) for kind, name in _SOURCES.items())


def plugin_only(count):
    """The Python side alone at count hosts, in this process: records (facts generated as for
    the role, the fixture's recommendation of the same kind) judged by build_report, then each
    format rendered. What Ansible adds around it is the difference to the role's run."""
    from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_render
    hosts = _fixture()
    templates = dict((kind, hosts[name]["facts"]) for kind, name in _SOURCES.items())
    records = []
    for i in range(count):
        facts = host_facts(i, templates)
        kind = KINDS[i % len(KINDS)]
        records.append({"host": "node%05d" % i, "status": "ok" if facts else "failed",
                        "error": None if facts else "no conntrack facts in the fact cache", "facts": facts,
                        "recommendation": hosts[_SOURCES[kind]]["recommendation"] if facts else None})
    start = time.perf_counter()
    report = _audit.build_report(records)
    out = {"hosts": count, "build_report_seconds": round(time.perf_counter() - start, 3), "render_seconds": {},
           "report_bytes": {}}
    for fmt in ("json", "csv", "markdown", "html"):
        start = time.perf_counter()
        text = _audit_render.render(report, fmt)
        out["render_seconds"][fmt] = round(time.perf_counter() - start, 3)
        out["report_bytes"][fmt] = len(text.encode("utf-8"))
    return out


def plugin_sizes(sizes):
    """plugin_only in a fresh interpreter per size, so that its peak RSS is its own."""
    rows = []
    for count in sizes:
        res = common.measure([sys.executable, os.path.abspath(__file__), "plugin", str(count)],
                             env=dict(os.environ, **common.ansible_env()))
        if res["exit_code"] != 0:
            raise RuntimeError("plugin-only run at %d hosts failed: %s" % (count, res["stderr"][-2000:]))
        row = json.loads(res["stdout"])
        row.update(seconds=res["seconds"], peak_rss_bytes=res["peak_rss_bytes"])
        rows.append(row)
        mib = row["peak_rss_bytes"] / 1048576.0
        common.log("b7: plugin only, %d hosts: %.1f s, peak RSS %.0f MiB" % (count, row["seconds"], mib))
    return rows


def host_facts(i, templates):
    """The conntrack facts of host i (None: not in the cache), deterministic in i."""
    kind = KINDS[i % len(KINDS)]
    if kind == "failed":
        return None
    facts = copy.deepcopy(templates[kind])
    usage = facts.get("usage") or {}
    limit = usage.get("max") or 262144
    # Spread the fill so that the fleet has every severity, not ten thousand copies of four.
    fill = {"nat": 0.2 + (i % 7) / 10.0, "k8s": 0.5 + (i % 5) / 10.0, "idle": 0.01, "dropping": 0.85}[kind]
    if usage:
        usage["count"] = int(limit * min(fill, 0.99))
        usage["usage_ratio"] = round(usage["count"] / float(limit), 4)
    if kind == "dropping":
        for key in ("drop", "early_drop", "insert_failed"):
            if key in (facts.get("stats") or {}):
                facts["stats"][key] = 100 + i
    return facts


# The fact cache plugins measured, as ANSIBLE_CACHE_PLUGIN names them.
CACHE_PLUGINS = {"jsonfile": "ansible.builtin.jsonfile", "redis": "community.general.redis"}
REDIS_MAXMEMORY = "2gb"


@contextlib.contextmanager
def redis_server(workdir):
    """A private redis-server on 127.0.0.1 at a free port: no persistence, at most
    REDIS_MAXMEMORY, refusing writes past it; stopped by its PID. Yields its _uri."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = os.path.join(workdir, "redis")
    os.makedirs(home)
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes",
                             "--save", "", "--appendonly", "no", "--dir", home, "--maxmemory", REDIS_MAXMEMORY,
                             "--maxmemory-policy", "noeviction", "--daemonize", "no", "--logfile",
                             os.path.join(home, "redis.log")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis  # pylint: disable=import-outside-toplevel
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start on 127.0.0.1:%d (exit %s)" % (port, proc.poll()))
                time.sleep(0.1)
        yield "127.0.0.1:%d:0" % port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cache_plugin(cache, uri):
    """The cache plugin, in a process whose collection finder knows the bench's collections
    (write_fleet runs this in a fresh interpreter: in one where ansible_collections was already
    set up, say by an earlier test, the finder cannot be pointed anywhere else)."""
    from ansible.plugins.loader import cache_loader, init_plugin_loader
    init_plugin_loader([p for p in common.ansible_env()["ANSIBLE_COLLECTIONS_PATH"].split(":") if p])
    return cache_loader.get(CACHE_PLUGINS[cache], _uri=uri, _timeout=0)


def fill_cache(cache, uri, count):
    """Each host's facts into the cache, through the cache plugin itself: its layout changes
    between releases (ansible-core 2.19 prefixes and wraps each entry)."""
    templates = _templates()
    plugin = _cache_plugin(cache, uri)
    for i in range(count):
        facts = host_facts(i, templates)
        plugin.set("node%05d" % i, {"conntrack": facts} if facts else {})


def write_fleet(workdir, count, cache="jsonfile", uri=None):
    """Inventory + fact cache (jsonfile in workdir, or the redis server at uri) for count hosts;
    returns the inventory path."""
    if cache == "jsonfile":
        uri = os.path.join(workdir, "cache")
        os.makedirs(uri)
    names = ["node%05d" % i for i in range(count)]
    subprocess.run([sys.executable, os.path.abspath(__file__), "fill", cache, uri, str(count)], check=True)
    inventory = os.path.join(workdir, "hosts.ini")
    with open(inventory, "w") as f:
        f.write("[all:vars]\nansible_connection=local\nansible_python_interpreter=%s\n[fleet]\n"
                % common.python_in_venv())
        f.write("\n".join(names) + "\n")
    return inventory


_TASK_LINE = re.compile(r"^(.*?) -+ (\d+\.\d+)s$")


def task_seconds(stdout):
    """profile_tasks' closing table: role task name -> seconds."""
    out = {}
    for line in stdout.splitlines():
        m = _TASK_LINE.match(line.strip())
        if m:
            out[m.group(1).split(" : ", 1)[-1].strip()] = float(m.group(2))
    return out


def render_seconds(report_path):
    """Seconds to render each format from the written report, in this process."""
    from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit_render
    with open(report_path) as f:
        report = json.load(f)
    out = {}
    for fmt in ("json", "csv", "markdown", "html"):
        start = time.perf_counter()
        _audit_render.render(report, fmt)
        out[fmt] = round(time.perf_counter() - start, 4)
    return out


def one_size(count, forks=FORKS, method="cache", cache="jsonfile"):
    workdir = tempfile.mkdtemp(prefix="nc-b7-")
    try:
        with contextlib.ExitStack() as stack:
            uri = stack.enter_context(redis_server(workdir)) if cache == "redis" else os.path.join(workdir, "cache")
            row = _audit_once(workdir, count, forks, method, cache, uri)
        return row
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _audit_once(workdir, count, forks, method, cache, uri):
    inventory = write_fleet(workdir, count, cache, uri)
    reports = os.path.join(workdir, "reports")
    if method == "cache":
        playbook = "netfilter.conntrack.audit_cache"
        extra = ["-e", json.dumps({"conntrack_audit_dir": reports,
                                   "conntrack_audit_formats": ["json", "csv", "markdown", "html"]})]
    else:
        playbook = os.path.join(workdir, "audit.yml")
        with open(playbook, "w") as f:
            f.write(PLAYBOOK % reports)
        extra = []
    env = dict(os.environ, **common.ansible_env())
    env.update(ANSIBLE_CACHE_PLUGIN=CACHE_PLUGINS[cache], ANSIBLE_CACHE_PLUGIN_CONNECTION=uri,
               ANSIBLE_CACHE_PLUGIN_TIMEOUT="0", ANSIBLE_FORKS=str(forks),
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_DISPLAY_OK_HOSTS="False",
               ANSIBLE_DISPLAY_SKIPPED_HOSTS="False")
    res = common.measure([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
                          playbook] + extra, env=env, timeout_seconds=3600)
    if res["exit_code"] != 0:
        raise RuntimeError("audit (%s) at %d hosts exited %d:\n%s\n%s" % (
            method, count, res["exit_code"], res["stdout"][-3000:], res["stderr"][-3000:]))
    sizes = dict((name, os.path.getsize(os.path.join(reports, name))) for name in sorted(os.listdir(reports))
                 if name.startswith("report."))
    tasks = task_seconds(res["stdout"])
    with open(os.path.join(reports, "report.json")) as f:
        by_status = json.load(f)["summary"]["by_status"]
    return {"hosts": count, "method": method, "cache": cache, "forks": forks, "seconds": res["seconds"],
            "peak_rss_bytes": res["peak_rss_bytes"], "user_seconds": res["user_seconds"],
            "system_seconds": res["system_seconds"], "aggregation_seconds": tasks.get(AGGREGATION_TASK[method]),
            "task_seconds": tasks, "by_status": by_status, "report_bytes": sizes,
            "render_seconds": render_seconds(os.path.join(reports, "report.json"))}


def growth(rows):
    """Each figure at a size divided by the one at the size before, with the host ratio beside."""
    out = []
    for before, after in zip(rows, rows[1:]):
        out.append({"from": before["hosts"], "to": after["hosts"],
                    "hosts_ratio": common.ratio(after["hosts"], before["hosts"]),
                    "seconds_ratio": common.ratio(after["seconds"], before["seconds"]),
                    "peak_rss_ratio": common.ratio(after["peak_rss_bytes"], before["peak_rss_bytes"]),
                    "aggregation_ratio": common.ratio(after["aggregation_seconds"] or 0,
                                                      before["aggregation_seconds"] or 1)})
    return out


def _sizes_within(method, sizes, forks, max_seconds, rows, skipped, cache="jsonfile"):
    """Runs ``method`` at each size whose linear projection from the size before stays within
    max_seconds; records the projection of the others (the machine is shared)."""
    for count in sizes:
        if rows:
            projected = rows[-1]["seconds"] * count / float(rows[-1]["hosts"])
            if projected > max_seconds:
                skipped.append({"hosts": count, "method": method, "projected_seconds": round(projected),
                                "max_seconds": max_seconds})
                common.log("b7: %s at %d hosts skipped: about %.0f s projected (limit %d s)"
                           % (method, count, projected, max_seconds))
                continue
        common.log("b7: auditing %d hosts from a %s cache, %s (forks=%d)" % (count, cache, method, forks))
        rows.append(one_size(count, forks, method, cache))
        mib = rows[-1]["peak_rss_bytes"] / 1048576.0
        common.log("b7: %s, %d hosts: %.1f s, peak RSS %.0f MiB" % (method, count, rows[-1]["seconds"], mib))


def run(sizes=(100, 1000, 10000), forks=FORKS, max_seconds=1800, results_dir=None, plugin_only_sizes=None,
        per_host_sizes=(100,), redis_sizes=(1000, 10000)):
    """The cache playbook at every size, the per-host role at per_host_sizes (its baseline), the
    Python side alone at plugin_only_sizes; the ratio per_host / cache at the sizes both ran."""
    rows, per_host, skipped, redis = [], [], [], []
    result = {"benchmark": "b7", "cache": "jsonfile", "method": "cache", "sizes": rows, "per_host": per_host, "redis": redis,
              "skipped": skipped, "goals": GOALS, "plugin_only": plugin_sizes(plugin_only_sizes or sizes)}
    _sizes_within("per_host", per_host_sizes, forks, max_seconds, per_host, skipped)
    for count in sizes:
        _sizes_within("cache", [count], forks, max_seconds, rows, skipped)
        result.update(growth=growth(rows), machine=common.machine())
        # After every size: a run stopped during the biggest one keeps the smaller figures.
        common.write_result("b7", result, results_dir)
    if redis_sizes and not shutil.which("redis-server"):
        skipped.append({"cache": "redis", "reason": "redis-server is not installed (Debian: redis-server)"})
    for count in redis_sizes if shutil.which("redis-server") else ():
        _sizes_within("cache", [count], forks, max_seconds, redis, skipped, cache="redis")
        common.write_result("b7", result, results_dir)
    cache_at = dict((r["hosts"], r["seconds"]) for r in rows)
    result["redis_over_jsonfile"] = [{"hosts": r["hosts"], "ratio": common.ratio(r["seconds"], cache_at[r["hosts"]])}
                                     for r in redis if r["hosts"] in cache_at]
    result["per_host_over_cache"] = [{"hosts": r["hosts"], "ratio": common.ratio(r["seconds"], cache_at[r["hosts"]])}
                                     for r in per_host if r["hosts"] in cache_at]
    big = [r for r in rows if r["hosts"] == 10000]
    result["goals_met"] = {"seconds": bool(big) and big[0]["seconds"] <= GOALS["seconds_max_at_10000"],
                           "peak_rss": bool(big) and big[0]["peak_rss_bytes"] <= GOALS["peak_rss_bytes_max_at_10000"]}
    common.write_result("b7", result, results_dir)
    return result


if __name__ == "__main__":
    if sys.argv[1:2] == ["plugin"]:
        print(json.dumps(plugin_only(int(sys.argv[2]))))
    elif sys.argv[1:2] == ["fill"]:
        fill_cache(sys.argv[2], sys.argv[3], int(sys.argv[4]))
