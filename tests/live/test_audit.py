"""The audit playbook against localhost and three real podman containers, one host that
does not exist, and a fact-cache fleet for the gate.

Each container is its own network namespace, counted against the one global
nf_conntrack_max. Under the kernel lock the global max is lowered to 4096 (restored
afterwards) and two containers are filled with UNREPLIED UDP entries to about 83% and 93%,
so that the audit sees a real warning and a real critical host. conntrack -C in each
container is the oracle for the counts; promtool checks every textfile; the HTML is opened
in headless chromium through scripts/check-report-html.
"""
import csv
import json
import os
import re
import shutil
import tempfile
import uuid

import pytest

from support.ansible import run_playbook
from support.kernel import TRACKING_RULESET, EnteredNetns, read_value, run, write_value
from support.traffic import UDP_FILL_RULESET, udp_fill

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "unit", "fixtures", "audit", "fleet.json")
SMALL_MAX = 4096
FILL = {"warn": 3400, "crit": 3800}  # 83% and 93% of SMALL_MAX
QUERY = "hosts[?metrics.usage_percent > `80`].{host: host, recommended_max: metrics.recommended_max}"

pytestmark = pytest.mark.skipif(shutil.which("podman") is None or shutil.which("chromium") is None
                                or shutil.which("promtool") is None,
                                reason="needs podman, chromium and promtool (scripts/apt/main.txt, test.txt)")


def _script(name):
    return run([os.path.join(ROOT, "scripts", name)]).stdout.strip().splitlines()[-1]


def _collections_path():
    paths = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]
    if not paths:
        import ansible_collections.netfilter.conntrack as ours  # the checkout, via conftest
        paths = [os.path.dirname(os.path.dirname(os.path.dirname(list(ours.__path__)[0])))]
    return os.pathsep.join(paths + [_script("test-collections")])


@pytest.fixture
def podman_env():
    conf = os.path.join(ROOT, "scripts", "containers.conf")
    os.environ.setdefault("CONTAINERS_CONF", conf)
    image = os.environ.get("NC_TEST_IMAGE") or _script("test-image")
    return {"CONTAINERS_CONF": conf, "ANSIBLE_COLLECTIONS_PATH": _collections_path()}, image


def podman(*args, check=True):
    return run(["podman"] + list(args), check=check)


