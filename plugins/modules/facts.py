#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: facts
short_description: Gather Linux connection tracking (nf_conntrack) facts
version_added: 0.1.0
description:
  - Reads everything the running kernel says about connection tracking in the network
    namespace the module runs in, and returns it as typed facts under C(ansible_facts.conntrack).
  - Availability (present, built in or loadable, initial namespace or a container), every
    C(/proc/sys/net/netfilter/nf_conntrack_*) setting, the module parameters, usage (count, max,
    buckets, usage ratio, chain depth), the per-CPU statistics summed by the kernel's own column
    names, C(table full) events from the kernel log, the memory the table costs, and the
    environment (kube-proxy, NAT rules, C(ip_forward), the persisted configuration and its drift
    from the runtime values).
  - Optionally walks the table itself, at a cost that grows with its size, for per-protocol, TCP state, ASSURED,
    UNREPLIED and top-source counts. Without the walk the module does not depend on the table
    size and returns in a few milliseconds.
  - A host without conntrack returns C(available=false) and does not fail. Files that cannot be
    read give partial facts and warnings.
  - The module reads only; it changes nothing.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack.attributes
  - netfilter.conntrack.attributes.INFO_MODULE
  - netfilter.conntrack.attributes.FACTS
  - netfilter.conntrack.attributes.FACTS_MODULE
options:
  table:
    description:
      - Walk the conntrack table (C(/proc/net/nf_conntrack), or C(conntrack -L -o extended) where
        that file is missing) and summarise it in RV(conntrack.table).
      - The walk streams the table with bounded memory, but its time grows with the table size
        (about 3 s per million entries on a quiet host, twice that under load; docs/benchmarks.md).
        Use O(table_limit) on big tables.
    type: bool
    default: false
  table_limit:
    description:
      - Read at most this many entries during the table walk. RV(conntrack.table.truncated) says
        whether the cap was hit.
      - Unset means the whole table.
    type: int
  table_source:
    description:
      - Where the table walk reads from. V(auto) prefers C(/proc/net/nf_conntrack) and falls back
        to C(conntrack -L -o extended).
    type: str
    choices: [auto, proc, conntrack]
    default: auto
  top_sources:
    description:
      - How many original source addresses, by entry count, the table walk reports.
    type: int
    default: 10
  sample_seconds:
    description:
      - Read the statistics twice, this many seconds apart, and return the deltas and per-second
        rates of C(count), C(drop), C(insert_failed), C(early_drop) and C(chaintoolong) in
        RV(conntrack.stats.sample).
      - V(0) takes no sample. At most 300.
    type: float
    default: 0
  gather_kernel_log:
    description:
      - Count C(nf_conntrack table full, dropping packet) messages in the kernel log
        (C(/dev/kmsg), then C(dmesg), then C(journalctl -k)).
    type: bool
    default: true
  gather_environment:
    description:
      - Look for kube-proxy, NAT rules (C(nft list chains), only when C(nf_tables) is loaded; the legacy
        iptables nat table only when the kernel already has one), C(net.ipv4.ip_forward) and the persisted
        configuration (sysctl.d, sysctl.conf, modprobe.d, modules-load.d, the kernel command line).
      - The module loads no kernel module. C(nft) would load C(nf_tables), C(iptables-save) the nat table,
        and C(conntrack -S) or C(conntrack -L) would load C(nf_conntrack_netlink), so each runs only when
        its module is there already (or the kernel cannot load modules at all).
    type: bool
    default: true
  record_file:
    description:
      - The tuning record of the C(netfilter.conntrack.tune) role, reported as RV(conntrack.environment.tuning_record)
        (read only when O(gather_environment=true)).
    type: path
    default: /etc/ansible/facts.d/netfilter_conntrack.fact
  namespaces:
    description:
      - V(all) adds RV(conntrack.namespaces), every network namespace on the host with its own count and
        per-CPU counters, read through a process inside it (C(/proc/PID/net/stat/nf_conntrack)), with no
        C(setns) and no command per namespace. Namespaces are found from the C(ns/net) links of all
        processes and from bind mounts (C(/run/netns), C(/run/docker/netns), C(/proc/self/mountinfo)).
      - V(none) leaves the facts as they were.
    type: str
    choices: [none, all]
    default: none
    version_added: 0.2.0
  namespaces_table:
    description:
      - With O(namespaces=all), also walk each namespace's table (C(/proc/PID/net/nf_conntrack)),
        at most O(table_limit) entries each, into the C(table) of each item of RV(conntrack.namespaces).
    type: bool
    default: false
    version_added: 0.2.0
