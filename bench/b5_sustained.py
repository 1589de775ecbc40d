"""B5: the case study at real scale (issue 14). A sustained multi-client load fills the
kernel's default table; the tune playbook fixes it from what the host shows.

The lab is MultiClientLab: N client namespaces on a bridge, each with its own address and
its own open-loop load generator (bench/loadgen.py), together at a fixed offered rate of
short connections. Every phase lasts 2 x time_wait, so the table reaches its steady state.
Once a second the gateway's count, drop, insert, insert_failed, early_drop, the global max
and the kernel log's "table full" lines are sampled into the series of the results JSON.

1. default   the kernel's boot default max and buckets for this RAM: the count reaches max,
             then drops and "table full" lines.
2. tune      while that overload goes on: ansible-playbook netfilter.conntrack.tune with only
             the profile (no rates). Its facts calls read the gateway's namespace, where
             the DNAT is (an interpreter wrapper enters it for the facts module only); the
             recommendation and the settings run in the initial namespace, where the global
             keys are writable. Again (once at most) if the tuned window drops.
3. tuned     the same load, on what step 2 applied, for a whole window.
4. declared  from the default again: tune with tune_rates.tcp_new_per_second = the rate
             phase 1 offered; one run, then a window.
5. ceiling   an oversized table, the same load.
Then paired rounds of a closed-loop wrk from every client at full speed, tuned against
ceiling values on a fresh table each, for the throughput ratio.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import _paths  # noqa: F401  pylint: disable=unused-import
import common
import model
import tuning
from b4_model import meminfo_slab_bytes, slab_bytes
from lab import GATEWAY_CLIENT_SIDE, PORT, TABLE_FULL, MultiClientLab, parse_stats
from support.ansible import run_playbook
from support.kernel import exclusive_kernel, read_int, saved_sysctls, write_value
from support.kernel import run as command

LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loadgen.py")
CEILING = {"nf_conntrack_max": 4194304, "nf_conntrack_buckets": 1048576}
STAT_KEYS = ("drop", "insert", "insert_failed", "early_drop")
MAX_REASON = re.compile(r"nf_conntrack_max = (\d+): ([^\"\n]*)")
DEMAND = re.compile(r"demand ([\d.]+) new flows/s")


def _set_globals(values):
    # Buckets first: the hash is resized while the table is still small.
    for key in ("nf_conntrack_buckets", "nf_conntrack_max"):
        if key in values:
            write_value(key, values[key])


def _kernel_default():
    """The boot default max and buckets for this RAM, from the collection's kernel rules."""
    from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) * 1024
    return {"nf_conntrack_max": kernel.kernel_default_max(mem), "nf_conntrack_buckets": kernel.kernel_default_buckets(mem)}


class Sampler(object):
    """Once a second: the gateway's stat totals (entries = its count), the global max, table-full lines."""

    def __init__(self, lab, interval=1.0):
        self.lab = lab
        self.interval = interval
        # A process parked in the gateway namespace: its /proc/PID/net is the gateway's.
        self.anchor = lab.gateway.popen(["sleep", "86400"])
        self.samples = []
        self._stop = threading.Event()
        self._seen = set(self._table_full())
        self._full = 0
        self.last_error = None
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    @staticmethod
    def _table_full():
        return [line for line in command(["dmesg"], check=False).stdout.splitlines() if TABLE_FULL in line]

    def _read(self):
        with open("/proc/%d/net/stat/nf_conntrack" % self.anchor.pid) as f:
            totals = parse_stats(f.read())
        out = dict((key, totals.get(key, 0)) for key in STAT_KEYS)
        out["count"] = totals.get("entries", 0)
        new = [line for line in self._table_full() if line not in self._seen]
        self._seen.update(new)
        self._full += len(new)
        out.update(t=round(time.time(), 3), table_full=self._full, max=read_int("nf_conntrack_max"))
        return out

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.samples.append(self._read())
            except (OSError, ValueError, KeyError) as exc:
                self.last_error = repr(exc)  # a missed second; a window without samples says why
            self._stop.wait(self.interval)

    def now(self):
        return self._read()

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self.anchor.terminate()
        self.anchor.wait(10)


