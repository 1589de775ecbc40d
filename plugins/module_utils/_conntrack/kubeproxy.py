# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""kube-proxy, planned rather than skipped (issue 12).

``read_kube_proxy(r)`` (I/O, facts side) finds a running kube-proxy and its effective conntrack
settings: the ``--conntrack-*`` flags of its command line and the ``conntrack:`` block of its
``--config`` file (read through ``/proc/PID/root``, so a DaemonSet's ConfigMap is reached from the
host). ``plan(facts, settings)`` (pure) predicts what it writes at its next start and, where our
recommendation differs, gives the ``conntrack:`` block that makes kube-proxy write ours.

Private to this collection: not an API. Stdlib only: the config is JSON or the small YAML
subset a KubeProxyConfiguration's ``conntrack:`` block uses (``key: scalar`` lines).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel

# kube-proxy's defaults (KubeProxyConfiguration v1alpha1); which keys it writes and how: kernel.py.
DEFAULTS = {"maxPerCore": 32768, "min": 131072, "tcpEstablishedTimeout": 86400, "tcpCloseWaitTimeout": 3600,
            "tcpBeLiberal": False, "udpTimeout": 0, "udpStreamTimeout": 0}
# config key -> (flag, kernel key); tcpBeLiberal and the UDP timeouts exist since 1.29 (kernel.KEYS).
FIELDS = (
    ("maxPerCore", "--conntrack-max-per-core", None),
    ("min", "--conntrack-min", None),
    ("tcpEstablishedTimeout", "--conntrack-tcp-timeout-established", "nf_conntrack_tcp_timeout_established"),
    ("tcpCloseWaitTimeout", "--conntrack-tcp-timeout-close-wait", "nf_conntrack_tcp_timeout_close_wait"),
    ("tcpBeLiberal", "--conntrack-tcp-be-liberal", "nf_conntrack_tcp_be_liberal"),
    ("udpTimeout", "--conntrack-udp-timeout", "nf_conntrack_udp_timeout"),
    ("udpStreamTimeout", "--conntrack-udp-timeout-stream", "nf_conntrack_udp_timeout_stream"),
)
DURATIONS = ("tcpEstablishedTimeout", "tcpCloseWaitTimeout", "udpTimeout", "udpStreamTimeout")
INTEGERS = ("maxPerCore", "min")
MAX_CONFIG_BYTES = 1 << 20
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text):
    """Go duration ("24h0m0s", "1h", "90s", "0s") or a bare number of seconds → int seconds."""
    text = str(text).strip().strip("'\"")
    if re.match(r"^\d+$", text):
        return int(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError("not a duration: %r" % text)
    return int(sum(float(a) * _UNIT_SECONDS[b] for a, b in parts))


def go_duration(seconds):
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return "%dh%dm%ds" % (h, m, s)


def _scalar(key, value):
    value = value.split(" #", 1)[0].strip().strip("'\"")
    if key in DURATIONS:
        return parse_duration(value)
    if key in INTEGERS:
        return None if value in ("", "null", "~") else int(value)
    if key == "tcpBeLiberal":
        return value.lower() in ("true", "yes", "on", "1")
    return value


def parse_config(text):
    """The ``conntrack`` block of a KubeProxyConfiguration (JSON or YAML) → {key: typed value}."""
    text = text or ""
    try:
        data = json.loads(text)
        block = data.get("conntrack") if isinstance(data, dict) else None
        return dict((k, _scalar(k, str(v).lower() if isinstance(v, bool) else str(v)))
                    for k, v in (block or {}).items() if k in DEFAULTS and v is not None)
    except ValueError:
        pass
    block, inside, indent = {}, False, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            inside = line.split("#", 1)[0].strip() == "conntrack:"
            indent = None
            continue
        if not inside:
            continue
        indent = depth if indent is None else indent
        if depth != indent or ":" not in line:
            continue
        key, value = line.strip().split(":", 1)
        if key in DEFAULTS:
            block[key] = _scalar(key, value)
    return block


def parse_flags(argv):
    """--conntrack-* flags and --config from an argv list → ({key: value}, config path or None)."""
    flags, config = {}, None
    by_flag = dict((flag, key) for key, flag, _k in FIELDS)
    i = 0
    while i < len(argv):
        word = argv[i]
        name, sep, value = word.partition("=")
        if name == "--config":
            config = value if sep else (argv[i + 1] if i + 1 < len(argv) else None)
            i += 1 if sep else 2
            continue
        key = by_flag.get(name)
        if key is None:
            i += 1
            continue
        if not sep and key == "tcpBeLiberal":
            value = "true"  # a bare boolean flag
        elif not sep:
            value = argv[i + 1] if i + 1 < len(argv) else ""
            i += 1
        flags[key] = _scalar(key, value)
        i += 1
    return flags, config


def find_process(r):
    for pid in r.listdir("/proc"):
        if not pid.isdigit():
            continue
        comm = (r.read("/proc/%s/comm" % pid) or "").strip()
        if comm not in ("kube-proxy", "hyperkube"):
            continue
        raw = r.read("/proc/%s/cmdline" % pid) or ""
        argv = [a for a in raw.split("\0") if a]
        if comm == "hyperkube" and not (len(argv) > 1 and argv[1] in ("kube-proxy", "proxy")):
            continue
        return int(pid), argv
    return None, None


def read_kube_proxy(r):
    """The facts' ``environment.kube_proxy``: {pid, flags, config_file, config, effective, notes} or None."""
    pid, argv = find_process(r)
    if pid is None:
        return None
    flags, config_path = parse_flags(argv[1:])
    notes, config = [], {}
    if config_path:
        full = config_path if config_path.startswith("/") else "/" + config_path
        text = r.read_config("/proc/%d/root%s" % (pid, full))
        if text is None:
            notes.append("cannot read kube-proxy's --config %s through /proc/%d/root" % (config_path, pid))
        else:
            try:
                config = parse_config(text)
            except ValueError as exc:
                notes.append("cannot parse the conntrack block of %s: %s" % (config_path, exc))
    effective = dict(DEFAULTS)
    # With --config, kube-proxy takes the file's values; flags count only without one.
    effective.update(config if config_path else flags)
    return {"pid": pid, "flags": flags, "config_file": config_path, "config": config, "effective": effective,
            "notes": notes}


def predict(effective, cpus, current, version=None):
    """The values after kube-proxy's next start, for the keys it writes: {kernel key: value}.
    ``current`` {} gives what it asks for; ``version`` None: unknown (kernel.py)."""
    out = {}
    per_core, floor = effective.get("maxPerCore") or 0, effective.get("min") or 0
    if per_core > 0 and cpus:
        wanted = max(per_core * cpus, floor)
        out["nf_conntrack_max"] = kernel.after_kube_proxy_restart("nf_conntrack_max", wanted,
                                                                  current.get("nf_conntrack_max"), version)
        out["nf_conntrack_buckets"] = kernel.after_kube_proxy_restart(
            "nf_conntrack_buckets", kernel.kube_proxy_buckets(wanted), current.get("nf_conntrack_buckets"), version)
    for key, _flag, kernel_key in FIELDS:
        value = effective.get(key)
        if kernel_key is None or not value:
            continue  # 0 / false: kube-proxy leaves the sysctl alone
        out[kernel_key] = kernel.after_kube_proxy_restart(kernel_key, 1 if value is True else value,
                                                          current.get(kernel_key), version)
    return out


def block_for(settings, cpus, effective):
    """The kube-proxy ``conntrack:`` block that makes it write ``settings``."""
    block = {}
    maximum = settings.get("nf_conntrack_max")
    if maximum:
        block["maxPerCore"] = maximum // cpus if cpus else 0
        block["min"] = maximum  # max(maxPerCore * cpus, min) is then exactly maximum
    for key, _flag, kernel_key in FIELDS:
        if kernel_key and kernel_key in settings:
            value = settings[kernel_key]
            block[key] = bool(value) if key == "tcpBeLiberal" else go_duration(value)
    for key in DURATIONS:
        if key not in block and effective.get(key):
            block[key] = go_duration(effective[key])
    return block


def render_block(block):
    lines = ["conntrack:"]
    for key, _flag, _kernel in FIELDS:
        if key in block:
            value = block[key]
            lines.append("  %s: %s" % (key, str(value).lower() if isinstance(value, bool) else value))
    return "\n".join(lines) + "\n"


def plan(facts, settings):
    """recommend's ``kube_proxy``: None without a running kube-proxy, else what it will write and the block."""
    kp = ((facts or {}).get("environment") or {}).get("kube_proxy")
    if not kp:
        return None
    cpus = ((facts.get("memory") or {}).get("cpu_count")) or ((facts.get("stats") or {}).get("cpus"))
    current = facts.get("settings") or {}
    predicted = predict(kp.get("effective") or DEFAULTS, cpus, current)
    wanted = predict(kp.get("effective") or DEFAULTS, cpus, {})
    differs = {}
    for key, value in sorted((settings or {}).items()):
        # Ours survives its next start only when kube-proxy would leave it as it is.
        if key in wanted and kernel.after_kube_proxy_restart(key, wanted[key], value) != value:
            differs[key] = {"kube_proxy": wanted[key], "recommended": value}
    block = block_for(settings or {}, cpus, kp.get("effective") or DEFAULTS) if differs or settings else {}
    return {"pid": kp.get("pid"), "config_file": kp.get("config_file"), "effective": kp.get("effective"),
            "predicted": predicted, "differs": differs, "conntrack": block,
            "conntrack_yaml": render_block(block) if differs else None}
