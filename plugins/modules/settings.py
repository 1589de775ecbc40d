#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: settings
short_description: Apply nf_conntrack settings at runtime and across reboots
version_added: 0.1.0
description:
  - Applies C(nf_conntrack_*) kernel settings (C(nf_conntrack_max), C(nf_conntrack_buckets),
    C(nf_conntrack_expect_max), the timeouts and the other writable keys) in one invocation.
  - At runtime it writes C(/proc/sys/net/netfilter/*). Values are compared as numbers, and
    C(nf_conntrack_buckets) is rounded up the way the kernel rounds it (to a multiple of 512 on
    4 KiB pages), so reruns report no change.
  - Persistently, each part switchable, it writes a sysctl.d drop-in, for a loadable
    nf_conntrack an C(options nf_conntrack hashsize=N) line in modprobe.d, and the boot-ordering
    fix (a modules-load.d entry and a udev rule that re-applies C(net.netfilter) sysctls when
    the module appears, as systemd's sysctl.d(5) describes).
  - Every key and value is validated before anything is touched. Keys outside the allowlist
    are refused. Every target is checked for writability first (a read-only C(/etc) fails
    before any change). When a write still fails midway, the runtime values and files already
    written are restored and the module fails, so the host is left as it was.
  - Outside the initial network namespace (containers, C(ip netns)), C(nf_conntrack_max),
    C(nf_conntrack_buckets) and C(nf_conntrack_expect_max) are read-only. They are reported
    under RV(skipped_keys) and left out of the files; the per-namespace keys are applied.
  - When kube-proxy runs, it owns C(nf_conntrack_max), the hash size,
    C(nf_conntrack_tcp_timeout_established) and C(nf_conntrack_tcp_timeout_close_wait). By
    default those keys are left alone with a warning; see O(kube_proxy).
  - Files are written atomically (temporary file in the same directory, fsync, rename),
    mode C(0644), owned by root, rendered the same way every run.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack.attributes
attributes:
  check_mode:
    support: full
    details:
      - Predicts RV(ignore:changed) exactly, including the rounding of C(nf_conntrack_buckets), and writes nothing.
  diff_mode:
    support: full
    details:
      - One diff for the runtime values, one per file, and one for the tuning record when it changes.
  idempotent:
    support: full
options:
  settings:
    description:
      - Kernel key names (as under C(/proc/sys/net/netfilter)) mapped to integers.
      - The C(recommendation.settings) dict of M(netfilter.conntrack.recommend) is accepted as is.
      - Booleans (C(nf_conntrack_acct), C(nf_conntrack_tcp_loose), ...) take C(0)/C(1) or C(false)/C(true).
      - Timeouts are in seconds, from 1 to 2147483 (the largest any kernel accepts).
      - Required when O(state=present). With O(state=absent) the values given are applied at runtime only.
    type: dict
    default: {}
  state:
    description:
      - V(present) applies O(settings) and writes the enabled files.
      - V(absent) removes every file named by O(sysctl_file), O(modprobe_file),
        O(modules_load_file) and O(udev_rule_file), and applies O(settings) at runtime
        only (for example the values recorded before a tune run).
    type: str
    choices: [present, absent]
    default: present
  runtime:
    description: Write the values to the running kernel.
    type: bool
    default: true
  persist_sysctl:
    description: Write the sysctl.d drop-in O(sysctl_file).
    type: bool
    default: true
  sysctl_file:
    description:
      - The sysctl.d drop-in. Its name should sort after other files setting the same keys;
        the module warns when a file that sysctl applies later sets one of them.
      - Every file path option must name a file directly in a directory the boot reads (here
        C(/etc/sysctl.d), C(/run/sysctl.d), C(/usr/local/lib/sysctl.d), C(/usr/lib/sysctl.d) or
        C(/lib/sysctl.d)) with our own name pattern C(NN-netfilter-conntrack*.conf); anything
        else, such as C(/etc/sysctl.conf), is refused before any change. An existing file there must
        be a regular file (not a symlink, FIFO or directory).
    type: path
    default: /etc/sysctl.d/90-netfilter-conntrack.conf
  persist_modprobe:
    description:
      - For a loadable nf_conntrack, write C(options nf_conntrack hashsize=N) to O(modprobe_file)
        (then C(nf_conntrack_buckets) is left out of the sysctl drop-in, so boot does not resize
        the table twice). Ignored when nf_conntrack is built in.
    type: bool
    default: true
  modprobe_file:
    description:
      - The modprobe.d file for the hash size of a loadable nf_conntrack, directly in C(/etc/modprobe.d),
        C(/run/modprobe.d), C(/usr/local/lib/modprobe.d), C(/usr/lib/modprobe.d) or C(/lib/modprobe.d),
        named C(NN-netfilter-conntrack*.conf).
    type: path
    default: /etc/modprobe.d/netfilter-conntrack.conf
  boot_fix:
    description:
      - The boot-ordering fix. sysctl.d is applied early at boot, often before nf_conntrack
        loads, and then C(net.netfilter) keys are lost. The fix loads the module through
        O(modules_load_file) and re-applies C(net.netfilter) sysctls from a udev rule
        (O(udev_rule_file)) whenever the module appears.
      - V(auto) writes it unless nf_conntrack is built in (then it is not needed).
    type: str
    choices: [auto, always, never]
    default: auto
  modules_load_file:
    description:
      - The modules-load.d file of the boot-ordering fix, directly in a C(modules-load.d) directory,
        named C(NN-netfilter-conntrack*.conf).
    type: path
    default: /etc/modules-load.d/netfilter-conntrack.conf
  udev_rule_file:
    description:
      - The udev rule of the boot-ordering fix, directly in C(/etc/udev/rules.d), C(/run/udev/rules.d),
        C(/usr/lib/udev/rules.d) or C(/lib/udev/rules.d), named C(NN-netfilter-conntrack*.rules).
    type: path
    default: /etc/udev/rules.d/90-netfilter-conntrack.rules
  kube_proxy:
    description:
      - What to do with the keys kube-proxy owns (C(nf_conntrack_max), C(nf_conntrack_buckets),
        C(nf_conntrack_tcp_timeout_established), C(nf_conntrack_tcp_timeout_close_wait)) when a
        kube-proxy process runs on the host.
      - kube-proxy 1.29 and newer writes its own value for these keys at each start whenever the value it
        finds differs, lower or higher (1.22 to 1.28 only raised them; C(nf_conntrack_max) is raise-only again
        from kubernetes#142035); the hash size it only raises, to max / 4. Its release is not visible from the
        host, so the module assumes a value that differs from kube-proxy's own does not survive its restart.
      - V(respect) leaves them alone, lists them under RV(skipped_keys) and warns.
      - V(override) applies them anyway, with a warning per key that says whether it survives a kube-proxy restart.
      - kube-proxy 1.29 and newer also writes C(nf_conntrack_tcp_be_liberal), C(nf_conntrack_udp_timeout) and
        C(nf_conntrack_udp_timeout_stream) when its configuration sets them; these are applied in both modes,
        with the same warning.
    type: str
    choices: [respect, override]
    default: respect
  strict:
    description:
      - Fail instead of skipping keys that cannot be applied here (outside the initial network
        namespace, owned by kube-proxy, absent from this kernel, C(/proc/sys) read-only).
    type: bool
    default: false
  backup:
    description:
      - Keep a timestamped copy (C(FILE.PID.DATE~)) of each file before it is changed or removed.
        The copies are made atomically, and removed again when the run fails and is rolled back.
    type: bool
    default: false
  force:
    description:
      - Apply values that the kernel accepts but that are almost surely a mistake. Without it the
        run fails before any change for a C(nf_conntrack_max) of C(0) (no limit), below C(1024), or
        below the entries tracked now (the last not for O(restore), which puts back what the host ran with).
      - Also allows replacing or removing a file at one of our paths that this collection did not
        write (it lacks our header line).
    type: bool
    default: false
    version_added: 0.2.0
  lock_timeout:
    description:
      - Seconds to wait for another run on the same host to finish. Every run holds an exclusive
        lock (C(/run/lock/netfilter-conntrack.lock)) while it reads, plans and applies, so that two
        runs never lose each other's record update. In check mode the lock is taken only when the
        lock file exists already.
    type: float
    default: 60
    version_added: 0.2.0
  restore:
    description:
      - Put back what an earlier run found, given as that run's RV(undo). Used by the
        C(netfilter.conntrack.tune) role when its verify step or health gate fails after the apply.
      - Each file is put back only when it still holds what that run wrote; otherwise nothing is
        changed and the module fails. Cannot be combined with O(settings) or O(state=absent).
      - The paths in it must be this call's O(sysctl_file), O(modprobe_file), O(modules_load_file),
        O(udev_rule_file) or O(record_file), or a file of ours that the run being undone removed because
        the record had it at another path.
      - Its runtime values meet the same checks as O(settings). A C(nf_conntrack_max) of C(0) or below
        C(1024) needs O(force), and a hash table larger than half the RAM is refused.
    type: dict
    version_added: 0.2.0
  record_file:
    description:
      - Keep the tuning record (JSON, the shape the C(netfilter.conntrack.tune) role documents) in this
        file, in the same call. Unset, no record is kept.
      - With O(state=present) the record holds the runtime values found before the first run that set
        each key (C(original), never overwritten later), the settings asked for (C(applied)), when, the
        managed file paths and C(pressure_entries). It is written atomically before any other change and
        put back when a later write fails. When its content would not change it is not written.
      - With O(state=absent) and O(settings) empty, the module restores the record's C(original) values
        itself, removes the files the record names (each must be a path this collection manages) and the
        record, and the directories the record says it created once they are empty, in one locked
        transaction. A value that does not read back as restored fails the run and puts everything back,
        the record included, so that the rollback can be retried.
      - Under C(/etc/ansible/facts.d) the file must end in C(.fact). Elsewhere it may be any absolute path
        that does not exist yet or already holds a record.
      - It may not be a directory Ansible itself uses or a parent of one (C(/etc/ansible/facts.d),
        C(/etc/ansible), C(/etc/ansible/roles), C(/usr/share/ansible/roles), C(/usr/share/ansible/collections),
        C(/usr/share/ansible/plugins)), anything inside a C(.ansible) directory, or a directory the boot reads
        drop-ins from (those of the file path options) or a parent of one. A record there would be a file
        where Ansible or the boot needs a directory.
      - An existing record that is not a regular file,
        is larger than 1 MiB, is not JSON or has the wrong shape stops the run with an error that names
        the file; it is never overwritten or deleted.
      - When nf_conntrack is not loaded at the first run, C(original) records what the kernel will start
        with (the value another sysctl.d or modprobe.d file sets, else the kernel default for this kernel
        and RAM), and C(original_source) says which.
      - V(/etc/ansible/facts.d/netfilter_conntrack.fact) makes it readable as C(ansible_local.netfilter_conntrack);
        M(netfilter.conntrack.facts) reports it too.
      - When a file path option names another path than the record does (O(sysctl_file) changed between
        two runs, say), the file at the recorded path is removed in the same run when it is ours (it has our
        header line; otherwise it is left alone with a warning), so that rollback, which removes the files
        the record names, leaves none behind.
    type: path
  record_pressure_entries:
    description:
      - The entries that drops before the first tune called for (C(entries.sources.pressure) of
        M(netfilter.conntrack.recommend)), kept as C(pressure_entries) in the record.
      - Unset, the value already in the record is kept.
    type: int
  root:
    description:
      - Prefix for every path the module reads and writes (C(/proc), C(/sys), C(/etc), ...).
        Meant for tests against a recorded tree.
    type: path
    default: /
notes:
  - On a built-in nf_conntrack the hash size persists through C(net.netfilter.nf_conntrack_buckets)
    in the drop-in; the kernel command line C(nf_conntrack.hashsize=N) is the other way.
  - To undo the last run, pass its RV(undo) as O(restore). To go back to the values before the first
    tune, run it with O(state=absent) and the O(record_file).
seealso:
  - module: netfilter.conntrack.recommend
  - module: netfilter.conntrack.facts
  - name: sysctl.d(5)
    description: The boot-time sysctl files and the udev rule for module-dependent keys.
    link: https://www.freedesktop.org/software/systemd/man/latest/sysctl.d.html
'''

EXAMPLES = r'''
- name: Raise the table size and its hash buckets, now and across reboots
  netfilter.conntrack.settings:
    settings:
      nf_conntrack_max: 1048576
      nf_conntrack_buckets: 262144
      nf_conntrack_tcp_timeout_time_wait: 30

- name: Apply what the recommend module computed
  netfilter.conntrack.settings:
    settings: "{{ sizing.recommendation.settings }}"
  register: applied

- name: Runtime only, no files
  netfilter.conntrack.settings:
    settings:
      nf_conntrack_udp_timeout: 15
    persist_sysctl: false
    boot_fix: never

- name: On a Kubernetes node, manage kube-proxy's keys too
  netfilter.conntrack.settings:
    settings:
      nf_conntrack_max: 2097152
    kube_proxy: override

- name: Roll back - restore recorded values and remove the drop-ins
  netfilter.conntrack.settings:
    settings: "{{ ansible_local.conntrack_previous.settings }}"
    state: absent
'''

RETURN = r'''
runtime:
  description:
    - Every key considered at runtime, with its value before and after (after is the
      prediction in check mode; C(nf_conntrack_buckets) is the rounded value).
  returned: success
  type: dict
  sample: {nf_conntrack_max: {before: 262144, after: 1048576}, nf_conntrack_buckets: {before: 65536, after: 100352}}
desired:
  description: The values the runtime should now read back (buckets rounded), keyed by kernel name; what a verify step compares against.
  returned: success
  type: dict
  sample: {nf_conntrack_max: 1048576, nf_conntrack_buckets: 100352}
skipped_keys:
  description:
    - Keys not applied, with the reason (namespace, kube-proxy, absent from this kernel, read-only /proc/sys).
    - Not named C(skipped), because Ansible would then report the whole task as skipped.
  returned: success
  type: dict
  sample: {nf_conntrack_max: "global key, read-only outside the initial network namespace (container or netns): set it on the host"}
files:
  description: Every file managed in this run, by path, with whether it changed, whether it now exists, and the backup made.
  returned: success
  type: dict
  sample: {/etc/sysctl.d/90-netfilter-conntrack.conf: {changed: true, state: present, backup: null}}
environment:
  description: What the module found about this host.
  returned: success
  type: dict
  sample: {available: true, initial_netns: true, proc_sys_read_only: false, module: builtin, kube_proxy_running: false,
           kernel_release: 6.18.44}
notes:
  description: Things worth knowing that are not problems, such as the kernel command line alternative on a built-in nf_conntrack.
  returned: success
  type: list
  elements: str
read_back:
  description:
    - The runtime value of every key of O(settings), read from the kernel at the end of the run (after the
      writes), for a verify step without another facts call. Keys this kernel lacks are left out.
    - Nothing is written in check mode, so there it holds the current values.
  returned: when O(runtime=true) and nf_conntrack is available
  type: dict
  sample: {nf_conntrack_max: 1048576, nf_conntrack_buckets: 100352}
mismatches:
  description:
    - Keys whose value read back differently from what was written (the kernel adjusted or refused it),
      each with C(desired) and C(actual). Empty when every value took.
  returned: success
  type: dict
  sample: {}
  version_added: 0.2.0
leftovers:
  description:
    - What an earlier run of this module left when it was killed midway (SIGKILL, the OOM killer, a
      power cut), that is its temporary file beside a managed file (C(.NAME.XXXXXXXX), which sysctl,
      modprobe and udev never read), or a directory it was building aside (C(.DIR.XXXXXXXX), holding
      nothing but that directory chain and the file).
    - This run removes them once everything else is written, and they count as a change. Check mode only
      lists them.
  returned: success
  type: list
  elements: path
  sample: [/etc/sysctl.d/.90-netfilter-conntrack.conf.k2v0q9xa]
  version_added: 0.2.0
undo:
  description:
    - What this run found before it changed anything, to put back with O(restore) after a later
      failure. It holds the runtime values of the changed keys, the previous content (null when absent) of
      each changed file and of the record with the SHA-256 of what this run wrote, and the
      directories it created.
    - In check mode the prediction.
  returned: success
  type: dict
  sample: {runtime: {nf_conntrack_max: 262144}, files: {/etc/sysctl.d/90-netfilter-conntrack.conf: {content: null, sha256_after: 3f1c...}}, directories: []}
  version_added: 0.2.0
record:
  description:
    - The tuning record kept in O(record_file) (C(content) is null when it was removed), and whether it changed.
      In check mode the predicted record, not written.
  returned: when O(record_file) is set
  type: dict
  sample: {path: /etc/ansible/facts.d/netfilter_conntrack.fact, changed: true, state: present,
           content: {schema_version: 1, original: {nf_conntrack_max: 262144}, recorded_at: "2026-11-21T06:05:54Z",
                     applied: {nf_conntrack_max: 393728}, applied_at: "2026-11-21T06:05:54Z", pressure_entries: null,
                     files: {sysctl: /etc/sysctl.d/90-netfilter-conntrack.conf}}}
rolled_back:
  description:
    - On a failed write, the keys and files whose earlier values were put back. Together with
      a preflight that checks every target is writable first, a failure leaves the host as it was.
  returned: failure
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import files
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.settings_input import (
    SettingsError, argument_spec,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.transaction import ApplyError
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.writing import ConntrackSettings


def _selinux_labeller(module):
    """The SELinux half of AnsibleModule.atomic_move for our own atomic writes: a new file gets
    the default context of its final path (on EL hosts, system_conf_t in /etc/sysctl.d)."""
    if not module.selinux_enabled():
        return None
    from ansible.module_utils.compat import selinux

    def label(temp_path, final_path):
        context = module.selinux_default_context(final_path)
        if None not in context:
            selinux.lsetfilecon(temp_path, ":".join(context))  # OSError on failure: the run rolls back
    return label


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    backend = ConntrackSettings.from_params(module.params)
    files.set_labeller(_selinux_labeller(module))
    try:
        changed = backend.run(check_mode=module.check_mode)
    except SettingsError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except ApplyError as exc:
        module.fail_json(msg=str(exc), changed=bool(exc.result.get("rollback_errors")), **exc.result)

    for warning in backend.warnings:
        module.warn(warning)
    result = backend.result()
    if module._diff:
        result["diff"] = backend.diff()
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