notes:
  - Run it as root. Unprivileged runs cannot read C(/proc/slabinfo), the kernel log or the
    nftables ruleset; those facts are then null and a warning says so.
  - Inside a container or any non-initial network namespace, the count and statistics are that
    namespace's own, while C(nf_conntrack_max) is the host's global limit and is read-only there
    (RV(conntrack.host_settable) is false).
  - The persisted sysctl value that wins is found the way C(sysctl --system) (procps) applies
    files, that is C(*.conf) from C(/etc/sysctl.d), C(/run/sysctl.d), C(/usr/local/lib/sysctl.d),
    C(/usr/lib/sysctl.d) and C(/lib/sysctl.d) in file name order, a name in an earlier directory
    masking the same name in a later one, then C(/etc/sysctl.conf) last.
seealso:
  - name: nf_conntrack sysctl documentation
    description: The kernel's description of every nf_conntrack setting.
    link: https://docs.kernel.org/networking/nf_conntrack-sysctl.html
'''

EXAMPLES = r'''
- name: Gather conntrack facts
  netfilter.conntrack.facts:

- name: Warn when the table is more than 80 % full
  ansible.builtin.debug:
    msg: "conntrack table {{ ansible_facts.conntrack.usage.usage_percent }} % full"
  when: (ansible_facts.conntrack.usage.usage_ratio | default(0, true)) > 0.8

- name: Walk at most 200000 entries and sample the drop rate for 5 seconds
  netfilter.conntrack.facts:
    table: true
    table_limit: 200000
    top_sources: 5
    sample_seconds: 5
  register: ct

- name: Show TCP states and the heaviest sources
  ansible.builtin.debug:
    msg:
      - "{{ ct.conntrack.table.tcp_states }}"
      - "{{ ct.conntrack.table.top_sources }}"
      - "drops per second: {{ ct.conntrack.stats.sample.rates_per_second.drop }}"

- name: Read every network namespace on the host (containers, pods, ip netns)
  netfilter.conntrack.facts:
    namespaces: all
  register: ct_all

- name: Show the namespaces that dropped packets, with who owns them
  ansible.builtin.debug:
    msg: "{{ item.owner.kind }} {{ item.owner.container_name or item.owner.pod_name or item.owner.netns_name }}:
      {{ item.entries }} entries, {{ item.stats.totals.drop }} drops"
  loop: "{{ ct_all.conntrack.namespaces | selectattr('readable') | selectattr('stats.totals.drop') }}"
  loop_control:
    label: "{{ item.inode }}"
