"""The tries of the adversarial suite (issue 9), as data.

Each try names a module, its arguments, how to prepare the hostile place (``setup``, run
inside the try's sandbox) and what must happen (``expect``). test_adversarial.py runs every
try in a fresh sandbox (tests/support/sandbox.py), once for real and once with --check (and
with --check --diff for path tricks), and compares snapshots taken before and after.
"""
import json

HEADER = "# Managed by Ansible (netfilter.conntrack.settings). Local edits are overwritten.\n"
DROPIN = "/etc/sysctl.d/90-netfilter-conntrack.conf"
MODPROBE = "/etc/modprobe.d/netfilter-conntrack.conf"
MODULES_LOAD = "/etc/modules-load.d/netfilter-conntrack.conf"
UDEV = "/etc/udev/rules.d/90-netfilter-conntrack.rules"
RECORD = "/etc/ansible/facts.d/netfilter_conntrack.fact"
# In a link target or a foreign file: must never show in a diff or a message.
SECRET = "NCADV-SECRET-CONTENT-7f3a"
# Unlikely to be any namespace's default (30 s); the value a try would apply if it got through.
UDP = 37
OURS = HEADER + "net.netfilter.nf_conntrack_udp_timeout = 35\n"
FILES = {"sysctl": DROPIN, "modprobe": MODPROBE, "modules_load": MODULES_LOAD, "udev_rule": UDEV}


def record(**overrides):
    data = {"schema_version": 1, "original": {"nf_conntrack_udp_timeout": 30},
            "recorded_at": "2026-01-01T00:00:00Z", "applied": {"nf_conntrack_udp_timeout": 35},
            "applied_at": "2026-01-01T00:00:00Z", "pressure_entries": None, "files": dict(FILES)}
    data.update(overrides)
    return json.dumps(data, indent=4, sort_keys=True) + "\n"


VALID_RECORD = record()


# --------------------------------------------------------------- expectations
class Expect(object):
    diff = False   # also run with --check --diff

    def problems(self, res, change, mode):
        raise NotImplementedError


def _msg(res):
    return str(res.get("msg", ""))


def _common_refusal(res, change, needles):
    out = []
    if not res.get("failed"):
        out.append("not failed")
    if res.get("changed"):
        out.append("changed is true")
    msg = _msg(res)
    for needle in needles:
        if needle not in msg:
            out.append("msg lacks %r" % needle)
    if msg.startswith("[Errno") or msg.startswith("Errno"):
        out.append("bare errno message")
    if SECRET in res.get("_stdout", "") or SECRET in msg:
        out.append("a foreign file's content leaked into the output")
    if change["files"] or change["sysctls"]:
        out.append("host changed: %s" % _short(change))
    return out


def _short(change):
    from support.hoststate import summary
    return summary(change)


class Refused(Expect):
    """Failed, changed false, msg starts 'nothing was changed:' and names the option and value."""

    def __init__(self, *needles, **kw):
        self.needles = needles
        self.diff = kw.get("diff", False)

    def problems(self, res, change, mode):
        out = _common_refusal(res, change, self.needles)
        if not _msg(res).startswith("nothing was changed:"):
            out.append("msg does not start with 'nothing was changed:'")
        return out

    def __repr__(self):
        return "refused%r" % (self.needles,)


class Rejected(Expect):
    """An argument-spec refusal by ansible-core itself: failed, nothing changed, the option named."""

    def __init__(self, *needles):
        self.needles = needles

    def problems(self, res, change, mode):
        return _common_refusal(res, change, self.needles)


class RecordRefused(Expect):
    """tuning record PATH cannot be used: WHY. Nothing was changed. ... (never overwritten)."""

    def __init__(self, path=RECORD, why=None, diff=False):
        self.path, self.why, self.diff = path, why, diff

    def problems(self, res, change, mode):
        needles = ["tuning record %s cannot be used" % self.path]
        if self.why:
            needles.append(self.why)
        out = _common_refusal(res, change, needles)
        # The contract's sentence says "Nothing was changed."; the common prefix says it as well.
        if "nothing was changed" not in _msg(res).lower():
            out.append("msg does not say that nothing was changed")
        return out