@pytest.fixture
def fleet(podman_env, global_sysctls):
    """localhost, three containers (ok, warning, critical) and a host that does not exist."""
    env, image = podman_env
    tag = "nct-audit-%s" % uuid.uuid4().hex[:6]
    names = {"ok": tag + "-ok", "warn": tag + "-warn", "crit": tag + "-crit"}
    scratch = tempfile.mkdtemp(prefix="nct-audit-")
    nets = []
    try:
        for name in names.values():
            podman("run", "-d", "--name", name, "--network", "none", "--security-opt", "unmask=/proc/sys",
                   image, "sleep", "infinity")
        write_value("nf_conntrack_max", SMALL_MAX)
        for kind, name in names.items():
            pid = int(podman("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
            net = EnteredNetns(pid)
            nets.append(net)
            net.nft(TRACKING_RULESET if kind == "ok" else UDP_FILL_RULESET)
            if kind in FILL:
                udp_fill(net, FILL[kind])
        inventory = os.path.join(scratch, "hosts.ini")
        with open(inventory, "w") as f:
            f.write("localhost ansible_connection=local\n\n[containers]\n%s\n%s-gone\n\n[containers:vars]\n"
                    "ansible_connection=containers.podman.podman\nansible_python_interpreter=/usr/bin/python3\n"
                    % ("\n".join(names.values()), tag))
        yield {"names": names, "gone": tag + "-gone", "inventory": inventory, "env": env,
               "scratch": scratch, "nets": dict(zip(names, nets))}
    finally:
        for net in nets:
            net.close()
        podman("rm", "-f", "-t", "0", *names.values(), check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def audit(fleet, out, check=False, args=(), **extra):
    extra_vars = dict({"audit_dir": out, "audit_table": True, "audit_sample_seconds": 1, "audit_query": QUERY},
                      **extra)
    return run_playbook("netfilter.conntrack.audit", extra_vars=extra_vars, inventory=fleet["inventory"],
                        env=fleet["env"], check=check, args=args)


def container_state(name):
    """What the audit must not change in a container: its sysctl files and per-namespace values.

    nf_conntrack_count is left out: it is a reading, and an entry may expire meanwhile.
    """
    return podman("exec", name, "sh", "-c",
                  "ls -la /etc/sysctl.d /etc/modprobe.d 2>&1; grep -r . /proc/sys/net/netfilter 2>&1"
                  " | grep -v '/nf_conntrack_count:' | sort").stdout


def test_audit_reports_every_host_with_its_real_severity_and_changes_nothing(fleet):
    names, out = fleet["names"], os.path.join(fleet["scratch"], "report")
    before = dict((n, container_state(n)) for n in names.values())
    max_before = read_value("nf_conntrack_max")

    proc, recap = audit(fleet, out, check=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The containers see only read tasks: changed=0 there; the report is written once on the controller.
    for name in names.values():
        assert recap[name]["changed"] == 0 and recap[name]["failed"] == 0, recap
    # ignore_unreachable keeps the host in the play, so the recap counts it as ignored, not unreachable
    assert recap[fleet["gone"]]["failed"] == 0
    assert re.search(r"^%s\s*:.*\signored=1" % re.escape(fleet["gone"]), proc.stdout, re.M), proc.stdout
    assert dict((n, container_state(n)) for n in names.values()) == before
    assert read_value("nf_conntrack_max") == max_before

    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    assert report["version"] == 1
    hosts = dict((h["host"], h) for h in report["hosts"])
    assert set(hosts) == {"localhost", fleet["gone"]} | set(names.values())
    assert hosts[fleet["gone"]]["status"] == "unreachable"
    assert hosts[names["ok"]]["severity"] in ("ok", "info")
    for kind, severity in (("warn", "warning"), ("crit", "critical")):
        h = hosts[names[kind]]
        assert h["metrics"]["max"] == SMALL_MAX
        # conntrack -C in the container is the oracle for the count the audit read
        assert h["metrics"]["count"] == fleet["nets"][kind].count()
        usage = [f for f in h["findings"] if f["rule"] == "usage"]
        assert usage and usage[0]["severity"] == severity, h["findings"]
        assert h["metrics"]["recommended_max"] > SMALL_MAX
    assert hosts[names["crit"]]["severity"] == "critical"

    with open(os.path.join(out, "report.csv")) as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["host"] for r in rows) == sorted(hosts)
    with open(os.path.join(out, "query.json")) as f:
        assert sorted(q["host"] for q in json.load(f)) == sorted([names["warn"], names["crit"]])
    assert "recommended_max" in proc.stdout and names["crit"] in proc.stdout
    with open(os.path.join(out, "report.md")) as f:
        md = f.read()
    assert all("## %s" % h in md for h in hosts)

    for host in hosts:
        prom = os.path.join(out, "prometheus", "%s.prom" % host)
        with open(prom) as f:
            check = run(["promtool", "check", "metrics"], input=f.read(), check=False)
        assert check.returncode == 0, (host, check.stdout, check.stderr)
    with open(os.path.join(out, "prometheus", "%s.prom" % names["crit"])) as f:
        assert 'netfilter_conntrack_entries_limit %d' % SMALL_MAX in f.read()

    shot = os.path.join(fleet["scratch"], "report.png")
    res = run([os.path.join(ROOT, "scripts", "check-report-html"), os.path.join(out, "report.html"), shot],
              check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "5 table rows" in res.stdout and os.path.getsize(shot) > 10000
    if os.environ.get("NC_AUDIT_SCREENSHOT"):
        shutil.copy(shot, os.environ["NC_AUDIT_SCREENSHOT"])

    # The gate, on the same real fleet: the 93% container fails the play, after the report is written.
    gate_out = os.path.join(fleet["scratch"], "gate")
    proc, recap = audit(fleet, gate_out, audit_fail_on="critical", audit_sample_seconds=0, audit_table=False)
    assert proc.returncode != 0
    assert "conntrack audit gate (conntrack_audit_fail_on=critical)" in proc.stdout and names["crit"] in proc.stdout
    with open(os.path.join(gate_out, "report.json")) as f:
        gate = json.load(f)["gate"]
    assert gate["failed"] and names["crit"] in gate["hosts"] and names["warn"] not in gate["hosts"]

    # The opt-in textfile deploy, the one write on hosts: nothing in check mode, each host's own file otherwise.
    deploy = {"audit_textfile_deploy": True, "audit_textfile_dir": "/tmp", "audit_sample_seconds": 0,
              "audit_table": False}
    proc = audit(fleet, os.path.join(fleet["scratch"], "deploy-check"), check=True, args=["--limit", "containers"],
                 **deploy)[0]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in names.values():
        assert podman("exec", name, "test", "-e", "/tmp/netfilter_conntrack.prom", check=False).returncode != 0
    proc = audit(fleet, os.path.join(fleet["scratch"], "deploy"), args=["--limit", "containers"], **deploy)[0]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for kind, name in names.items():
        text = podman("exec", name, "cat", "/tmp/netfilter_conntrack.prom").stdout
        assert run(["promtool", "check", "metrics"], input=text, check=False).returncode == 0
        assert "netfilter_conntrack_entries %d" % (fleet["nets"][kind].count()) in text


@pytest.fixture
def cached_fleet(tmp_path):
    """The fixture fleet's facts in a jsonfile fact cache, as a big fleet's earlier gathering leaves them."""
    with open(FIXTURE) as f:
        hosts = json.load(f)
    facts = tmp_path / "recorded"
    facts.mkdir()
    lines = []
    for h in hosts:
        if h["facts"]:
            (facts / ("%s.json" % h["host"])).write_text(json.dumps(h["facts"]))
        lines.append("%s ansible_connection=local" % h["host"])
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("\n".join(lines) + "\n")
    env = {"ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "cache"),
           "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0"}
    # Fill the cache through ansible itself: the cache's file format is ansible's business.
    seed = tmp_path / "seed.yml"
    seed.write_text("""- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.set_fact:
        conntrack: "{{ lookup('file', '%s/' ~ inventory_hostname ~ '.json') | from_json }}"
        cacheable: true
      when: ('%s/' ~ inventory_hostname ~ '.json') is file
""" % (facts, facts))
    proc = run_playbook(str(seed), inventory=str(inventory), env=env)[0]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return str(inventory), env, tmp_path


@pytest.mark.parametrize("fail_on,fails", [("critical", True), ("never", False)])
def test_gate_fails_the_play_on_a_cached_host_above_90_percent(cached_fleet, fail_on, fails):
    inventory, env, tmp = cached_fleet
    out = str(tmp / "report")
    proc, recap = run_playbook("netfilter.conntrack.audit", inventory=inventory, env=env,
                               extra_vars={"audit_gather": False, "audit_dir": out, "audit_fail_on": fail_on})
    assert (proc.returncode != 0) is fails, proc.stdout + proc.stderr
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    hosts = dict((h["host"], h) for h in report["hosts"])
    assert hosts["k8s-crit-3"]["severity"] == "critical"
    assert hosts["k8s-crit-3"]["metrics"]["usage_percent"] > 90
    # No cached facts for the fourth host: reported as failed, not dropped.
    assert hosts["db-down-4"]["status"] == "failed"
    assert report["gate"]["failed"] is fails
    if fails:
        assert "k8s-crit-3" in proc.stdout and "conntrack audit gate" in proc.stdout


def test_the_cache_playbook_gives_the_per_host_audits_report_without_a_task_per_host(cached_fleet):
    """The same cache judged both ways: the per-host role (a recommend call per host) and the
    cache entry point (one filter call on the controller) write the same report."""
    inventory, env, tmp = cached_fleet
    reports = {}
    for name, playbook, extra in (
            ("per_host", "netfilter.conntrack.audit", {"conntrack_audit_gather": False}),
            ("cache", "netfilter.conntrack.audit_cache", {})):
        out = str(tmp / name)
        proc, recap = run_playbook(playbook, inventory=inventory, env=env, extra_vars=dict(
            extra, conntrack_audit_dir=out, conntrack_audit_formats=["json", "csv", "markdown", "prometheus"]))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with open(os.path.join(out, "report.json")) as f:
            reports[name] = json.load(f)
        with open(os.path.join(out, "report.csv")) as f:
            reports[name + ".csv"] = f.read()
        if name == "cache":
            # One play on the controller: no inventory host ran a task.
            assert set(recap) == {"localhost"}, proc.stdout
            assert sorted(os.listdir(os.path.join(out, "prometheus"))) == sorted(
                "%s.prom" % h["host"] for h in reports["cache"]["hosts"])
    for report in (reports["per_host"], reports["cache"]):
        report.pop("generated_at", None)
    assert reports["cache"] == reports["per_host"]
    assert reports["cache.csv"] == reports["per_host.csv"]
    hosts = dict((h["host"], h) for h in reports["cache"]["hosts"])
    assert hosts["k8s-crit-3"]["severity"] == "critical" and hosts["db-down-4"]["status"] == "failed"


@pytest.mark.parametrize("profile", ["nat_gateway", "\"{{ 'nat_' ~ 'gateway' }}\""], ids=["plain", "templated"])
def test_the_cache_playbook_takes_a_hosts_own_profile_from_its_inventory_variables(cached_fleet, profile):
    inventory, env, tmp = cached_fleet
    with open(inventory) as f:
        plain = f.read()
    recommended = {}
    for name, text in (("play", plain), ("own", plain.replace(
            "k8s-crit-3 ansible_connection=local",
            "k8s-crit-3 ansible_connection=local conntrack_audit_profile=%s" % profile))):
        with open(inventory, "w") as f:
            f.write(text)
        out = str(tmp / name)
        proc, _recap = run_playbook("netfilter.conntrack.audit_cache", inventory=inventory, env=env,
                                    extra_vars={"conntrack_audit_dir": out, "conntrack_audit_formats": ["json"],
                                                "conntrack_audit_hosts": "k8s-crit-3:gw-ok-1"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        with open(os.path.join(out, "report.json")) as f:
            hosts = dict((h["host"], h) for h in json.load(f)["hosts"])
        assert sorted(hosts) == ["gw-ok-1", "k8s-crit-3"]
        recommended[name] = dict((h, hosts[h]["recommendation"]["comparison"]) for h in hosts)
    # Only the host that names its own profile is judged against another recommendation.
    assert recommended["own"]["gw-ok-1"] == recommended["play"]["gw-ok-1"]
    assert recommended["own"]["k8s-crit-3"] != recommended["play"]["k8s-crit-3"]


def _tree(path):
    """Every entry under path: name -> (kind, bytes or link target)."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            if os.path.islink(full):
                out[os.path.relpath(full, path)] = ("link", os.readlink(full))
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    out[os.path.relpath(full, path)] = ("file", f.read())
            else:
                out[os.path.relpath(full, path)] = ("dir", None)
    return out


def test_the_cache_playbook_rewrites_nothing_when_the_fleet_is_unchanged_and_check_mode_writes_nothing(cached_fleet):
    inventory, env, tmp = cached_fleet
    out = str(tmp / "reports")
    extra = {"conntrack_audit_dir": out}
    proc, recap = run_playbook("netfilter.conntrack.audit_cache", inventory=inventory, env=env, extra_vars=extra)
    assert proc.returncode == 0 and recap["localhost"]["changed"] == 1, proc.stdout + proc.stderr
    first = _tree(out)
    assert "report.html" in first and "prometheus/k8s-crit-3.prom" in first
    # The same cache again: the same report, so nothing is written, not even its time.
    proc, recap = run_playbook("netfilter.conntrack.audit_cache", inventory=inventory, env=env, extra_vars=extra)
    assert proc.returncode == 0 and recap["localhost"]["changed"] == 0, proc.stdout + proc.stderr
    assert _tree(out) == first
    # Another profile changes the report: check mode says so, with a diff per file, and writes nothing.
    proc, recap = run_playbook("netfilter.conntrack.audit_cache", inventory=inventory, env=env, check=True, diff=True,
                               extra_vars=dict(extra, conntrack_audit_profile="nat_gateway"))
    assert proc.returncode == 0 and recap["localhost"]["changed"] == 1, proc.stdout + proc.stderr
    assert "report.json" in proc.stdout and "sha256:" in proc.stdout
    assert _tree(out) == first


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory"])
def test_the_cache_playbook_refuses_a_report_path_that_is_not_a_plain_file_and_writes_nothing(cached_fleet, kind):
    inventory, env, tmp = cached_fleet
    out = tmp / "reports"
    (out / "prometheus").mkdir(parents=True)
    (out / "report.json").write_text("{}\n")
    target = tmp / "elsewhere.md"
    target.write_text("not a report\n")
    if kind == "symlink":
        (out / "report.md").symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(str(out / "report.md"))
    else:
        (out / "report.md").mkdir()
    before = _tree(str(out))
    proc, _recap = run_playbook("netfilter.conntrack.audit_cache", inventory=inventory, env=env,
                                extra_vars={"conntrack_audit_dir": str(out)})
    assert proc.returncode != 0
    line = [ln for ln in proc.stdout.splitlines() if "report.md is" in ln]
    assert line and "nothing was written" in line[0], proc.stdout
    assert _tree(str(out)) == before
    assert target.read_text() == "not a report\n"


def test_the_cache_playbook_reports_a_name_outside_the_inventory_as_failed(cached_fleet):
    inventory, env, tmp = cached_fleet
    out = str(tmp / "reports")
    proc, _recap = run_playbook("netfilter.conntrack.audit_cache", inventory=inventory, env=env, extra_vars={
        "conntrack_audit_dir": out, "conntrack_audit_formats": ["json"],
        "conntrack_audit_cache_hosts": ["gw-ok-1", "no-such-host"]})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(os.path.join(out, "report.json")) as f:
        hosts = dict((h["host"], h) for h in json.load(f)["hosts"])
    assert hosts["gw-ok-1"]["status"] == "ok"
    assert hosts["no-such-host"]["status"] == "failed" and hosts["no-such-host"]["error"] == "not a host of the inventory"
