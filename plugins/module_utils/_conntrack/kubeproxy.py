# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection knows about kube-proxy's conntrack handling, release by release, in one place.

``RELEASES`` holds, per minor release from 1.21 to the newest, the flags and config fields it
reads, the config layouts it serves, which keys it only raises and the cap on its scaled max.
``conntrack_max`` and ``writes`` follow its start-up code; ``after_restart`` says what a key
reads once it has started again. ``read_kube_proxy(r)`` (I/O, facts side) finds a running
kube-proxy and its settings; ``plan(facts, settings)`` (pure) predicts what it writes and gives
the ``conntrack`` block that makes it write ours, or says why none can.

Private to this collection: not an API. Stdlib only: the config is JSON or the small YAML
subset a KubeProxyConfiguration's conntrack block uses (``key: scalar`` lines).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import json
import re

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel, sizing, units

# Defaults applied to a v1alpha1 file (and to flags): a field left out or set to null gets these.
DEFAULTS = {"maxPerCore": 32768, "min": 131072, "tcpEstablishedTimeout": 86400, "tcpCloseWaitTimeout": 3600,
            "tcpBeLiberal": False, "udpTimeout": 0, "udpStreamTimeout": 0}
# config key -> (flag, kernel key); the max and the hash size come from maxPerCore and min together.
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

# ------------------------------------------------------------------ releases
FIRST, NEWEST = (1, 21), (1, 38)
BASE_FIELDS = ("maxPerCore", "min", "tcpEstablishedTimeout", "tcpCloseWaitTimeout")
FIELDS_1_29 = ("tcpBeLiberal", "udpTimeout", "udpStreamTimeout")
# The scaled value (maxPerCore x CPUs) is cut to this from 1.36; ``min`` is not, so a floor above
# it is still written as it is.
MAX_CAP = 1048576
MAX_CAP_SINCE = (1, 36)
# 1.22 to 1.28 compared before writing and only ever raised a sysctl; 1.29 went back to writing
# its value whenever the current one differs; 1.38 made nf_conntrack_max alone raise-only again.
RAISE_ONLY_ALL = ((1, 22), (1, 28))
MAX_RAISE_ONLY_SINCE = (1, 38)
# hashsize is written as max / 4 (integer division) when the current one is smaller, never lowered.
MAX_PER_BUCKET = 4
# Only kubeproxy.config.k8s.io/v1alpha1 is served: a v1alpha2 layout (``linux: conntrack:``) was
# proposed but no release up to NEWEST registers it, so such a file stops kube-proxy at start.
SERVED_LAYOUTS = ("v1alpha1",)

Release = collections.namedtuple("Release", "version fields flags layouts cap raise_only max_raise_only known")


def _release(version, known=True):
    fields = BASE_FIELDS + (FIELDS_1_29 if version >= (1, 29) else ())
    flags = tuple(flag for key, flag, _k in FIELDS if key in fields)
    raise_all = known and RAISE_ONLY_ALL[0] <= version <= RAISE_ONLY_ALL[1]
    return Release(version, fields, flags, SERVED_LAYOUTS, MAX_CAP if version >= MAX_CAP_SINCE else None,
                   raise_all, known and (raise_all or version >= MAX_RAISE_ONLY_SINCE), known)


RELEASES = collections.OrderedDict(((1, minor), _release((1, minor))) for minor in range(FIRST[1], NEWEST[1] + 1))
# A kube-proxy whose release is not known: the newest's fields and cap, and never raise-only, the
# rules under which it can undo the most of ours.
UNKNOWN = _release(NEWEST, known=False)


def release(version=None):
    """The Release of ``version`` ((major, minor[, patch]) or "v1.30.2"); UNKNOWN for None; the
    nearest modelled one outside 1.21..NEWEST."""
    if version is None:
        return UNKNOWN
    if isinstance(version, str):
        m = re.match(r"^v?(\d+)\.(\d+)", version.strip())
        if not m:
            return UNKNOWN
        version = (int(m.group(1)), int(m.group(2)))
    version = tuple(int(v) for v in tuple(version)[:2])
    return RELEASES[min(max(version, FIRST), NEWEST)]


def raises_only(key, version=None):
    """True when kube-proxy ``version`` leaves a value of ``key`` above its own alone."""
    if key == "nf_conntrack_buckets":
        return True
    rel = release(version)
    return rel.max_raise_only if key == "nf_conntrack_max" else rel.raise_only


