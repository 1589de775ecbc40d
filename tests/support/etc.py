"""A private /etc for live tests: the real paths, none of the real writes.

The collection only manages files at the boot's own paths (/etc/sysctl.d/..., facts.d), so a
live test cannot point it at a temporary directory. Instead the command runs in a private mount
namespace with an overlay over /etc: it sees the host's real /etc, and everything it writes,
replaces or deletes lands in ``upper``, where the test reads it. The host's /etc never changes.
"""
import os
import shlex
import stat

from .kernel import run


class EtcOverlay(object):
    def __init__(self, base, read_only=False):
        self.base = str(base)
        self.upper = os.path.join(self.base, "etc-upper")
        self.work = os.path.join(self.base, "etc-work")
        self.read_only = read_only
        os.makedirs(self.upper, exist_ok=True)
        os.makedirs(self.work, exist_ok=True)

    def argv(self, cmd):
        """cmd wrapped so that it runs with this overlay mounted over /etc."""
        script = ("mount -t overlay nctest-etc -o lowerdir=/etc,upperdir=%s,workdir=%s /etc"
                  % (shlex.quote(self.upper), shlex.quote(self.work)))
        if self.read_only:
            script += " && mount -o remount,ro /etc"
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script + ' && exec "$@"', "sh"] + list(cmd)

    def run(self, cmd, **kwargs):
        return run(self.argv(cmd), **kwargs)

    def _upper(self, path):
        assert path.startswith("/etc/"), path
        return os.path.join(self.upper, path[len("/etc/"):])

    def exists(self, path):
        """Whether the command would see ``path`` (an overlay whiteout hides the lower file)."""
        upper = self._upper(path)
        if os.path.lexists(upper):
            return not _whiteout(upper)
        return os.path.lexists(path)

    def read(self, path):
        """What the command sees at ``path``: the upper copy, else the real file; None when absent."""
        if not self.exists(path):
            return None
        upper = self._upper(path)
        with open(upper if os.path.lexists(upper) else path) as f:
            return f.read()

    def written(self):
        """{path: content or None (deleted)} of every file the commands changed under /etc."""
        out = {}
        for dirpath, _dirs, names in os.walk(self.upper):
            for name in names:
                full = os.path.join(dirpath, name)
                path = "/etc/" + os.path.relpath(full, self.upper)
                if _whiteout(full):
                    out[path] = None
                elif os.path.isfile(full) and not os.path.islink(full):
                    with open(full) as f:
                        out[path] = f.read()
                else:
                    out[path] = "-> %s" % os.readlink(full) if os.path.islink(full) else "?"
        return out


def _whiteout(path):
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