'''

RETURN = r'''
conntrack:
  description:
    - The facts, also set as C(ansible_facts.conntrack). The shape is versioned by RV(conntrack.schema_version).
  returned: always
  type: dict
  contains:
    schema_version:
      description: Version of this dict's shape.
      type: int
      returned: always
      sample: 1
    available:
      description: Whether nf_conntrack is present in this kernel. When false the other facts are empty or null.
      type: bool
      returned: always
      sample: true
    active:
      description: Whether the count or the statistics of this namespace can be read.
      type: bool
      returned: always
      sample: true
    module:
      description: How nf_conntrack is in the kernel.
      type: str
      returned: always
      choices: [builtin, loadable, absent, unknown]
      sample: builtin
    kernel_release:
      description: The running kernel's release.
      type: str
      returned: always
      sample: 6.1.0-27-amd64
    initial_netns:
      description: Whether the module ran in the initial network namespace (false in a container). Null when it cannot be told.
      type: bool
      returned: always
      sample: true
    host_settable:
      description: Whether C(nf_conntrack_max), C(nf_conntrack_buckets) and C(nf_conntrack_expect_max) are writable from here.
      type: bool
      returned: always
      sample: true
    settings:
      description: Every C(/proc/sys/net/netfilter/nf_conntrack_*) key with its value, as an integer where it is one.
      type: dict
      returned: always
      sample: {nf_conntrack_max: 262144, nf_conntrack_buckets: 262144, nf_conntrack_tcp_timeout_time_wait: 120}
    module_parameters:
      description: The files in C(/sys/module/nf_conntrack/parameters), typed (Y/N as booleans).
      type: dict
      returned: always
      sample: {hashsize: 262144, expect_hashsize: 1024, acct: false, tstamp: false}
    usage:
      description: How full the table is and how long its hash chains are.
      type: dict
      returned: when available
      contains:
        count:
          description: Entries in this namespace's table now.
          type: int
          returned: success
        max:
          description: C(nf_conntrack_max), the global limit. 0 means unlimited.
          type: int
          returned: success
        buckets:
          description: Hash table buckets.
          type: int
          returned: success
        expect_max:
          description: C(nf_conntrack_expect_max).
          type: int
          returned: success
        usage_ratio:
          description: count / max; null when max is 0 (unlimited).
          type: float
          returned: success
        usage_percent:
          description: usage_ratio as a percentage, two decimals.
          type: float
          returned: success
        chain_depth_avg:
          description: count / buckets, the average hash chain length now.
          type: float
          returned: success
        chain_depth_at_max:
          description: max / buckets, the average chain length when the table is full.
          type: float
          returned: success
      sample: {count: 12, max: 262144, buckets: 262144, expect_max: 4096, usage_ratio: 0.0000458,
               usage_percent: 0.0, chain_depth_avg: 0.0000458, chain_depth_at_max: 1.0}
    stats:
      description:
        - The per-CPU counters of C(/proc/net/stat/nf_conntrack) summed over CPUs, keyed by the kernel's own
          column names, or of C(conntrack -S) where the proc file is missing.
        - C(entries) is the namespace's count and is not summed. Renamed columns also appear under the
          conntrack-tools names (C(clashres) as C(clash_resolve), C(chainlength) as C(chaintoolong),
          C(icmp_error) as C(error)).
      type: dict
      returned: when available
      contains:
        source:
          description: Where the counters came from.
          type: str
          returned: success
          choices: [proc, conntrack, none]
        cpus:
          description: Number of per-CPU rows summed.
          type: int
          returned: success
        columns:
          description: The column names in the kernel's order.
          type: list
          elements: str
          returned: success
        totals:
          description: Each counter summed over all CPUs.
          type: dict
          returned: success
        sample:
          description: With O(sample_seconds), the deltas over the window and per-second rates; else null.
          type: dict
          returned: success
          sample: {seconds: 5.0, deltas: {drop: 0, count: 12}, rates_per_second: {count: 2.4, drop: 0.0,
                   insert_failed: 0.0, early_drop: 0.0, chaintoolong: 0.0}}
      sample: {source: proc, cpus: 2, columns: [entries, clashres, found], totals: {entries: 12, drop: 0}, sample: null}
    kernel_log:
      description:
        - C(table full, dropping packet) messages in the kernel log, both the plain form and the
          C(table full in netns N) form. The kernel rate-limits them, so the count is a lower bound.
        - Null when O(gather_kernel_log=false).
      type: dict
      returned: always
      contains:
        readable:
          description: Whether a kernel log could be read.
          type: bool
          returned: success
        source:
          description: C(kmsg), C(dmesg) or C(journal); null when none could be read.
          type: str
          returned: success
        table_full_count:
          description: Number of table-full messages in the log; null when it could not be read.
          type: int
          returned: success
        last_seen:
          description: ISO 8601 time (UTC) of the last one, estimated from the boot time.
          type: str
          returned: success
        last_seen_seconds_since_boot:
          description: Kernel timestamp of the last one.
          type: float
          returned: success
        netns:
          description: The network namespace inode numbers named by C(table full in netns N).
          type: list
          elements: int
          returned: success
      sample: {readable: true, source: kmsg, table_full_count: 3, last_seen: "2026-11-21T05:49:21+00:00",
               last_seen_seconds_since_boot: 770.96, netns: [4026532246]}
    memory:
      description: What the table costs in kernel memory, and the machine figures sizing needs.
      type: dict
      returned: when available
      contains:
        source:
          description: C(sysfs) (C(/sys/kernel/slab/nf_conntrack)), C(slabinfo) or C(none).
          type: str
          returned: success
        object_size_bytes:
          description: Size of one C(struct nf_conn).
          type: int
          returned: success
        slab_size_bytes:
          description: Bytes each entry takes in the slab, alignment included.
          type: int
          returned: success
        active_objects:
          description: Objects in use in the slab.
          type: int
          returned: success
        total_objects:
          description: Objects allocated in the slab.
          type: int
          returned: success
        slab_bytes_in_use:
          description: total_objects x slab_size_bytes.
          type: int
          returned: success
        slab_merged:
          description: True when the kernel merged the cache with others, so the object counts include theirs.
          type: bool
          returned: success
        bucket_size_bytes:
          description: Bytes per hash bucket (a pointer).
          type: int
          returned: success
        hash_table_bytes:
          description: buckets x bucket_size_bytes.
          type: int
          returned: success
        mem_total_bytes:
          description: MemTotal of the machine.
          type: int
          returned: success
        cpu_count:
          description: Online CPUs.
          type: int
          returned: success
        page_size_bytes:
          description: Memory page size.
          type: int
          returned: success
      sample: {source: sysfs, object_size_bytes: 248, slab_size_bytes: 256, active_objects: 80, total_objects: 144,
               slab_bytes_in_use: 36864, slab_merged: false, bucket_size_bytes: 8, hash_table_bytes: 2097152,
               mem_total_bytes: 25274793984, cpu_count: 2, page_size_bytes: 4096}
    table:
      description: With O(table=true), the summary of the table walk; else null.
      type: dict
      returned: always
      contains:
        walked:
          description: Always true when present.
          type: bool
          returned: success
        source:
          description: C(proc) or C(conntrack).
          type: str
          returned: success
        entries_read:
          description: Entries read.
          type: int
          returned: success
        limit:
          description: The O(table_limit) in force.
          type: int
          returned: success
        truncated:
          description: Whether entries were left unread because of O(table_limit).
          type: bool
          returned: success
        by_family:
          description: Entries per address family (C(ipv4), C(ipv6)).
          type: dict
          returned: success
        by_protocol:
          description: Entries per layer 4 protocol.
          type: dict
          returned: success
        tcp_states:
          description: TCP entries per conntrack state.
          type: dict
          returned: success
        assured:
          description: Entries flagged ASSURED (seen traffic both ways; early drop skips them).
          type: int
          returned: success
        unreplied:
          description: Entries flagged UNREPLIED (no reply seen yet).
          type: int
          returned: success
        without_timeout:
          description: Entries printed without a timeout (offloaded flows).
          type: int
          returned: success
        top_sources:
          description: The original-direction source addresses with the most entries.
          type: list
          elements: dict
          returned: success
        top_sources_approximate:
          description: True when the walk saw too many distinct sources to count them all exactly.
          type: bool
          returned: success
      sample: {walked: true, source: proc, entries_read: 12, limit: null, truncated: false,
               by_family: {ipv4: 10, ipv6: 2}, by_protocol: {tcp: 8, udp: 3, icmp: 1},
               tcp_states: {ESTABLISHED: 5, TIME_WAIT: 3}, assured: 6, unreplied: 2, without_timeout: 0,
               top_sources: [{address: 10.0.0.1, count: 5}], top_sources_approximate: false}
    environment:
      description: What else on the host bears on conntrack. Null when O(gather_environment=false).
      type: dict
      returned: always
      contains:
        kube_proxy_running:
          description: Whether a kube-proxy process runs (it sets conntrack sysctls itself at start).
          type: bool
          returned: success
        nat_rules_present:
          description: Whether this namespace has NAT rules; null when it cannot be told.
          type: bool
          returned: success
        nat_rules_source:
          description: C(nftables) or C(iptables); null when neither could be read.
          type: str
          returned: success
        ip_forward:
          description: C(net.ipv4.ip_forward).
          type: bool
          returned: success
        persistent:
          description:
            - The persisted configuration. C(sysctl_files) in the order C(sysctl --system) applies them;
              C(sysctl) the winning value and file per key (C(net.nf_conntrack_max) counts as C(nf_conntrack_max));
              C(modprobe) the C(options nf_conntrack) values (and C(nf_conntrack.*) from the kernel command line);
              C(modules_load) the files that load nf_conntrack at boot.
          type: dict
          returned: success
        drift:
          description:
            - Keys whose persisted value differs from the runtime value, with both values and the file.
              Buckets are compared after the kernel's rounding up to a whole page of pointers.
          type: dict
          returned: success
        tuning_record:
          description:
            - The tuning record in O(record_file) that the C(netfilter.conntrack.tune) role (through
              M(netfilter.conntrack.settings)) keeps, as a dict (C(schema_version), C(original),
              C(recorded_at), C(applied), C(applied_at), C(pressure_entries), C(files)).
            - Null when there is none, or when it cannot be used (then RV(conntrack.environment.tuning_record_error)
              says why).
          type: dict
          returned: success
        tuning_record_error:
          description:
            - Why the file at O(record_file) cannot be used as a tuning record (not a regular file, larger
              than 1 MiB, not JSON, the wrong shape), with how to repair it; null when it is fine or absent.
              The file is read without following a link or blocking on a FIFO.
            - M(netfilter.conntrack.settings) and the C(netfilter.conntrack.tune) role refuse to run while it is set.
          type: str
          returned: success
          version_added: 0.2.0
        datapath:
          description:
            - Where else connection state lives. C(ebpf) names an eBPF datapath with its own conntrack maps
              (C(cilium), C(calico)) and C(ebpf_evidence) what showed it; C(ena) lists each AWS ENA interface's
              C(conntrack_allowance_exceeded) and C(conntrack_allowance_available) from C(ethtool -S), read only
              where an ENA device and C(ethtool) exist (C(ena_note) says when C(ethtool) is missing).
          type: dict
          returned: success
          version_added: 0.2.0
        kube_proxy:
          description:
            - When kube-proxy runs, its conntrack settings, C(pid), C(flags) (the C(--conntrack-*) flags),
              C(config_file) and C(config) (the C(conntrack:) block of its C(--config), read through
              C(/proc/PID/root)), C(effective) (with kube-proxy's defaults) and C(notes).
            - C(version) is its release (V(v1.30.2)) read from its executable, null when not found; C(layout)
              is V(v1alpha1) or V(v1alpha2) (the block under C(linux), which no released kube-proxy loads).
            - M(netfilter.conntrack.recommend) predicts from it what kube-proxy writes at its next start.
          type: dict
          returned: when kube-proxy runs
          version_added: 0.2.0
      sample: {tuning_record: null, tuning_record_error: null, kube_proxy_running: false, nat_rules_present: true, nat_rules_source: nftables, ip_forward: true,
               persistent: {sysctl_files: [/etc/sysctl.d/90-conntrack.conf, /etc/sysctl.conf],
                            sysctl: {nf_conntrack_max: {value: 1048576, file: /etc/sysctl.d/90-conntrack.conf}},
                            modprobe: {}, modules_load: []},
               drift: {nf_conntrack_max: {runtime: 262144, persisted: 1048576, file: /etc/sysctl.d/90-conntrack.conf}}}
    namespaces:
      description:
        - With O(namespaces=all), one item per network namespace on the host, the one the module ran in
          first, then by entries. Absent otherwise.
        - C(inode) is the namespace's id (the N of the kernel's C(table full in netns N)); C(nsid) the id
          this namespace gave it (C(ip netns list-id)), null with C(nsid_note) saying why; C(pids) one or
          two processes in it and C(process_count) all of them; C(bind_mounts) where it is mounted.
        - C(readable) false (with C(reason)) for a namespace that only a bind mount keeps; its counters
          can be read only from inside it.
        - C(entries) and C(stats) (C(cpus), C(columns), C(totals) summed like RV(conntrack.stats)) are that
          namespace's own; C(table) its walk with O(namespaces_table).
        - C(owner) says who it belongs to, from the cgroup path and the runtimes' files, with no API call;
          C(kind) is C(host), C(container), C(pod), C(service), C(ip-netns) or C(unknown), with
          C(runtime) (docker, containerd, cri-o, podman, lxc, kubernetes), C(container_id),
          C(container_name), C(pod_uid), C(pod_name), C(pod_namespace) (from C(/var/log/pods)),
          C(service), C(netns_name) and C(cgroup).
      type: list
      elements: dict
      returned: when O(namespaces=all)
      version_added: 0.2.0
      sample: [{inode: 4026532301, nsid: 0, nsid_note: null, current: false, initial: false, pids: [4242, 4250],
                process_count: 3, process: dnsmasq, bind_mounts: [/run/docker/netns/4f1a2b3c], readable: true,
                reason: null, entries: 37, stats: {cpus: 2, columns: [entries, drop], totals: {entries: 37, drop: 5}},
                table: null, owner: {kind: container, runtime: docker, container_id: 0a1b..., container_name: dns-cache,
                pod_uid: null, pod_name: null, pod_namespace: null, service: null, netns_name: 4f1a2b3c,
                cgroup: /system.slice/docker-0a1b....scope}}]
    warnings:
      description: What could not be read and why. The same messages are also emitted as module warnings.
      type: list
      elements: str
      returned: always
      sample: ["cannot read the kernel log, so table-full events are unknown (/dev/kmsg: Operation not permitted)"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, reading


def main():
    module = AnsibleModule(
        argument_spec=dict(
            table=dict(type="bool", default=False),
            table_limit=dict(type="int"),
            table_source=dict(type="str", default="auto", choices=["auto", "proc", "conntrack"]),
            top_sources=dict(type="int", default=10),
            sample_seconds=dict(type="float", default=0),
            gather_kernel_log=dict(type="bool", default=True),
            gather_environment=dict(type="bool", default=True),
            record_file=dict(type="path", default=reading.RECORD_FILE),
            namespaces=dict(type="str", default="none", choices=["none", "all"]),
            namespaces_table=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problem = gathering.option_problem(p["table_limit"], p["top_sources"], p["sample_seconds"])
    if problem:
        module.fail_json(msg=problem)
    options = gathering.ReadOptions(
        table=p["table"], table_limit=p["table_limit"], table_source=p["table_source"], top_sources=p["top_sources"],
        sample_seconds=p["sample_seconds"], kernel_log=p["gather_kernel_log"], environment=p["gather_environment"],
        record_file=p["record_file"], namespaces=p["namespaces"], namespaces_table=p["namespaces_table"])
    facts, warnings = gathering.gather_on_host(module, options)
    for message in warnings:
        module.warn(message)
    module.exit_json(changed=False, conntrack=facts, ansible_facts={"conntrack": facts})


if __name__ == "__main__":
    main()