def conntrack_max(config, cpus, version=None):
    """The nf_conntrack_max kube-proxy asks for with ``config`` (0: it leaves the key alone)."""
    per_core = config.get("maxPerCore") or 0
    if per_core <= 0:
        return 0
    floor, scaled, cap = config.get("min") or 0, per_core * int(cpus or 0), release(version).cap
    if cap and scaled > cap:
        return cap
    return scaled if scaled > floor else floor


def hash_size(max_entries):
    """The hash size kube-proxy asks for with its max (before the kernel rounds it up)."""
    return int(max_entries) // MAX_PER_BUCKET


def writes(config, cpus, current, version=None):
    """{kernel key: value} that kube-proxy ``version`` writes at start with ``config`` as given
    (absent fields are zero, as in its own tests: apply ``effective`` first for a real file)
    when the kernel holds ``current`` (a missing key: it cannot compare, so it writes)."""
    rel, out = release(version), {}
    maximum = conntrack_max(config, cpus, version)
    if maximum > 0:
        now = current.get("nf_conntrack_max")
        if now is None or (now < maximum if rel.max_raise_only else now != maximum):
            out["nf_conntrack_max"] = maximum
        buckets = current.get("nf_conntrack_buckets")
        if buckets is None or buckets < hash_size(maximum):
            out["nf_conntrack_buckets"] = hash_size(maximum)
    for key, _flag, kernel_key in FIELDS:
        value = config.get(key)
        if kernel_key is None or key not in rel.fields or not value:
            continue  # zero or false: kube-proxy leaves the sysctl alone
        value = 1 if value is True else int(value)
        now = current.get(kernel_key)
        if now is None or (now < value if rel.raise_only else now != value):
            out[kernel_key] = value
    return out


def after_restart(key, intended, current, version=None):
    """The value of ``key`` once kube-proxy ``version`` has started again, when its configuration
    asks for ``intended`` (None or 0: its configuration leaves the key alone)."""
    if key not in kernel.KEYS or kernel.KEYS[key].kube_proxy is None or not intended:
        return current
    if key == "nf_conntrack_buckets":
        intended = kernel.round_buckets(intended)
    if raises_only(key, version) and current is not None and current >= intended:
        return current
    return intended


# ------------------------------------------------------------------ reading the configuration
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NULLS = ("", "null", "~", "Null", "NULL")


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
    """A typed field value; None for a YAML/JSON null, which kube-proxy fills with its default."""
    raw = value.split(" #", 1)[0].strip()
    value = raw.strip("'\"")
    if value in _NULLS and raw == value:
        return None
    if key in DURATIONS:
        return parse_duration(value)
    if key in INTEGERS:
        return int(value)
    if key == "tcpBeLiberal":
        return value.lower() in ("true", "yes", "on", "1")
    return value


def _json_block(data):
    if not isinstance(data, dict):
        return None, None
    linux = data.get("linux")
    if isinstance(linux, dict) and isinstance(linux.get("conntrack"), dict):
        return linux["conntrack"], "v1alpha2"
    block = data.get("conntrack")
    return (block if isinstance(block, dict) else {}), "v1alpha1"


def _yaml_block(text):
    """The conntrack mapping at the top level (v1alpha1) or under ``linux:`` (v1alpha2)."""
    block, layout, path, depths = {}, "v1alpha1", [], []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or line.strip() in ("---", "..."):
            continue
        depth = len(line) - len(line.lstrip())
        while depths and depth <= depths[-1]:
            depths.pop()
            path.pop()
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key = key.strip().strip("'\"")
        if path in (["conntrack"], ["linux", "conntrack"]):
            if key in DEFAULTS:
                block[key] = _scalar(key, value)
                layout = "v1alpha2" if path[0] == "linux" else "v1alpha1"
            continue
        if not value.split(" #", 1)[0].strip():
            path.append(key)
            depths.append(depth)
    return block, layout


def parse_config_file(text):
    """(conntrack block {key: typed value or None}, layout "v1alpha1" | "v1alpha2") of a
    KubeProxyConfiguration in JSON or YAML; nulls stay None here so callers can tell them apart."""
    text = text or ""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        block, layout = _json_block(data)
        return dict((k, None if v is None else _scalar(k, str(v).lower() if isinstance(v, bool) else str(v)))
                    for k, v in block.items() if k in DEFAULTS), layout
    block, layout = _yaml_block(text)
    if re.search(r"^apiVersion:\s*['\"]?kubeproxy\.config\.k8s\.io/v1alpha2", text, re.M):
        layout = "v1alpha2"
    return block, layout


def parse_config(text):
    """The set fields of a KubeProxyConfiguration's conntrack block: nulls left out, since
    kube-proxy gives a null field its default."""
    block, _layout = parse_config_file(text)
    return dict((k, v) for k, v in block.items() if v is not None)


