# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench only (B8): a connection that pretends to be a conntrack host, so that a rollout over a
thousand inventory hosts measures the controller's work alone. Never shipped: bench/ is in
galaxy.yml's build_ignore."""

from __future__ import annotations

DOCUMENTATION = """
    name: conntrack_mock
    short_description: Bench only; answers the collection's modules with canned, per-host results
    description:
        - Reads the module name and arguments from the pipelined AnsiballZ payload and answers with
          a result shaped like the real module's (facts, recommend, settings), without running any
          module code. Every host is a process-local fiction, and nothing is written anywhere but the
          call log.
    author: netfilter.conntrack contributors
    options:
        index:
            description: The host's number; it varies the canned facts (table size, load, rates).
            type: int
            default: 0
            vars:
                - name: bench_mock_index
        regress:
            description: Report a drop rate after tuning that was not there before, so the health gate halts.
            type: bool
            default: false
            vars:
                - name: bench_mock_regress
        call_log:
            description: A file each module call appends one line to (host, module, call kind).
            type: str
            default: ''
            env:
                - name: NC_BENCH_MOCK_LOG
"""

import ast
import copy
import json
import os

from ansible.errors import AnsibleError
from ansible.plugins.connection import ConnectionBase

_REPLIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "b8_replies.json")
_CACHE = {}
_MAIN = b'\nif __name__ == "__main__":'
# Table sizes the fleet is spread over: a host's index picks one.
_SIZES = (65536, 131072, 262144, 524288)


def _replies():
    if "replies" not in _CACHE:
        with open(_REPLIES) as f:
            _CACHE["replies"] = json.load(f)
    return _CACHE["replies"]


def module_call(payload):
    """(module name, arguments) from a pipelined AnsiballZ wrapper of ansible-core 2.19+: its last
    lines call _ansiballz_main with one ``key=repr,`` per line; zip_data is never evaluated."""
    at = payload.rfind(_MAIN)
    if at < 0:
        raise AnsibleError("conntrack_mock: not an AnsiballZ payload; only pipelined new-style modules are mocked")
    fields = {}
    for line in payload[at:].split(b"\n"):
        for key in (b"module_fqn", b"params"):
            if line.startswith(key + b"="):
                fields[key.decode()] = ast.literal_eval(line[len(key) + 1:].rstrip(b",").decode())
    args = json.loads(fields["params"])["ANSIBLE_MODULE_ARGS"]
    return fields["module_fqn"].rsplit(".", 1)[-1], args


def _host_max(index):
    return _SIZES[index % len(_SIZES)]


