"""A private mount namespace (and by default a network namespace) for runs that might damage a host.

``Sandbox`` starts one holder process with ``unshare -m --propagation private [-n]`` that mounts
an overlay over /etc, /run, /usr, /var, /root, /home, /opt and /srv, with the upper layers on a
tmpfs of its own. Everything a module writes there lands in that tmpfs and vanishes with the
namespace, so a try that aims at /etc/sysctl.conf can never damage this machine, even against
code that does not refuse it. /proc/sys is the network namespace's: with ``netns=True``
(the default) the timeouts a try changes are those of a throwaway namespace; the global keys are
read-only there, as in any container.

Commands enter the namespaces with nsenter, under a watchdog (``timeout``, which kills the
whole process group it started) and an address-space limit, so a run that hangs on a FIFO or
reads /dev/zero fails instead of hanging the suite or exhausting the memory.

Setup helpers make the hostile places: files, symlinks, FIFOs, sockets, devices, immutable files
(chattr +i, cleared again on exit), read-only directories (a read-only bind mount) and full
ones (a tiny tmpfs holding a copy of the directory and a filler file).
"""
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile

from . import hoststate
from .kernel import run

OVERLAID = ("/etc", "/run", "/usr", "/var", "/root", "/home", "/opt", "/srv")
HOSTSTATE = os.path.abspath(hoststate.__file__)

SETUP = r'''
set -eu
D=$1
mount -t tmpfs -o size=512m,mode=0700 ncadv-scratch "$D"
shift
for p in "$@"; do
    [ -d "$p" ] || continue
    n=$(printf %s "$p" | tr / _)
    mkdir -p "$D/upper$n" "$D/work$n"
    mount -t overlay ncadv-overlay -o "lowerdir=$p,upperdir=$D/upper$n,workdir=$D/work$n" "$p"
done
ip link set lo up 2>/dev/null || true
echo ready
exec sleep 86400
'''


class HangError(RuntimeError):
    """A run outlived its watchdog."""