class Load(object):
    """One loadgen per client namespace at rate / N each, until stop() (SIGTERM by PID)."""

    def __init__(self, lab, rate, connect_timeout, max_seconds=7200):
        self.dir = tempfile.mkdtemp(prefix="nc-b5-load-")
        self.procs = []
        per_client = rate / float(len(lab.clients))
        for i, client in enumerate(lab.clients):
            out = open(os.path.join(self.dir, "%d.jsonl" % i), "w")
            self.procs.append(client.popen([sys.executable, LOADGEN, GATEWAY_CLIENT_SIDE, str(PORT), str(per_client),
                                            str(max_seconds), str(connect_timeout)], stdout=out,
                                           stderr=subprocess.STDOUT))
            out.close()
        self.lines = None

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.lines, silent = [], []
        for i in range(len(self.procs)):
            with open(os.path.join(self.dir, "%d.jsonl" % i)) as f:
                text = f.read()
            self.lines.append([json.loads(line) for line in text.splitlines() if line.startswith("{")])
            if not self.lines[-1]:
                silent.append("client %d (exit %s): %s" % (i, self.procs[i].returncode, text.strip()[-300:] or "no output"))
        shutil.rmtree(self.dir, ignore_errors=True)
        if silent:
            # Its counts would all read 0 completed: a load generator that never ran is not a result.
            raise common.MeasurementError("loadgen reported nothing: %s" % "; ".join(silent))
        return self

    def between(self, t0, t1):
        """Started, completed and failed connections between two wall-clock times, all clients."""
        out = {"started": 0, "completed": 0, "failed": 0, "failed_connect": 0}
        for lines in self.lines:
            def at(t):
                last = {k: 0 for k in out}
                for line in lines:
                    if line["t"] > t:
                        break
                    last = line
                return last
            a, b = at(t0), at(t1)
            for key in out:
                out[key] += b.get(key, 0) - a.get(key, 0)
        seconds = t1 - t0
        out["seconds"] = round(seconds, 1)
        out["offered_per_second"] = round(out["started"] / seconds, 1) if seconds > 0 else None
        out["completed_per_second"] = round(out["completed"] / seconds, 1) if seconds > 0 else None
        out["failure_rate"] = round(out["failed"] / float(out["started"]), 5) if out["started"] else None
        return out