def _facts(kind, index, regress):
    reply = copy.deepcopy(_replies()["before" if kind != "start" else "start"])
    facts = reply["ansible_facts"]["conntrack"]
    limit = _host_max(index)
    settings = facts["settings"]
    settings.update(nf_conntrack_max=limit, nf_conntrack_buckets=limit // 4 if index % 3 else limit)
    usage = facts.get("usage") or {}
    usage.update(max=limit, count=int(limit * (0.05 + (index % 9) / 10.0)))
    usage["usage_ratio"] = round(usage["count"] / float(limit), 4)
    sample = (facts.get("stats") or {}).get("sample")
    if sample:
        if kind == "after" and regress:
            sample["rates_per_second"]["drop"] = 5.0
            sample["deltas"]["drop"] = 5
        else:
            sample["rates_per_second"]["count"] = float(index % 50)
    if kind != "before":
        # Only the read before tuning asks for the table and the record.
        facts["table"] = None
    reply["conntrack"] = facts
    return reply


def _recommend(args, index):
    reply = copy.deepcopy(_replies()["recommend"])
    rec = reply["recommendation"]
    current = args["facts"]["settings"]["nf_conntrack_max"]
    # Every fifth host is already at what it is recommended: the settings call reports ok there.
    want = current if index % 5 == 0 else current * 2
    buckets = args["facts"]["settings"]["nf_conntrack_buckets"] if index % 5 == 0 else want
    rec["settings"] = {"nf_conntrack_max": want, "nf_conntrack_buckets": buckets,
                       "nf_conntrack_expect_max": args["facts"]["settings"]["nf_conntrack_expect_max"]}
    for key, value in rec["settings"].items():
        rec["comparison"][key] = {"current": args["facts"]["settings"][key], "recommended": value,
                                  "change": args["facts"]["settings"][key] != value}
    return reply


def _settings(args, index):
    if args.get("restore"):
        before = args["restore"].get("runtime") or {}
        return {"changed": True, "runtime": dict((k, {"before": None, "after": v}) for k, v in before.items()),
                "desired": before, "read_back": before, "mismatches": {}, "skipped_keys": {}, "files": {},
                "notes": [], "leftovers": [], "undo": {}, "environment": {}}
    want = dict((k, int(v)) for k, v in args["settings"].items())
    limit = _host_max(index)
    have = {"nf_conntrack_max": limit, "nf_conntrack_buckets": limit // 4 if index % 3 else limit,
            "nf_conntrack_expect_max": 4096}
    changed_keys = [k for k in want if have.get(k) != want[k]]
    path = args.get("sysctl_file") or "/etc/sysctl.d/90-netfilter-conntrack.conf"
    files = {path: {"changed": bool(changed_keys), "state": "present", "backup": None}}
    return {
        "changed": bool(changed_keys),
        "runtime": dict((k, {"before": have.get(k), "after": want[k]}) for k in want),
        "desired": want, "read_back": want, "mismatches": {}, "skipped_keys": {}, "files": files,
        "notes": [], "leftovers": [],
        "environment": {"available": True, "initial_netns": True, "proc_sys_read_only": False,
                        "module": "loadable", "kube_proxy_running": False},
        "undo": {"runtime": dict((k, have.get(k)) for k in changed_keys),
                 "files": {path: {"content": None, "sha256_after": "0" * 64}} if changed_keys else {},
                 "directories": []},
        "record": {"path": args.get("record_file"), "changed": bool(changed_keys), "state": "present",
                   "content": {"schema_version": 1, "original": dict((k, have.get(k)) for k in want),
                               "applied": want, "pressure_entries": None}},
    }


def reply(name, args, index, regress):
    """The result the real module would give host ``index`` for these arguments, and the call's kind."""
    if name == "facts":
        kind = "before" if "record_file" in args else ("after" if args.get("sample_seconds") else "start")
        return _facts(kind, index, regress), kind
    if name == "recommend":
        return _recommend(args, index), "recommend"
    if name == "settings":
        return _settings(args, index), "restore" if args.get("restore") else "apply"
    if name == "ping":
        return {"ping": args.get("data", "pong")}, "ping"
    raise AnsibleError("conntrack_mock: no canned result for module %r" % name)


class Connection(ConnectionBase):
    """Answers every pipelined module call in this process; no other command is expected."""

    transport = "conntrack_mock"
    has_pipelining = True
    always_pipeline_modules = True

    def _connect(self):
        self._connected = True
        return self

    def _log(self, name, kind):
        path = self.get_option("call_log")
        if path:
            # One short O_APPEND write per call: lines from concurrent forks do not interleave.
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, ("%s %s %s\n" % (self._play_context.remote_addr, name, kind)).encode())
            finally:
                os.close(fd)

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        if in_data is None:
            # Anything but a module (a temp dir, a home lookup) would mean pipelining was off.
            self._log("command", cmd.replace(" ", "_")[:60])
            return 0, b"", b""
        name, args = module_call(in_data)
        result, kind = reply(name, args, int(self.get_option("index")), bool(self.get_option("regress")))
        self._log(name, kind)
        return 0, json.dumps(result).encode(), b""

    def put_file(self, in_path, out_path):
        raise AnsibleError("conntrack_mock: put_file is not mocked (pipelining is always on)")

    def fetch_file(self, in_path, out_path):
        raise AnsibleError("conntrack_mock: fetch_file is not mocked")

    def close(self):
        self._connected = False