class RolledBack(Expect):
    """A write that fails: failed, the host exactly as before, and the message says so: either
    refused up front ('nothing was changed:', a preflight that saw it coming) or 'rolled back'
    after a failure midway; never 'worked'.

    In check mode nothing is written, so any answer is fine as long as nothing changes."""

    def __init__(self, *needles):
        self.needles = needles

    def problems(self, res, change, mode):
        if mode != "normal":
            return ["host changed: %s" % _short(change)] if change["files"] or change["sysctls"] else []
        out = _common_refusal(res, change, self.needles)
        msg = _msg(res)
        if not (msg.startswith("nothing was changed:") or "rolled back" in msg):
            out.append("msg neither starts with 'nothing was changed:' nor says 'rolled back'")
        if "worked" in msg:
            out.append("msg says 'worked'")
        if "ROLLBACK FAILED" in msg and not (change["files"] or change["sysctls"]):
            out.append("msg claims a failed rollback, but the host is exactly as before")
        return out


class Applied(Expect):
    """Success with exactly this change (summary form); check mode predicts changed and writes nothing."""

    def __init__(self, change, diff=False):
        self.change = change
        self.diff = diff

    def problems(self, res, change, mode):
        out = []
        if res.get("failed"):
            out.append("failed: %s" % _msg(res)[:300])
        if not res.get("changed"):
            out.append("changed is false")
        got = _short(change)
        want = self.change if mode == "normal" else {}
        if got != want:
            out.append("change %r, expected %r" % (got, want))
        if SECRET in res.get("_stdout", ""):
            out.append("a foreign file's content leaked into the output")
        return out


class FactsRecord(Expect):
    """facts succeeds, reports tuning_record (dict or None) and tuning_record_error, changes nothing."""

    def __init__(self, record=None, error=None):
        self.record, self.error = record, error

    def problems(self, res, change, mode):
        out = []
        if res.get("failed"):
            return ["failed: %s" % _msg(res)[:300]]
        env = res.get("ansible_facts", {}).get("conntrack", {}).get("environment", {})
        if env.get("tuning_record") != self.record:
            out.append("tuning_record %r, expected %r" % (str(env.get("tuning_record"))[:80], self.record))
        err = env.get("tuning_record_error")
        if self.error is None and err is not None:
            out.append("tuning_record_error %r, expected null" % err)
        if self.error is not None and (not isinstance(err, str) or self.error not in err):
            out.append("tuning_record_error %r lacks %r" % (err, self.error))
        if change["files"] or change["sysctls"]:
            out.append("host changed: %s" % _short(change))
        return out


# ---------------------------------------------------------------------- tries
class Try(object):
    def __init__(self, id, args, expect, setup=(), module="settings", netns=True, extra=(), timeout=60,
                 needs_contract=False):
        # needs_contract: old code would really apply it to the host (a global max of 1): run it
        # only once the settings module has the issue 9 options (force).
        self.needs_contract = needs_contract
        self.id, self.args, self.expect, self.setup = id, args, expect, setup
        self.module, self.netns, self.extra, self.timeout = module, netns, extra, timeout

    def __repr__(self):
        return self.id


def s(extra=None, **kw):
    """settings args: a per-namespace key that would change, plus options."""
    args = {"settings": dict({"nf_conntrack_udp_timeout": UDP}, **(extra or {}))}
    args.update(kw)
    return args


def key_try(id, key, value, *needles):
    return Try(id, {"settings": {key: value}}, Refused(*needles))


def value_try(id, key, value, *needles):
    return Try(id, s({key: value}), Refused(key, *needles))