def _window(sampler, load, t0, t1, tail_seconds):
    """What the counters and the clients did between t0 and t1."""
    rows = [s for s in sampler.samples if t0 <= s["t"] <= t1]
    if len(rows) < 2:
        return {"samples": len(rows), "error": "the sampler read %d samples in the window (last error: %s)" % (
            len(rows), sampler.last_error)}
    first, last = rows[0], rows[-1]
    tail = sorted(s["count"] for s in rows if s["t"] >= t1 - tail_seconds) or [last["count"]]
    full_at = next((s["t"] for s in rows if s["count"] >= s["max"] > 0), None)
    out = {"samples": len(rows), "t0": round(t0, 3), "t1": round(t1, 3),
           "drops": last["drop"] - first["drop"], "early_drops": last["early_drop"] - first["early_drop"],
           "insert_failed": last["insert_failed"] - first["insert_failed"],
           "inserts": last["insert"] - first["insert"], "table_full_lines": last["table_full"] - first["table_full"],
           "max": last["max"], "count_peak": max(s["count"] for s in rows),
           "steady_state_count": tail[len(tail) // 2],
           "first_full_after_seconds": round(full_at - t0, 1) if full_at else None}
    seconds = last["t"] - first["t"]
    out["drops_per_second"] = round(out["drops"] / seconds, 1) if seconds > 0 else None
    if load is not None and load.lines is not None:
        out["clients"] = load.between(t0, t1)
    return out


def _interpreter_wrapper(directory, gateway):
    """An interpreter that runs only the facts module inside the gateway namespace.

    On a real NAT host the DNAT and the global keys share the initial namespace; the lab
    keeps its DNAT in a namespace of its own, so the facts (count, stat counters, the
    sample) must be read there while the settings write the globals from the initial one.
    """
    path = os.path.join(directory, "python-gateway-facts")
    with open(path, "w") as f:
        f.write('#!/bin/sh\ncase "$1" in\n  */AnsiballZ_facts.py) exec ip netns exec %s %s "$@" ;;\nesac\nexec %s "$@"\n'
                % (gateway.name, sys.executable, sys.executable))
    os.chmod(path, 0o755)
    return path


def tune_observed(gateway, profile, workdir):
    """The tune playbook with only the profile; its facts read the gateway's namespace."""
    env = common.ansible_env()
    env.update(ANSIBLE_PYTHON_INTERPRETER=_interpreter_wrapper(workdir, gateway), ANSIBLE_PIPELINING="False")
    start = time.monotonic()
    proc, recap = run_playbook("netfilter.conntrack.tune", extra_vars={"tune_profile": profile}, env=env)
    return _tune_outcome(proc, recap, time.monotonic() - start, gateway, declared=None, profile=profile)


def tune_declared(gateway, profile, tcp_new_per_second):
    start = time.monotonic()
    proc, recap = run_playbook("netfilter.conntrack.tune", extra_vars=tuning.tune_vars(tcp_new_per_second, profile),
                               env=common.ansible_env())
    return _tune_outcome(proc, recap, time.monotonic() - start, gateway, declared=tcp_new_per_second, profile=profile)


def _tune_outcome(proc, recap, seconds, gateway, declared, profile):
    out = {"profile": profile, "declared_tcp_new_per_second": declared, "exit_code": proc.returncode,
           "playbook_seconds": round(seconds, 1), "recap": recap,
           "applied_globals": {k: read_int(k) for k in tuning.GLOBALS}}
    m = None
    for m in MAX_REASON.finditer(proc.stdout):
        pass
    if m:
        out["recommended_max"] = int(m.group(1))
        out["max_reason"] = m.group(2).strip()
        d = DEMAND.search(out["max_reason"])
        out["demand_new_per_second"] = float(d.group(1)) if d else None
    if proc.returncode != 0:
        out["output_tail"] = proc.stdout[-3000:]
        common.log("tune failed (%d): %s" % (proc.returncode, proc.stdout[-1500:]))
        return out
    with open(tuning.RECORD_FILE) as f:
        record = json.load(f)
    out["applied"] = record.get("applied") or {}
    out["record_pressure_entries"] = record.get("pressure_entries")
    out["gateway_namespace_keys"] = tuning.apply_namespace_keys(gateway, out["applied"])
    common.log("tune (%s): max %s, buckets %s in %.0f s; %s" % (
        "declared %s/s" % declared if declared else "observed", out["applied_globals"]["nf_conntrack_max"],
        out["applied_globals"]["nf_conntrack_buckets"], seconds, out.get("max_reason", "")[:300]))
    return out


def _memory(gateway, values, slab0, meminfo0):
    """What the max reserves (entries at max and the hash table) against the slab growth now."""
    predicted = model.predicted_memory(gateway, values["nf_conntrack_max"])
    slab1, meminfo1 = slab_bytes(), meminfo_slab_bytes()
    hash_bytes = values["nf_conntrack_buckets"] * 8
    reserved = (predicted.get("entries_bytes") or 0) + hash_bytes
    return {"max": values["nf_conntrack_max"], "buckets": values["nf_conntrack_buckets"],
            "per_entry_bytes": predicted.get("per_entry_bytes"), "entries_at_max_bytes": predicted.get("entries_bytes"),
            "hash_table_bytes": hash_bytes, "reserved_at_max_bytes": reserved,
            "slab_growth_bytes": slab1["bytes"] - slab0["bytes"], "meminfo_slab_growth_bytes": meminfo1 - meminfo0}


def _session_start(lab, values, rate, connect_timeout):
    lab.flush_table()
    _set_globals(values)
    time.sleep(1)
    slab0, meminfo0 = slab_bytes(), meminfo_slab_bytes()
    sampler = Sampler(lab)
    load = Load(lab, rate, connect_timeout)
    return sampler, load, slab0, meminfo0, time.time()


def _wait(seconds):
    time.sleep(max(0.0, seconds))


def _log_window(name, w):
    c = w.get("clients", {})
    common.log("%-9s drops=%s table_full=%s steady=%s max=%s offered=%s/s completed=%s/s failure=%s" % (
        name, w.get("drops"), w.get("table_full_lines"), w.get("steady_state_count"), w.get("max"),
        c.get("offered_per_second"), c.get("completed_per_second"), c.get("failure_rate")))


def _observed_session(lab, p, workdir, defaults):
    """Phases 1 to 3 under one continuous load: default, tune during the overload, tuned."""
    sampler, load, slab0, meminfo0, t0 = _session_start(lab, defaults, p["rate_per_second"], p["connect_timeout"])
    out = {"tunes": [], "tuned_windows": []}
    try:
        _wait(t0 + p["window_seconds"] - time.time())
        t_default_end = time.time()
        for attempt in range(p["max_tune_runs"]):
            out["tunes"].append(tune_observed(lab.gateway, p["profile"], workdir))
            if out["tunes"][-1]["exit_code"] != 0:
                break
            tw0 = time.time()
            base = sampler.now()["drop"]
            again = attempt + 1 < p["max_tune_runs"]
            # Watch the whole window; drops in it are the cue for the one more run allowed.
            while time.time() < tw0 + p["window_seconds"]:
                _wait(min(2, tw0 + p["window_seconds"] - time.time()))
                if again and sampler.now()["drop"] > base:
                    break
            out["tuned_windows"].append((tw0, time.time()))
            if sampler.now()["drop"] == base:
                break
            common.log("drops after tune run %d: running it again" % (attempt + 1))
        values = {k: read_int(k) for k in ("nf_conntrack_max", "nf_conntrack_buckets")}
        out["memory"] = _memory(lab.gateway, values, slab0, meminfo0)
    finally:
        load.stop()
        sampler.stop()
    out["default"] = _window(sampler, load, t0, t_default_end, p["tail_seconds"])
    out["tuned"] = _window(sampler, load, *(out["tuned_windows"][-1] + (p["tail_seconds"],))) \
        if out["tuned_windows"] else None
    out["tuned_values"] = values
    out["series"] = sampler.samples
    return out


def _declared_session(lab, p, defaults, rate_offered):
    sampler, load, slab0, meminfo0, t0 = _session_start(lab, defaults, p["rate_per_second"], p["connect_timeout"])
    try:
        _wait(p["declared_lead_seconds"])
        tune = tune_declared(lab.gateway, p["profile"], int(round(rate_offered)))
        tw0 = time.time()
        _wait(tw0 + p["window_seconds"] - time.time())
        values = {k: read_int(k) for k in ("nf_conntrack_max", "nf_conntrack_buckets")}
        memory = _memory(lab.gateway, values, slab0, meminfo0)
    finally:
        load.stop()
        sampler.stop()
    return {"tune": tune, "window": _window(sampler, load, tw0, time.time(), p["tail_seconds"]),
            "lead": _window(sampler, load, t0, tw0, p["tail_seconds"]), "memory": memory, "values": values,
            "series": sampler.samples}


def _ceiling_session(lab, p):
    sampler, load, slab0, meminfo0, t0 = _session_start(lab, CEILING, p["rate_per_second"], p["connect_timeout"])
    try:
        _wait(t0 + p["window_seconds"] - time.time())
    finally:
        load.stop()
        sampler.stop()
    return {"window": _window(sampler, load, t0, time.time(), p["tail_seconds"]), "series": sampler.samples}


WRK_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
WRK_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.M)
WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(text, returncode):
    """One wrk client's figures; MeasurementError with wrk's own words when it measured nothing."""
    tail = " ".join(text.strip().splitlines()[-3:])[-300:] or "no output"
    if returncode != 0:
        raise common.MeasurementError("wrk exited %s: %s" % (returncode, tail))
    rps, done = WRK_RPS.search(text), WRK_REQUESTS.search(text)
    if not rps or not done:
        raise common.MeasurementError("wrk printed no Requests/sec: %s" % tail)
    errors = WRK_ERRORS.search(text)
    out = {"requests_per_second": float(rps.group(1)), "requests": int(done.group(1)),
           "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0}
    if out["requests"] == 0:
        # A client that never connected: wrk still prints a rate line, of 0.
        raise common.MeasurementError("wrk completed no request (socket errors: %s): %s" % (
            errors.group(0) if errors else "none", tail))
    return out


def _wrk_round(lab, seconds, connections):
    """Closed-loop wrk from every client at once; the summed rate, or MeasurementError naming the client."""
    per = max(1, connections // len(lab.clients))
    procs = [c.popen(["wrk", "-t1", "-c%d" % per, "-d%ds" % seconds, "--timeout", "2s", lab.nat_url],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True) for c in lab.clients]
    results, problems = [], []
    for client, proc in zip(lab.clients, procs):
        text = proc.communicate(timeout=seconds + 60)[0]
        try:
            results.append(parse_wrk(text, proc.returncode))
        except common.MeasurementError as exc:
            problems.append("%s: %s" % (client.name, exc))
    if problems:
        raise common.MeasurementError("; ".join(problems))
    return {"requests_per_second": round(sum(r["requests_per_second"] for r in results), 1),
            "requests": sum(r["requests"] for r in results),
            "socket_errors": sum(r["socket_errors"] for r in results)}


def _paired_rounds(lab, p, tuned_values):
    """Tuned and ceiling rounds alternated (ABBA: neither always goes first), one ratio per pair.

    A round that cannot be measured ends the rounds with its reason in the result: the tool
    that failed once fails the same way again, and a 0 would read as a throughput.
    """
    rounds = []
    for i in range(p["rounds"]):
        order = [("tuned", tuned_values), ("ceiling", CEILING)]
        row = {}
        for phase, values in (order if i % 2 == 0 else order[::-1]):
            lab.flush_table()
            _set_globals(values)
            stats0 = lab.gateway_stats()
            try:
                res = _wrk_round(lab, p["round_seconds"], p["wrk_connections"])
            except common.MeasurementError as exc:
                common.log("round %d: %s not measured: %s" % (i + 1, phase, exc))
                rounds.append({"error": "%s round %d not measured: %s" % (phase, i + 1, exc)})
                return rounds
            res["drops"] = lab.gateway_stats()["drop"] - stats0["drop"]
            row[phase] = res
        row["ratio"] = common.ratio(row["tuned"]["requests_per_second"], row["ceiling"]["requests_per_second"], 4)
        common.log("round %d: tuned %.0f req/s, ceiling %.0f req/s, ratio %s" % (
            i + 1, row["tuned"]["requests_per_second"], row["ceiling"]["requests_per_second"], row["ratio"]))
        rounds.append(row)
    return rounds


def _rounds_summary(result):
    """The goal's figures: median tuned/ceiling ratio over the pairs, its IQR and the pair count."""
    rounds = result["rounds"]
    ratios = [r["ratio"] for r in rounds if r.get("ratio") is not None]
    result["tuned_over_ceiling_rounds"] = ratios
    result["tuned_over_ceiling_spread"] = common.spread(ratios)
    result["tuned_over_ceiling"] = result["tuned_over_ceiling_spread"]["median"]
    errors = [r["error"] for r in rounds if r.get("error")]
    if errors:
        result.setdefault("errors", []).extend(errors)
    return common.judged(result["tuned_over_ceiling_spread"], 0.97)


def _phase_summary(w):
    if not w:
        return None
    c = w.get("clients") or {}
    return {"drops": w.get("drops"), "table_full_lines": w.get("table_full_lines"), "failure_rate": c.get("failure_rate"),
            "offered_per_second": c.get("offered_per_second"), "completed_per_second": c.get("completed_per_second"),
            "steady_state_count": w.get("steady_state_count"), "max": w.get("max"),
            "first_full_after_seconds": w.get("first_full_after_seconds"), "drops_per_second": w.get("drops_per_second"),
            "seconds": c.get("seconds"), "error": w.get("error")}


def _summarize(result):
    obs, dec, ceil = result["observed"], result["declared"], result["ceiling"]
    phases = {"default": _phase_summary(obs["default"]), "tuned": _phase_summary(obs["tuned"]),
              "declared": _phase_summary(dec["window"]), "ceiling": _phase_summary(ceil["window"])}
    result["phases"] = phases
    result["errors"] = ["%s: %s" % (name, w["error"]) for name, w in sorted(phases.items()) if w and w.get("error")]
    ceiling_steady = phases["ceiling"]["steady_state_count"] if phases["ceiling"] else None
    for key, tune, memory, phase in (("observed", (obs["tunes"] or [{}])[-1], obs.get("memory"), "tuned"),
                                     ("declared", dec["tune"], dec.get("memory"), "declared")):
        steady = phases[phase]["steady_state_count"] if phases[phase] else None
        applied_max = tune.get("applied_globals", {}).get("nf_conntrack_max")
        result["%s_sizing" % key] = {
            "recommended_max": applied_max, "steady_state_count": steady, "ceiling_steady_state_count": ceiling_steady,
            "max_over_steady_state": common.ratio(applied_max, steady, 3),
            "demand_new_per_second": tune.get("demand_new_per_second"), "max_reason": tune.get("max_reason"),
            "memory": memory}
    result["tune_runs_observed"] = len(obs["tunes"])
    throughput_goal = _rounds_summary(result)
    tuned, declared, default = phases["tuned"] or {}, phases["declared"] or {}, phases["default"] or {}
    result["goals"] = {
        "default_reproduces_the_failure": (default.get("drops") or 0) > 0,
        "observed_tune_zero_drops_for_a_window": tuned.get("drops") == 0 and tuned.get("table_full_lines") == 0,
        "observed_tune_runs_at_most_2": 1 <= result["tune_runs_observed"] <= 2 and all(
            t["exit_code"] == 0 for t in obs["tunes"]),
        "declared_zero_drops_for_a_window": declared.get("drops") == 0 and declared.get("table_full_lines") == 0,
        "observed_max_at_most_2x_steady_state": _at_most(result["observed_sizing"]["max_over_steady_state"], 2.0),
        "declared_max_at_most_2x_steady_state": _at_most(result["declared_sizing"]["max_over_steady_state"], 2.0),
        # On the median of at least common.GOAL_ROUNDS alternated pairs; None below that.
        "tuned_over_ceiling_at_least_0_97": throughput_goal,
        "machine_values_restored": result["machine_values_after"] == result["machine_values_before"],
    }
    return result


def _at_most(value, limit):
    return None if value is None else value <= limit


def run(clients=16, rate_per_second=2700, time_wait_seconds=None, window_seconds=None, tail_seconds=None,
        rounds=common.GOAL_ROUNDS, round_seconds=15, wrk_connections=512, profile="nat_gateway", small_max=None,
        nginx_workers=2,
        connect_timeout=0.9, max_tune_runs=2, declared_lead_seconds=5, results_dir=None, name="b5"):
    """The full run (defaults: about 25 minutes) or, with small_max and a short time_wait, the smoke."""
    p = {"clients": clients, "rate_per_second": rate_per_second, "rounds": rounds, "round_seconds": round_seconds,
         "wrk_connections": wrk_connections, "profile": profile, "small_max": small_max, "nginx_workers": nginx_workers,
         "connect_timeout": connect_timeout, "max_tune_runs": max_tune_runs,
         "declared_lead_seconds": declared_lead_seconds, "ceiling": CEILING}
    result = {"parameters": p}
    with exclusive_kernel(), saved_sysctls(*tuning.writable_keys()) as saved, tuning.FileGuard() as files, \
            MultiClientLab(clients=clients, nginx_workers=nginx_workers) as lab:
        result["machine_values_before"] = {k: int(v) for k, v in saved.items() if k in tuning.GLOBALS}
        result["lab_namespaces"] = [ns.name for ns in lab.clients + [lab.gateway, lab.backend]]
        workdir = tempfile.mkdtemp(prefix="nc-b5-")
        try:
            boot = _kernel_default()
            result["kernel_boot_default"] = boot
            defaults = dict(boot)
            if small_max is not None:
                defaults["nf_conntrack_max"] = small_max
            p["defaults"] = defaults
            if time_wait_seconds:
                # Per namespace: only the gateway's own copy changes.
                lab.gateway.sysctl("nf_conntrack_tcp_timeout_time_wait", time_wait_seconds)
            tw = int(lab.gateway.sysctl("nf_conntrack_tcp_timeout_time_wait"))
            p["time_wait_seconds"] = tw
            p["window_seconds"] = window_seconds or 2 * tw
            p["tail_seconds"] = tail_seconds or max(3, tw // 4)
            lab.dnat()
            common.log("B5: %d clients, %s new conn/s offered, time_wait %d s, windows %d s, defaults %s" % (
                clients, rate_per_second, tw, p["window_seconds"], defaults))
            result["observed"] = _observed_session(lab, p, workdir, defaults)
            _log_window("default", result["observed"]["default"])
            if result["observed"]["tuned"]:
                _log_window("tuned", result["observed"]["tuned"])
            tuned_values = result["observed"]["tuned_values"]
            result["rollback_after_observed"] = tuning.rollback_localhost()
            if time_wait_seconds:
                lab.gateway.sysctl("nf_conntrack_tcp_timeout_time_wait", time_wait_seconds)
            offered = (result["observed"]["default"].get("clients") or {}).get("offered_per_second") or rate_per_second
            result["declared"] = _declared_session(lab, p, defaults, offered)
            _log_window("declared", result["declared"]["window"])
            result["rollback_after_declared"] = tuning.rollback_localhost()
            if time_wait_seconds:
                lab.gateway.sysctl("nf_conntrack_tcp_timeout_time_wait", time_wait_seconds)
            result["ceiling"] = _ceiling_session(lab, p)
            _log_window("ceiling", result["ceiling"]["window"])
            result["rounds"] = _paired_rounds(lab, p, tuned_values)
        finally:
            _tear_down(lab, workdir, result)
    _machine_after(result, files)
    _summarize(result)
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s" % path)
    return result


def rounds_phase(clients=16, rounds=common.GOAL_ROUNDS, round_seconds=15, wrk_connections=512, nginx_workers=2, tuned_values=None,
                 results_dir=None, name="b5_rounds"):
    """The paired throughput rounds alone, tuned against the ceiling, with more rounds than the full
    run has time for. The tuned values are the ones the last full run's tune applied (b5.json)."""
    if tuned_values is None:
        with open(os.path.join(results_dir or common.RESULTS, "b5.json")) as f:
            tuned_values = json.load(f)["observed"]["tuned_values"]
    p = {"clients": clients, "rounds": rounds, "round_seconds": round_seconds, "wrk_connections": wrk_connections,
         "nginx_workers": nginx_workers, "tuned_values": tuned_values, "ceiling": CEILING}
    result = {"parameters": p}
    with exclusive_kernel(), saved_sysctls(*tuning.writable_keys()) as saved, tuning.FileGuard() as files, \
            MultiClientLab(clients=clients, nginx_workers=nginx_workers) as lab:
        result["machine_values_before"] = {k: int(v) for k, v in saved.items() if k in tuning.GLOBALS}
        try:
            lab.dnat()
            result["rounds"] = _paired_rounds(lab, p, tuned_values)
        finally:
            lab.no_ruleset()
    _machine_after(result, files)
    result["goals"] = {"tuned_over_ceiling_at_least_0_97": _rounds_summary(result)}
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s; tuned / ceiling %s" % (path, result["tuned_over_ceiling_spread"]))
    return result


def default_phase(clients=16, rate_per_second=2700, window_seconds=None, tuned_seconds=60, profile="nat_gateway",
                  nginx_workers=2, connect_timeout=0.9, results_dir=None, name="b5_default"):
    """Phases 1 and 2 alone (and a short look at the tuned table): the overload of the default
    table and one tune run from observation. For a re-run of those phases on their own."""
    p = {"clients": clients, "rate_per_second": rate_per_second, "profile": profile, "nginx_workers": nginx_workers,
         "connect_timeout": connect_timeout, "max_tune_runs": 1, "declared_lead_seconds": 0}
    result = {"parameters": p}
    with exclusive_kernel(), saved_sysctls(*tuning.writable_keys()) as saved, tuning.FileGuard() as files, \
            MultiClientLab(clients=clients, nginx_workers=nginx_workers) as lab:
        result["machine_values_before"] = {k: int(v) for k, v in saved.items() if k in tuning.GLOBALS}
        workdir = tempfile.mkdtemp(prefix="nc-b5-")
        try:
            defaults = _kernel_default()
            tw = int(lab.gateway.sysctl("nf_conntrack_tcp_timeout_time_wait"))
            p.update(defaults=defaults, time_wait_seconds=tw, window_seconds=window_seconds or 2 * tw,
                     tail_seconds=max(3, tw // 4))
            lab.dnat()
            # The tuned look only needs to show the table taking the load again.
            obs = _observed_session_short(lab, p, workdir, defaults, tuned_seconds)
            result["observed"] = obs
            _log_window("default", obs["default"])
            if obs["tuned"]:
                _log_window("tuned", obs["tuned"])
        finally:
            _tear_down(lab, workdir, result)
    _machine_after(result, files)
    result["phases"] = {"default": _phase_summary(obs["default"]), "tuned_short": _phase_summary(obs["tuned"])}
    path = common.write_result(name, result, results_dir)
    common.log("wrote %s" % path)
    return result


def _observed_session_short(lab, p, workdir, defaults, tuned_seconds):
    sampler, load, slab0, meminfo0, t0 = _session_start(lab, defaults, p["rate_per_second"], p["connect_timeout"])
    out = {"tunes": []}
    try:
        _wait(t0 + p["window_seconds"] - time.time())
        t_default_end = time.time()
        out["tunes"].append(tune_observed(lab.gateway, p["profile"], workdir))
        tw0 = time.time()
        _wait(tuned_seconds)
        t_end = time.time()
    finally:
        load.stop()
        sampler.stop()
    out["default"] = _window(sampler, load, t0, t_default_end, p["tail_seconds"])
    out["tuned"] = _window(sampler, load, tw0, t_end, p["tail_seconds"])
    out["series"] = sampler.samples
    return out


def _tear_down(lab, workdir, result):
    """The lab's ruleset, scratch files and any tuning left by a phase: gone, even after a failure."""
    lab.no_ruleset()
    shutil.rmtree(workdir, ignore_errors=True)
    if os.path.exists(tuning.RECORD_FILE):
        result["cleanup"] = tuning.rollback_localhost()


def _machine_after(result, files):
    result["etc_put_back"] = files.restored
    result["machine_values_after"] = {k: read_int(k) for k in tuning.GLOBALS}


if __name__ == "__main__":
    json.dump(run(), sys.stdout, indent=2, default=str)