def effective(config):
    """``config`` with kube-proxy's defaults where a field is absent or null."""
    out = dict(DEFAULTS)
    out.update((k, v) for k, v in (config or {}).items() if v is not None)
    return out


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


# Release binaries are linked with -X ...version.gitVersion=v1.N.P, and Go (1.18 and newer) records
# those link flags in the build information of the executable, so the release can be read there.
_GIT_VERSION = re.compile(br"gitVersion=v(\d+)\.(\d+)\.(\d+)")
_EXE_CHUNK = 1 << 20
MAX_EXE_BYTES = 256 << 20


def read_version(r, pid):
    """kube-proxy's release ("v1.30.2") from its executable's build information, or None."""
    tail = b""
    try:
        with open(r.path("/proc/%d/exe" % pid), "rb") as f:
            for _chunk in range(MAX_EXE_BYTES // _EXE_CHUNK):
                chunk = f.read(_EXE_CHUNK)
                if not chunk:
                    return None
                found = _GIT_VERSION.search(tail + chunk)
                if found:
                    return "v%d.%d.%d" % tuple(int(n) for n in found.groups())
                tail = chunk[-64:]
    except (IOError, OSError):
        return None
    return None


def read_kube_proxy(r):
    """The facts' ``environment.kube_proxy``: {pid, version, flags, config_file, config, layout,
    effective, notes} or None."""
    pid, argv = find_process(r)
    if pid is None:
        return None
    flags, config_path = parse_flags(argv[1:])
    notes, config, layout = [], {}, None
    if config_path:
        full = config_path if config_path.startswith("/") else "/" + config_path
        text = r.read_config("/proc/%d/root%s" % (pid, full))
        if text is None:
            notes.append("cannot read kube-proxy's --config %s through /proc/%d/root" % (config_path, pid))
        else:
            try:
                block, layout = parse_config_file(text)
                config = dict((k, v) for k, v in block.items() if v is not None)
            except ValueError as exc:
                notes.append("cannot parse the conntrack block of %s: %s" % (config_path, exc))
            if layout not in SERVED_LAYOUTS:
                notes.append("%s is a kubeproxy.config.k8s.io/%s file, which kube-proxy %d.%d to %d.%d does not "
                             "load; its conntrack block is read as if it were served" % (
                                 config_path, layout, FIRST[0], FIRST[1], NEWEST[0], NEWEST[1]))
    # With --config, kube-proxy takes the file's values; flags count only without one.
    return {"pid": pid, "version": read_version(r, pid), "flags": flags, "config_file": config_path,
            "config": config, "layout": layout, "effective": effective(config if config_path else flags),
            "notes": notes}


# ------------------------------------------------------------------ planning
def predict(config, cpus, current, version=None):
    """The values after kube-proxy's next start, for the keys it writes: {kernel key: value}.
    ``config``: its effective configuration; ``current`` {} gives what it asks for."""
    asked = writes(config, cpus, {}, version)
    return dict((key, after_restart(key, value, current.get(key), version)) for key, value in asked.items())


def _targets(version):
    return [release(version)] if version is not None else list(RELEASES.values())


def _spans(rels):
    if len(rels) == len(RELEASES):
        return "every kube-proxy release from %d.%d to %d.%d" % (FIRST + NEWEST)
    return "kube-proxy " + ", ".join("%d.%d" % r.version for r in rels)


def max_block(maximum, cpus, version=None):
    """({maxPerCore, min} that makes kube-proxy ask for exactly ``maximum`` on ``version``, every
    modelled release when None), or ({maxPerCore: 0}, why no values can)."""
    leave = {"maxPerCore": 0}
    advice = ("set maxPerCore: 0 so that kube-proxy leaves nf_conntrack_max and the hash size alone, and let "
              "the tune role (or the settings module with kube_proxy=override) own them")
    if not cpus:
        return leave, "the CPU count is unknown, so no maxPerCore/min can be checked; " + advice
    if maximum > kernel.INT_MAX:
        return leave, "min is a 32-bit field and cannot hold %d; %s" % (maximum, advice)
    # min is the value written; maxPerCore only has to stay at or below it once scaled, and below
    # the cap of 1.36 and newer, which cuts the scaled value but never min.
    block = {"maxPerCore": max(1, min(maximum, MAX_CAP) // int(cpus)), "min": maximum}
    wrong = [r for r in _targets(version) if conntrack_max(block, cpus, r.version) != maximum]
    if wrong:
        got = conntrack_max(block, cpus, wrong[0].version)
        return leave, ("with %s %s asks for at least %d (maxPerCore x CPUs) and cannot be held to %d; %s"
                       % (units.counted(cpus, "CPU"), _spans(wrong), got, maximum, advice))
    return block, None


def block_for(settings, cpus, config, version=None):
    """(the kube-proxy conntrack block that makes it write ``settings``, a note or None)."""
    rel, block, note = release(version), {}, None
    maximum = settings.get("nf_conntrack_max")
    if maximum:
        values, note = max_block(maximum, cpus, version)
        block.update(values)
    for key, _flag, kernel_key in FIELDS:
        if kernel_key and kernel_key in settings and key in rel.fields:
            value = settings[kernel_key]
            block[key] = bool(value) if key == "tcpBeLiberal" else go_duration(value)
    for key in DURATIONS:
        if key not in block and key in rel.fields and config.get(key):
            block[key] = go_duration(config[key])
    return block, note


def render_block(block, layout="v1alpha1"):
    indent = "    " if layout == "v1alpha2" else "  "
    lines = ["linux:", "  conntrack:"] if layout == "v1alpha2" else ["conntrack:"]
    for key, _flag, _kernel in FIELDS:
        if key in block:
            value = block[key]
            lines.append("%s%s: %s" % (indent, key, str(value).lower() if isinstance(value, bool) else value))
    return "\n".join(lines) + "\n"


def lowering(config, cpus, settings, version=None):
    """{key: {kube_proxy, recommended, reason}} for the table sizes kube-proxy leaves below ours."""
    out = {}
    asked = conntrack_max(config, cpus, version)
    if not asked:
        return out
    rel = release(version)
    scaled = (config.get("maxPerCore") or 0) * int(cpus or 0)
    for key, wanted in (("nf_conntrack_max", asked), ("nf_conntrack_buckets", hash_size(asked))):
        ours = settings.get(key)
        if not ours:
            continue
        after = after_restart(key, wanted, ours, version)
        if after >= ours:
            continue
        if rel.cap and scaled > rel.cap:
            why = ("maxPerCore %d x %d CPUs = %d is capped at %d by kube-proxy %s" % (
                config.get("maxPerCore"), cpus, scaled, rel.cap,
                "%d.%d and newer" % MAX_CAP_SINCE if not rel.known else "%d.%d" % rel.version))
        else:
            why = "max(maxPerCore %d x %d CPUs, min %d) = %d" % (config.get("maxPerCore"), cpus,
                                                                 config.get("min") or 0, asked)
        if key == "nf_conntrack_buckets":
            why = "the hash size follows the max it writes: " + why
        out[key] = {"kube_proxy": after, "recommended": ours, "reason": why}
    return out


def recommend(facts, **inputs):
    """The recommend module's whole answer: the sizing recommendation for ``facts`` with, under
    ``kube_proxy``, what a running kube-proxy's next start would do to it (the module and the
    fleet audit from a fact cache both answer with this)."""
    result = sizing.recommend(facts, **inputs)
    result["kube_proxy"] = plan(facts, result["settings"])
    return result


def plan(facts, settings):
    """recommend's ``kube_proxy``: None without a running kube-proxy, else what it will write and the block."""
    kp = ((facts or {}).get("environment") or {}).get("kube_proxy")
    if not kp:
        return None
    settings = settings or {}
    version = kp.get("version")
    rel = release(version)
    cpus = ((facts.get("memory") or {}).get("cpu_count")) or ((facts.get("stats") or {}).get("cpus"))
    current = facts.get("settings") or {}
    config = effective(kp.get("effective"))
    predicted = predict(config, cpus, current, version)
    wanted = predict(config, cpus, {}, version)
    differs = {}
    for key, value in sorted(settings.items()):
        # Ours survives its next start only when kube-proxy would leave it as it is.
        if key in wanted and after_restart(key, wanted[key], value, version) != value:
            differs[key] = {"kube_proxy": wanted[key], "recommended": value}
    block, note = block_for(settings, cpus, config, version) if settings else ({}, None)
    layout = kp.get("layout") or "v1alpha1"
    return {"pid": kp.get("pid"), "config_file": kp.get("config_file"), "effective": kp.get("effective"),
            "release": "%d.%d" % rel.version if rel.known else None, "layout": layout,
            "predicted": predicted, "differs": differs, "lowers": lowering(config, cpus, settings, version),
            "conntrack": block, "conntrack_yaml": render_block(block, layout) if differs else None,
            "reproduces": note is None, "note": note}
