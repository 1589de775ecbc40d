# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The boot files of the settings module: the sysctl.d drop-in, the modprobe.d option, the
modules-load.d entry and the udev rule; what each should hold and what is there now.

Private to this collection. Reads only (the transaction writes). Standard library only;
Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import stat

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import files, kernel, reading, runtime
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.settings_input import SettingsError

# The method systemd's sysctl.d(5) gives for keys that only exist once a module loads.
UDEV_RULE = ('ACTION=="add", SUBSYSTEM=="module", KERNEL=="nf_conntrack", '
             'RUN+="/usr/lib/systemd/systemd-sysctl --prefix=/net/netfilter"')

HEADER = ("# Managed by Ansible (netfilter.conntrack.settings). Local edits are overwritten.\n")
# How a drop-in of ours is recognised: anything else at our path is someone else's file.
OWN_MARKER = "# Managed by Ansible (netfilter.conntrack"


def render_sysctl(keys, granularity):
    lines = [HEADER, "# Applied at boot by systemd-sysctl and sysctl --system.\n"]
    if "nf_conntrack_buckets" in keys:
        lines.append("# The kernel rounds nf_conntrack_buckets up to a multiple of %d.\n" % granularity)
    for key in runtime.write_order(keys, dict((k, None) for k in keys)):
        lines.append("%s%s = %d\n" % (kernel.SYSCTL_PREFIX, key, keys[key]))
    return "".join(lines)


def render_modprobe(buckets):
    return HEADER + "options nf_conntrack hashsize=%d\n" % buckets


MODULES_LOAD = HEADER + "nf_conntrack\n"
UDEV_RULE_FILE = (HEADER + "# Re-apply net.netfilter sysctls once nf_conntrack exists (systemd sysctl.d(5)).\n"
                  + UDEV_RULE + "\n")


def read_managed(option, path, full):
    """Current text of a managed file, or None; anything but a regular file stops the run."""
    try:
        raw = files.read_regular(full)
    except files.UnsafeFile as exc:
        raise SettingsError("%s: %s cannot be managed: %s. Remove or rename it, or choose another path"
                            % (option, path, exc))
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SettingsError("%s: %s is not UTF-8 text: not a file this collection wrote. Move it aside"
                            % (option, path))


def sysctl_order(reader, ours):
    """Files in the order sysctl --system applies them, ours included; the last value for a key wins."""
    found = reading.sysctl_files(reader)
    tail = [f for f in found if f == reading.SYSCTL_CONF]  # procps applies it after the directories
    body = [f for f in found if f != reading.SYSCTL_CONF]
    if not any(os.path.basename(f) == os.path.basename(ours) for f in body):
        body = sorted(body + [ours], key=os.path.basename)
    return body + tail


class BootFiles(object):
    """Plans each boot file: {name: {path, full, before, after, changed, fix_attrs}}."""

    def __init__(self, reader, options, paths, granularity):
        self.reader = reader
        self.options = options
        self.paths = paths
        self.granularity = granularity
        self.files = {}
        self.warnings = []
        self.notes = []

    def plan(self, applicable, env, missing):
        """(files, warnings, notes) for the applicable settings; ``missing``: keys this kernel lacks."""
        opts = self.options
        present = opts.state == "present"
        # Keys the kernel lacks would make systemd-sysctl log errors at every boot.
        persisted = dict((k, v) for k, v in applicable.items() if k not in missing)
        loadable = env["module"] == "loadable"
        if opts.persist_sysctl or not present:
            keys = dict(persisted)
            if loadable and "nf_conntrack_buckets" in keys and opts.persist_modprobe:
                del keys["nf_conntrack_buckets"]  # the modprobe option sizes it at load, without a resize
            self.plan_file("sysctl", render_sysctl(keys, self.granularity) if present and keys else None,
                           present and not keys)
        if opts.persist_modprobe and loadable or not present:
            buckets = persisted.get("nf_conntrack_buckets")
            content = render_modprobe(buckets) if present and buckets is not None else None
            self.plan_file("modprobe", content, present and content is None)
        boot_fix = opts.boot_fix == "always" or (opts.boot_fix == "auto" and env["module"] in ("loadable", "unknown"))
        if boot_fix or not present:
            self.plan_file("modules_load", MODULES_LOAD if present else None, False)
            self.plan_file("udev_rule", UDEV_RULE_FILE if present else None, False)
        elif present and loadable and opts.boot_fix == "never":
            self.warnings.append("boot_fix=never on a loadable nf_conntrack: when the module loads after "
                                 "systemd-sysctl at boot (nftables, docker), the net.netfilter values of %s are "
                                 "not applied and max becomes the kernel default (8 x hashsize with a modprobe "
                                 "hashsize)" % self.paths["sysctl"])
        if present and env["module"] == "builtin" and "nf_conntrack_buckets" in persisted:
            self.notes.append("nf_conntrack is built in: nf_conntrack_buckets persists through the sysctl drop-in; "
                              "the kernel command line nf_conntrack.hashsize=N is the other way")
        if present and (opts.persist_sysctl and persisted):
            self.check_sysctl_order(persisted)
        return self.files, self.warnings, self.notes

    def plan_file(self, name, content, leave_alone):
        """content None: the file must not exist; leave_alone: not managed this run."""
        if leave_alone:
            return
        path = self.paths[name]
        full = runtime.host_path(self.reader.root, path)
        before = read_managed("%s_file" % name, path, full)
        if before is not None and OWN_MARKER not in before and not self.options.force:
            raise SettingsError("%s_file: %s exists and was not written by this collection (no %r line): not %s "
                                "it. Move it aside, choose another %s_file, or set force: true"
                                % (name, path, OWN_MARKER, "removing" if content is None else "replacing", name))
        info = {"path": path, "full": full, "before": before, "after": content, "fix_attrs": False}
        if content is not None and before is not None:
            st = os.lstat(full)
            want_owner = os.geteuid() == 0
            info["fix_attrs"] = (stat.S_IMODE(st.st_mode) != 0o644
                                 or (want_owner and (st.st_uid, st.st_gid) != (0, 0)))
        info["changed"] = info["before"] != content or info["fix_attrs"]
        self.files[name] = info

    def check_sysctl_order(self, keys):
        ours = self.paths["sysctl"]
        order = sysctl_order(self.reader, ours)
        ours_real = os.path.realpath(runtime.host_path(self.reader.root, ours))
        # The option checks already made sure the drop-in sits in a directory sysctl reads at boot.
        if ours not in order:
            self.warnings.append("%s is masked by a file of the same name in a directory sysctl prefers: %s"
                                 % (ours, [f for f in order if os.path.basename(f) == os.path.basename(ours)][0]))
            return
        for path in order[order.index(ours) + 1:]:
            if os.path.realpath(runtime.host_path(self.reader.root, path)) == ours_real:
                continue
            text = self.reader.read_config(path)
            if text is None:
                continue
            theirs = dict((kernel.conntrack_name(k), v) for k, v in kernel.parse_sysctl_file(text).items())
            for key in sorted(keys):
                if key in theirs:
                    self.warnings.append("%s%s is also set in %s, which sysctl applies after %s: its value (%s) "
                                         "wins at boot" % (kernel.SYSCTL_PREFIX, key, path, ours, theirs[key]))
