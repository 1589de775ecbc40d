"""Save, restore and snapshot this machine's conntrack state for the host scenario.

    state.py save PATH      every writable netfilter key, our files and directories -> PATH (JSON)
    state.py restore PATH   put all of it back, then delete PATH (no-op when PATH is missing)
    state.py snapshot       every /proc/sys/net/netfilter setting and our files' bytes, as JSON
"""
import base64
import json
import os
import sys

NETFILTER = "/proc/sys/net/netfilter"
# Restored in this order first (buckets before max), then every other writable key.
FIRST = ("nf_conntrack_buckets", "nf_conntrack_max", "nf_conntrack_expect_max")
FILES = ("/etc/sysctl.d/90-netfilter-conntrack.conf", "/etc/modprobe.d/netfilter-conntrack.conf",
         "/etc/modules-load.d/netfilter-conntrack.conf", "/etc/udev/rules.d/90-netfilter-conntrack.rules",
         "/etc/ansible/facts.d/netfilter_conntrack.fact")
# Only the directories we may create; deepest first for removal.
DIRS = ("/etc/ansible/facts.d", "/etc/ansible")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def writable_keys():
    names = [n for n in os.listdir(NETFILTER) if os.stat(os.path.join(NETFILTER, n)).st_mode & 0o200]
    return [k for k in FIRST if k in names] + sorted(n for n in names if n not in FIRST)


def save(path):
    state = {
        "sysctls": [[k, read(os.path.join(NETFILTER, k)).decode().strip()] for k in writable_keys()],
        "files": dict((p, base64.b64encode(read(p)).decode() if os.path.exists(p) else None) for p in FILES),
        "dirs": dict((d, os.path.isdir(d)) for d in DIRS),
    }
    with open(path, "w") as f:
        json.dump(state, f, indent=1)


def restore(path):
    if not os.path.exists(path):
        return
    with open(path) as f:
        state = json.load(f)
    for key, value in state["sysctls"]:  # buckets first
        full = os.path.join(NETFILTER, key)
        if read(full).decode().strip() != value:
            with open(full, "w") as f:
                f.write(value + "\n")
    for p, data in state["files"].items():
        if data is None:
            if os.path.exists(p):
                os.unlink(p)
        else:
            with open(p, "wb") as f:
                f.write(base64.b64decode(data))
    for d in DIRS:
        if not state["dirs"][d] and os.path.isdir(d) and not os.listdir(d):
            os.rmdir(d)
    os.unlink(path)


def snapshot():
    values = {}
    for name in sorted(os.listdir(NETFILTER)):
        full = os.path.join(NETFILTER, name)
        # The count moves with traffic; everything else must hold still.
        if os.path.isfile(full) and name != "nf_conntrack_count":
            values[name] = read(full).decode().strip()
    files = dict((p, base64.b64encode(read(p)).decode() if os.path.exists(p) else None) for p in FILES)
    print(json.dumps({"sysctls": values, "files": files}, sort_keys=True))


if __name__ == "__main__":
    {"save": lambda: save(sys.argv[2]), "restore": lambda: restore(sys.argv[2]), "snapshot": snapshot}[sys.argv[1]]()