TRIES = [
    # ---- wrong types and ranges: the option (key) and the value given are named
    value_try("max-string-word", "nf_conntrack_max", "lots", "'lots'"),
    value_try("max-float", "nf_conntrack_max", 1.5, "1.5"),
    value_try("max-list", "nf_conntrack_max", [1024], "[1024]"),
    value_try("max-null", "nf_conntrack_max", None, "None"),
    value_try("max-dict", "nf_conntrack_max", {"v": 1}, "'v'"),
    value_try("max-bool", "nf_conntrack_max", True, "True"),
    value_try("max-hex-string", "nf_conntrack_max", "0x10000", "'0x10000'"),
    value_try("max-exponent-string", "nf_conntrack_max", "1e6", "'1e6'"),
    value_try("max-empty-string", "nf_conntrack_max", "", "''"),
    value_try("max-negative", "nf_conntrack_max", -1, "-1"),
    value_try("max-above-int-max", "nf_conntrack_max", 2 ** 31, "2147483648"),
    value_try("max-2-to-the-64", "nf_conntrack_max", 2 ** 64, "18446744073709551616"),
    value_try("buckets-zero", "nf_conntrack_buckets", 0, "0"),
    value_try("buckets-above-limit", "nf_conntrack_buckets", 2 ** 28, "268435456"),
    value_try("buckets-decimal-string", "nf_conntrack_buckets", "100000.0", "'100000.0'"),
    value_try("expect-max-zero", "nf_conntrack_expect_max", 0, "0"),
    value_try("timeout-zero", "nf_conntrack_tcp_timeout_established", 0, "0"),
    value_try("timeout-above-jiffies-limit", "nf_conntrack_tcp_timeout_established", 2147484, "2147484"),
    value_try("timeout-negative", "nf_conntrack_tcp_timeout_time_wait", -5, "-5"),
    value_try("timeout-command-string", "nf_conntrack_tcp_timeout_time_wait", "15; reboot", "'15; reboot'"),
    value_try("switch-two", "nf_conntrack_tcp_loose", 2, "2"),
    value_try("switch-yes-string", "nf_conntrack_acct", "yes", "'yes'"),
    value_try("events-three", "nf_conntrack_events", 3, "3"),
    value_try("log-invalid-256", "nf_conntrack_log_invalid", 256, "256"),
    value_try("max-retrans-negative", "nf_conntrack_tcp_max_retrans", -1, "-1"),
    Try("frag6-low-above-high", s({"nf_conntrack_frag6_low_thresh": 4194304, "nf_conntrack_frag6_high_thresh": 1024}),
        Refused("nf_conntrack_frag6_low_thresh")),
    # ---- keys off the allowlist
    key_try("key-count-read-only", "nf_conntrack_count", 5, "nf_conntrack_count"),
    key_try("key-unknown", "nf_conntrack_foo", 1, "nf_conntrack_foo"),
    key_try("key-other-subsystem", "net.ipv4.ip_forward", 1, "net.ipv4.ip_forward"),
    key_try("key-path-traversal", "../../ipv4/ip_forward", 1, "../../ipv4/ip_forward"),
    key_try("key-traversal-behind-prefix", "nf_conntrack_max/../../../ipv4/ip_forward", 1, "nf_conntrack_max/"),
    key_try("key-trailing-newline", "nf_conntrack_max\n", 262144, "nf_conntrack_max"),
    key_try("key-upper-case", "NF_CONNTRACK_MAX", 262144, "NF_CONNTRACK_MAX"),
    key_try("key-trailing-space", "nf_conntrack_max ", 262144, "nf_conntrack_max"),
    key_try("key-empty", "", 1, "''"),
    key_try("key-prefix-only", "nf_conntrack_", 1, "nf_conntrack_"),
    key_try("key-nf-log", "nf_log/2", 1, "nf_log/2"),
    key_try("key-homoglyph", u"nf_conntrack_m\u0430x", 262144, u"nf_conntrack_m\u0430x"),
    key_try("key-shell-metacharacters", "nf_conntrack_max; rm -rf /", 1, "rm -rf"),
    Try("key-good-and-bad-mixed", s({"nf_conntrack_bad": 1}), Refused("nf_conntrack_bad")),
    # ---- options of the wrong type or out of their choices (ansible-core's argument spec)
    Try("settings-a-list", {"settings": [1, 2]}, Rejected("settings")),
    Try("settings-empty", {"settings": {}}, Refused("settings")),
    Try("state-purge", s(state="purge"), Rejected("state")),
    Try("boot-fix-sometimes", s(boot_fix="sometimes"), Rejected("boot_fix")),
    Try("kube-proxy-maybe", s(kube_proxy="maybe"), Rejected("kube_proxy")),
    Try("runtime-not-a-bool", s(runtime="perhaps"), Rejected("runtime")),
    Try("force-not-a-bool", s(force="perhaps"), Rejected("force")),
    Try("unknown-option", s(nonsense_option=1), Rejected("nonsense_option")),
    Try("pressure-entries-negative", s(record_pressure_entries=-1), Refused("record_pressure_entries", "-1")),
    Try("pressure-entries-a-word", s(record_pressure_entries="many"), Rejected("record_pressure_entries")),
    # ---- legal but almost surely a mistake: needs force (initial namespace: max is global)
    Try("max-one-without-force", {"settings": {"nf_conntrack_max": 1}}, Refused("force", "nf_conntrack_max", "1"),
        netns=False, needs_contract=True),
    Try("max-zero-without-force", {"settings": {"nf_conntrack_max": 0}}, Refused("force", "nf_conntrack_max", "0"),
        netns=False),
    Try("max-1023-without-force", {"settings": {"nf_conntrack_max": 1023}}, Refused("force", "1023"), netns=False, needs_contract=True),
    Try("max-one-as-key-value-string", {"settings": "nf_conntrack_max=1"}, Refused("force", "nf_conntrack_max"),
        netns=False, needs_contract=True),
    # ---- path tricks: only our own file name, directly in a directory the boot reads
    Try("dropin-etc-sysctl-conf", s(sysctl_file="/etc/sysctl.conf"),
        Refused("sysctl_file", "'/etc/sysctl.conf'", diff=True)),
    Try("dropin-etc-sysctl-conf-absent", s(sysctl_file="/etc/sysctl.conf", state="absent"),
        Refused("sysctl_file", "'/etc/sysctl.conf'")),
    Try("dropin-resolv-conf", s(sysctl_file="/etc/resolv.conf"), Refused("sysctl_file", "'/etc/resolv.conf'", diff=True)),
    Try("dropin-resolv-conf-absent", s(sysctl_file="/etc/resolv.conf", state="absent"),
        Refused("sysctl_file", "'/etc/resolv.conf'")),
    Try("dropin-distribution-99-sysctl", s(sysctl_file="/etc/sysctl.d/99-sysctl.conf"),
        Refused("sysctl_file", "99-sysctl.conf", diff=True)),
    Try("dropin-distribution-99-sysctl-absent", s(sysctl_file="/etc/sysctl.d/99-sysctl.conf", state="absent"),
        Refused("sysctl_file", "99-sysctl.conf")),
    Try("dropin-in-tmp", s(sysctl_file="/tmp/ncadv-x.conf"), Refused("sysctl_file", "/tmp/ncadv-x.conf"),
        extra=("/tmp/ncadv-x.conf",)),
    Try("dropin-subdirectory", s(sysctl_file="/etc/sysctl.d/sub/netfilter-conntrack.conf"),
        Refused("sysctl_file", "sub/netfilter-conntrack.conf")),
    Try("dropin-dotdot", s(sysctl_file="/etc/sysctl.d/../sysctl.d/90-netfilter-conntrack.conf"),
        Refused("sysctl_file", "..")),
    Try("dropin-dotdot-to-etc", s(sysctl_file="/etc/sysctl.d/../netfilter-conntrack.conf"),
        Refused("sysctl_file", "..")),
    Try("dropin-relative", s(sysctl_file="sysctl.d/netfilter-conntrack.conf"),
        Refused("sysctl_file", "sysctl.d/netfilter-conntrack.conf")),
    Try("dropin-home-tilde", s(sysctl_file="~/netfilter-conntrack.conf"), Refused("sysctl_file", "netfilter-conntrack.conf")),
    Try("dropin-wrong-suffix", s(sysctl_file="/etc/sysctl.d/90-netfilter-conntrack.txt"), Refused("sysctl_file", ".txt")),
    Try("dropin-trailing-slash", s(sysctl_file="/etc/sysctl.d/90-netfilter-conntrack.conf/"),
        Refused("sysctl_file", "90-netfilter-conntrack.conf/")),
    Try("dropin-foreign-name", s(sysctl_file="/etc/sysctl.d/50-evil.conf"), Refused("sysctl_file", "50-evil.conf")),
    Try("dropin-newline-in-name", s(sysctl_file="/etc/sysctl.d/90-netfilter-conntrack.conf\n/etc/sysctl.conf"),
        Refused("sysctl_file")),
    Try("dropin-in-modprobe-dir", s(sysctl_file="/etc/modprobe.d/netfilter-conntrack.conf"),
        Refused("sysctl_file", "/etc/modprobe.d/")),
    Try("dropin-under-proc", s(sysctl_file="/proc/sys/net/netfilter/netfilter-conntrack.conf"),
        Refused("sysctl_file", "/proc/sys")),
    Try("modprobe-foreign-name", s(modprobe_file="/etc/modprobe.d/00-evil.conf"), Refused("modprobe_file", "00-evil.conf")),
    Try("modprobe-in-sysctl-dir", s(modprobe_file="/etc/sysctl.d/netfilter-conntrack.conf"),
        Refused("modprobe_file", "/etc/sysctl.d/")),
    Try("modules-load-distribution-file", s(modules_load_file="/etc/modules-load.d/modules.conf", boot_fix="always"),
        Refused("modules_load_file", "modules.conf", diff=True)),
    Try("modules-load-distribution-file-absent", s(modules_load_file="/etc/modules-load.d/modules.conf", state="absent"),
        Refused("modules_load_file", "modules.conf")),
    Try("modules-load-etc-modules", s(modules_load_file="/etc/modules", boot_fix="always"),
        Refused("modules_load_file", "/etc/modules")),
    Try("udev-wrong-suffix", s(udev_rule_file="/etc/udev/rules.d/90-netfilter-conntrack.conf", boot_fix="always"),
        Refused("udev_rule_file", ".conf")),
    Try("udev-foreign-name", s(udev_rule_file="/etc/udev/rules.d/99-evil.rules", boot_fix="always"),
        Refused("udev_rule_file", "99-evil.rules")),
    Try("udev-udev-conf-absent", s(udev_rule_file="/etc/udev/udev.conf", state="absent"),
        Refused("udev_rule_file", "udev.conf")),
    # ---- accepted paths: the exact change, nothing else
    Try("dropin-run-sysctl-d", s(sysctl_file="/run/sysctl.d/netfilter-conntrack.conf"),
        Applied({"/run/sysctl.d": "created", "/run/sysctl.d/netfilter-conntrack.conf": "created",
                 "nf_conntrack_udp_timeout": str(UDP)}), extra=("/run/sysctl.d",)),
    Try("dropin-numbered-with-suffix", s(sysctl_file="/etc/sysctl.d/10-netfilter-conntrack_extra.conf"),
        Applied({"/etc/sysctl.d/10-netfilter-conntrack_extra.conf": "created", "nf_conntrack_udp_timeout": str(UDP)})),
    Try("dropin-default-path", s(), Applied({DROPIN: "created", "nf_conntrack_udp_timeout": str(UDP)})),
    # ---- what sits at the drop-in path: only our regular file is ever opened or replaced
    Try("dropin-symlink-to-sysctl-conf", s(), Refused("sysctl_file", "symlink", diff=True),
        setup=[("symlink", DROPIN, "../sysctl.conf")]),
    Try("dropin-symlink-to-our-looking-file", s(), Refused("sysctl_file", "symlink", diff=True),
        setup=[("write", "/srv/ncadv/target.conf", HEADER + "# " + SECRET + "\n"), ("symlink", DROPIN, "/srv/ncadv/target.conf")],
        extra=("/srv/ncadv",)),
    Try("dropin-dangling-symlink", s(), Refused("sysctl_file", "symlink"), setup=[("symlink", DROPIN, "/nonexistent/x.conf")]),
    Try("dropin-symlink-to-dev-zero", s(), Refused("sysctl_file", "symlink", diff=True), setup=[("symlink", DROPIN, "/dev/zero")],
        timeout=15),
    Try("dropin-fifo", s(), Refused("sysctl_file", "FIFO", diff=True), setup=[("fifo", DROPIN)], timeout=15),
    Try("dropin-directory", s(), Refused("sysctl_file", "directory"), setup=[("mkdir", DROPIN)]),
    Try("dropin-socket", s(), Refused("sysctl_file", "socket"), setup=[("socket", DROPIN)]),
    Try("dropin-char-device", s(), Refused("sysctl_file", "device"), setup=[("chardev", DROPIN)], timeout=15),
    Try("dropin-foreign-file", s(), Refused("sysctl_file", "force", diff=True),
        setup=[("write", DROPIN, "# " + SECRET + "\nnet.netfilter.nf_conntrack_udp_timeout = 99\n")]),
    Try("dropin-foreign-file-with-force", s(force=True),
        Applied({DROPIN: "modified", "nf_conntrack_udp_timeout": str(UDP)}),
        setup=[("write", DROPIN, "# someone else's\nnet.netfilter.nf_conntrack_udp_timeout = 99\n")]),
    Try("dropin-foreign-file-absent", s(state="absent"), Refused("sysctl_file", "force"),
        setup=[("write", DROPIN, "# someone else's\n")]),
    Try("dropin-hardlink-to-sysctl-conf", s(), Refused("sysctl_file", "force"),
        setup=[("hardlink", DROPIN, "/etc/sysctl.conf")]),
    Try("dropin-symlink-absent", s(state="absent"), Refused("sysctl_file", "symlink"),
        setup=[("symlink", DROPIN, "../sysctl.conf")]),
    Try("dropin-ours-wrong-mode", s(), Applied({DROPIN: "modified", "nf_conntrack_udp_timeout": str(UDP)}),
        setup=[("write", DROPIN, OURS, 0o600)]),
    Try("modules-load-symlink", s(boot_fix="always"), Refused("modules_load_file", "symlink", diff=True),
        setup=[("symlink", MODULES_LOAD, "../modules")]),
    Try("udev-rule-fifo", s(boot_fix="always"), Refused("udev_rule_file", "FIFO"), setup=[("fifo", UDEV)], timeout=15),
    Try("modprobe-directory-absent", s(state="absent"), Refused("modprobe_file", "directory"),
        setup=[("mkdir", MODPROBE)]),
    # ---- failures midway: immutable, read-only and full file systems
    Try("dropin-immutable", s(), RolledBack(), setup=[("write", DROPIN, OURS), ("immutable", DROPIN)]),
    Try("record-immutable", s(record_file=RECORD), RolledBack(),
        setup=[("write", RECORD, VALID_RECORD), ("immutable", RECORD)]),
    # EPERM on the last file, after the others (and their backups) were written: the midway path.
    Try("udev-rule-immutable-after-others-with-backups", s(backup=True, boot_fix="always", record_file=RECORD),
        RolledBack(), setup=[("write", MODULES_LOAD, HEADER + "# old\nnf_conntrack\n"), ("write", DROPIN, OURS),
                             ("write", UDEV, HEADER + "# old rule\n"), ("immutable", UDEV)]),
    Try("sysctl-d-read-only", s(), Refused("read-only"), setup=[("ro", "/etc/sysctl.d")]),
    Try("facts-d-read-only", s(record_file=RECORD), Refused("read-only"),
        setup=[("mkdir", "/etc/ansible/facts.d"), ("ro", "/etc/ansible/facts.d")]),
    Try("udev-dir-read-only-boot-fix", s(boot_fix="always"), Refused("read-only"), setup=[("ro", "/etc/udev/rules.d")]),
    Try("sysctl-d-full", s(), RolledBack(), setup=[("full", "/etc/sysctl.d")]),
    Try("sysctl-d-full-ours-existing", s(), RolledBack(), setup=[("write", DROPIN, OURS), ("full", "/etc/sysctl.d")]),
    Try("full-with-backups", s(backup=True, boot_fix="always"), RolledBack(),
        setup=[("write", MODULES_LOAD, HEADER + "# old\nnf_conntrack\n"), ("write", DROPIN, OURS),
               ("full", "/etc/sysctl.d")]),
    Try("udev-dir-full-after-others", s(boot_fix="always"), RolledBack(), setup=[("full", "/etc/udev/rules.d")]),
    Try("sysctl-d-out-of-inodes", s(), RolledBack(), setup=[("inodes", "/etc/sysctl.d")]),
    Try("out-of-inodes-with-backups", s(backup=True, boot_fix="always"), RolledBack(),
        setup=[("write", MODULES_LOAD, HEADER + "# old\nnf_conntrack\n"), ("write", DROPIN, OURS),
               ("inodes", "/etc/sysctl.d")]),
    Try("udev-dir-out-of-inodes-after-others", s(boot_fix="always", record_file=RECORD), RolledBack(),
        setup=[("inodes", "/etc/udev/rules.d")]),
    Try("facts-d-full", s(record_file=RECORD), RolledBack(),
        setup=[("mkdir", "/etc/ansible/facts.d"), ("full", "/etc/ansible/facts.d")]),
    Try("full-after-creating-facts-d", s(record_file=RECORD), RolledBack(), setup=[("full", "/etc/sysctl.d")]),
    # ---- tuning records that cannot be used: never overwritten, never deleted
    Try("record-empty", s(record_file=RECORD), RecordRefused(), setup=[("write", RECORD, "")]),
    Try("record-truncated", s(record_file=RECORD), RecordRefused(), setup=[("write", RECORD, VALID_RECORD[:40])]),
    Try("record-not-json", s(record_file=RECORD), RecordRefused(), setup=[("write", RECORD, "hello\n")]),
    Try("record-json-array", s(record_file=RECORD), RecordRefused(), setup=[("write", RECORD, "[1, 2]\n")]),
    Try("record-schema-2", s(record_file=RECORD), RecordRefused(), setup=[("write", RECORD, record(schema_version=2))]),
    Try("record-original-strings", s(record_file=RECORD), RecordRefused(),
        setup=[("write", RECORD, record(original={"nf_conntrack_udp_timeout": "x"}))]),
    Try("record-original-a-list", s(record_file=RECORD), RecordRefused(), setup=[("write", RECORD, record(original=[30]))]),
    Try("record-files-not-an-object", s(record_file=RECORD), RecordRefused(),
        setup=[("write", RECORD, record(files="/etc/sysctl.conf"))]),
    Try("record-over-one-mib", s(record_file=RECORD), RecordRefused(),
        setup=[("write", RECORD, record(pad="x" * (1 << 20)))]),
    Try("record-fifo", s(record_file=RECORD), RecordRefused(why="FIFO"), setup=[("fifo", RECORD)], timeout=15),
    Try("record-symlink", s(record_file=RECORD), RecordRefused(why="symlink"),
        setup=[("write", "/srv/ncadv/record.fact", VALID_RECORD), ("symlink", RECORD, "/srv/ncadv/record.fact")],
        extra=("/srv/ncadv",)),
    Try("record-directory", s(record_file=RECORD), RecordRefused(why="directory"), setup=[("mkdir", RECORD)]),
    Try("record-symlink-to-dev-zero", s(record_file=RECORD), RecordRefused(why="symlink"),
        setup=[("symlink", RECORD, "/dev/zero")], timeout=15),
    Try("record-is-dev-zero", s(record_file="/dev/zero"), RecordRefused(path="/dev/zero"), timeout=15),
    Try("record-etc-passwd", s(record_file="/etc/passwd"), RecordRefused(path="/etc/passwd")),
    Try("record-etc-sysctl-conf", s(record_file="/etc/sysctl.conf"), RecordRefused(path="/etc/sysctl.conf")),
    Try("record-wrong-suffix-in-facts-d", s(record_file="/etc/ansible/facts.d/netfilter_conntrack.json"),
        Refused("record_file", ".fact")),
    Try("record-relative", s(record_file="netfilter_conntrack.fact"), Refused("record_file", "netfilter_conntrack.fact")),
    Try("record-trailing-slash", s(record_file="/etc/ansible/facts.d/"), Refused("record_file")),
    Try("record-new-file-elsewhere", s(record_file="/srv/ncadv-new/record.json"),
        Applied({DROPIN: "created", "/srv/ncadv-new": "created", "/srv/ncadv-new/record.json": "created",
                 "nf_conntrack_udp_timeout": str(UDP)}), extra=("/srv/ncadv-new",)),
    # ---- rollback (state absent, settings empty) driven by a record: every named file is checked
    Try("rollback-record-names-sysctl-conf", {"state": "absent", "record_file": RECORD}, Refused("/etc/sysctl.conf"),
        setup=[("write", RECORD, record(files=dict(FILES, sysctl="/etc/sysctl.conf")))]),
    Try("rollback-record-names-resolv-conf", {"state": "absent", "record_file": RECORD}, Refused("/etc/resolv.conf"),
        setup=[("write", RECORD, record(files=dict(FILES, sysctl="/etc/resolv.conf")))]),
    Try("rollback-record-names-distribution-symlink", {"state": "absent", "record_file": RECORD},
        Refused("99-sysctl.conf"), setup=[("write", RECORD, record(files=dict(FILES, sysctl="/etc/sysctl.d/99-sysctl.conf")))]),
    Try("rollback-record-names-dotdot", {"state": "absent", "record_file": RECORD}, Refused(".."),
        setup=[("write", RECORD, record(files=dict(FILES, sysctl="/etc/sysctl.d/../sysctl.conf")))]),
    Try("rollback-record-original-traversal-key", {"state": "absent", "record_file": RECORD},
        Refused(RECORD, "'../../ipv4/ip_forward'"), setup=[("write", RECORD, record(original={"../../ipv4/ip_forward": 1}))]),
    Try("rollback-record-foreign-dropin", {"state": "absent", "record_file": RECORD}, Refused("sysctl_file", "force"),
        setup=[("write", RECORD, VALID_RECORD), ("write", DROPIN, "# someone else's\n")]),
    Try("rollback-from-record", {"state": "absent", "record_file": RECORD},
        Applied({DROPIN: "removed", RECORD: "removed", "nf_conntrack_udp_timeout": "30"}),
        setup=[("write", RECORD, VALID_RECORD), ("write", DROPIN, OURS), ("sysctl", "nf_conntrack_udp_timeout", 35)]),
    # ---- facts reads the same records with the same reader: never hangs, never guesses
    Try("facts-record-fifo", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(error="FIFO"),
        module="facts", setup=[("fifo", RECORD)], timeout=15),
    Try("facts-record-dev-zero", {"record_file": "/dev/zero", "gather_kernel_log": False}, FactsRecord(error="/dev/zero"),
        module="facts", timeout=15),
    Try("facts-record-symlink", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(error="symlink"),
        module="facts", setup=[("write", "/srv/ncadv/record.fact", VALID_RECORD), ("symlink", RECORD, "/srv/ncadv/record.fact")],
        extra=("/srv/ncadv",)),
    Try("facts-record-not-json", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(error=RECORD),
        module="facts", setup=[("write", RECORD, "hello\n")]),
    Try("facts-record-truncated", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(error=RECORD),
        module="facts", setup=[("write", RECORD, VALID_RECORD[:40])]),
    Try("facts-record-directory", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(error="directory"),
        module="facts", setup=[("mkdir", RECORD)]),
    Try("facts-record-over-one-mib", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(error=RECORD),
        module="facts", setup=[("write", RECORD, record(pad="x" * (1 << 20)))]),
    Try("facts-record-valid", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(record=json.loads(VALID_RECORD)),
        module="facts", setup=[("write", RECORD, VALID_RECORD)]),
    Try("facts-record-missing", {"record_file": RECORD, "gather_kernel_log": False}, FactsRecord(), module="facts"),
]

IDS = [t.id for t in TRIES]
assert len(set(IDS)) == len(IDS), "duplicate try ids"