class Sandbox(object):
    def __init__(self, netns=True, timeout=60, address_space=3 << 30):
        self.netns = netns
        self.timeout = timeout
        self.address_space = address_space
        self.scratch = None
        self.holder = None
        self.immutable = []

    # ------------------------------------------------------------ lifecycle
    def __enter__(self):
        self.scratch = tempfile.mkdtemp(prefix="ncadv-", dir="/tmp")
        cmd = ["unshare", "-m", "--propagation", "private"] + (["-n"] if self.netns else [])
        cmd += ["sh", "-c", SETUP, "sandbox", self.scratch] + list(OVERLAID)
        self.holder = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       universal_newlines=True)
        line = self.holder.stdout.readline().strip()
        if line != "ready":
            err = self.holder.stderr.read() if self.holder.poll() is not None else ""
            self.close()
            raise RuntimeError("sandbox setup failed: %r %s" % (line, err))
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.holder is not None:
            for path in self.immutable:
                self.sh("chattr -i %s" % shlex.quote(path), check=False)
            self.immutable = []
            if self.holder.poll() is None:
                self.holder.kill()  # our holder, by its PID; the namespace goes with it
            self.holder.wait(timeout=10)
            self.holder = None
        if self.scratch is not None:
            try:
                os.rmdir(self.scratch)  # an empty mount point on the host
            except OSError:
                pass
            self.scratch = None

    # ------------------------------------------------------------- commands
    def enter(self, cmd):
        """cmd inside the namespaces, without the watchdog."""
        pid = str(self.holder.pid)
        return ["nsenter", "-t", pid, "-m"] + (["-n"] if self.netns else []) + ["--"] + list(cmd)

    def argv(self, cmd):
        """cmd inside the namespaces, killed (with its process group) after ``timeout`` seconds."""
        return (["timeout", "-k", "5", str(self.timeout), "prlimit", "--as=%d" % self.address_space]
                + self.enter(cmd))

    def exec(self, cmd, check=True, **kwargs):
        return run(self.argv(cmd), check=check, **kwargs)

    def popen(self, cmd, **kwargs):
        return subprocess.Popen(self.argv(cmd), **kwargs)

    def sh(self, script, check=True, **kwargs):
        return run(self.enter(["sh", "-c", "set -eu\n" + script]), check=check, **kwargs)

    def snapshot(self, extra_paths=()):
        res = self.exec([sys.executable, HOSTSTATE] + list(extra_paths))
        return json.loads(res.stdout)

    # ---------------------------------------------------------------- setup
    def write(self, path, data, mode=0o644):
        data = data.encode() if isinstance(data, str) else data
        run(self.enter(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod %o "$1"' % mode,
                        "write", path]), input=data, universal_newlines=False)

    def mkdir(self, path):
        self.sh("mkdir -p %s" % shlex.quote(path))

    def symlink(self, path, target):
        quoted = (shlex.quote(path), shlex.quote(target), shlex.quote(path))
        self.sh('mkdir -p "$(dirname %s)" && ln -s %s %s' % quoted)

    def hardlink(self, path, target):
        self.sh("ln %s %s" % (shlex.quote(target), shlex.quote(path)))

    def fifo(self, path):
        self.sh('mkdir -p "$(dirname %s)" && mkfifo %s' % (shlex.quote(path), shlex.quote(path)))

    def socket(self, path):
        self.mkdir(os.path.dirname(path))
        run(self.enter([sys.executable, "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
                        path]))

    def chardev(self, path, major=1, minor=3):
        quoted = shlex.quote(path)
        self.sh('mkdir -p "$(dirname %s)" && mknod %s c %d %d' % (quoted, quoted, major, minor))

    def sysctl(self, key, value):
        self.sh("echo %d > %s" % (int(value), shlex.quote(os.path.join(hoststate.NETFILTER, key))))

    def immutable_file(self, path):
        """chattr +i (overlayfs passes it to the tmpfs upper layer); cleared in close()."""
        self.sh("chattr +i %s" % shlex.quote(path))
        self.immutable.append(path)

    def _own_tmpfs(self, directory, options):
        """A tmpfs of its own at directory, holding a copy of what was there."""
        stash = os.path.join(self.scratch, "stash" + directory.replace("/", "_"))
        q = shlex.quote
        self.sh("mkdir -p {d} {s} && cp -a {d}/. {s}/ && mount -t tmpfs -o {o},mode=0755 ncadv-small {d}"
                " && cp -a {s}/. {d}/".format(d=q(directory), s=q(stash), o=options))

    def full(self, directory):
        """A 64 KiB tmpfs with a copy of the directory, filled up, so that any write hits ENOSPC."""
        self._own_tmpfs(directory, "size=64k")
        self.sh("dd if=/dev/zero of=%s/.zz-filler bs=4096 2>/dev/null || true" % shlex.quote(directory))

    def out_of_inodes(self, directory):
        """Bytes free but no inode left: a new file fails with ENOSPC where a free-space check sees room."""
        self._own_tmpfs(directory, "size=1m,nr_inodes=32")
        self.sh("i=0; while touch %s/.zz-inode-$i 2>/dev/null; do i=$((i+1)); done" % shlex.quote(directory))

    def read_only(self, directory):
        q = shlex.quote(directory)
        self.sh("mkdir -p {d} && mount --bind {d} {d} && mount -o remount,bind,ro {d}".format(d=q))

    def hold_lock(self, path, seconds=60):
        """Hold an exclusive flock on path from inside the sandbox; returns the process (ours)."""
        proc = subprocess.Popen(self.argv(["flock", "-x", path, "sh", "-c", "echo held; exec sleep %d" % seconds]),
                                stdout=subprocess.PIPE, universal_newlines=True, start_new_session=True)
        if proc.stdout.readline().strip() != "held":
            proc.kill()
            raise RuntimeError("could not take %s" % path)
        return proc


def stop(proc):
    """End a process this test started (the timeout wrapper's whole group), by its id."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
    proc.wait(timeout=10)
