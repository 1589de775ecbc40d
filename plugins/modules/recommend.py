#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: recommend
short_description: Size nf_conntrack_max, the hash buckets and the timeouts from the load, with their memory cost
version_added: 0.1.0
description:
  - Computes the conntrack settings a host needs from the load it carries and what its kernel reports, and
    says what they cost in kernel memory.
  - The entries needed are the largest of a declared O(peak_entries), a rate model (Little's law, new flows
    per second times the seconds a flow stays in the table under the chosen timeouts), the current count,
    the rate inferred from the TIME_WAIT entries, and, when drops or C(table full) were seen, more than the
    current max. That figure times O(headroom) is floored at the kernel's own default for the RAM or the
    profile's floor, and capped by O(memory_budget).
  - The buckets follow O(target_chain_depth), rounded to a multiple of PAGE_SIZE/8 as the kernel rounds them,
    so that applying the result twice changes nothing.
  - "Three ways to run it: on a host (facts are read from the live kernel in the module), with O(facts) from
    M(netfilter.conntrack.facts), or with O(planning=true) and explicit inputs only, for questions such as
    C(what would 2M entries cost on a 16 GiB box?)."
  - The module only reads. The result's C(recommendation.settings) is accepted as is by
    M(netfilter.conntrack.settings).
  - See C(docs/sizing.md) in the collection for the model and worked examples.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack.attributes
  - netfilter.conntrack.attributes.INFO_MODULE
options:
  facts:
    description:
      - Conntrack facts as M(netfilter.conntrack.facts) returns them (C(ansible_facts.conntrack)), or a
        registered result of that module.
      - When given, nothing is read from the host.
    type: dict
  planning:
    description:
      - Capacity planning. Read nothing from the host and use only the inputs given here.
      - Needs at least one of O(peak_entries), O(tcp_new_per_second), O(udp_new_per_second) or
        O(other_new_per_second). Give O(mem_total_bytes) for the kernel's default floor, the share of RAM and a
        budget as a share of RAM.
    type: bool
    default: false
  profile:
    description:
      - The timeout profile and its floor for nf_conntrack_max.
      - V(default) keeps the host's timeouts and floors max at the kernel's default for the RAM.
      - V(nat_gateway) keeps idle TCP mappings 7440 s (RFC 5382), UDP 60 s and UDP streams 180 s (RFC 4787,
        OpenWrt), floor 65536.
      - V(load_balancer) uses the IPVS established timeout (900 s), floor 131072.
      - V(kubernetes_node) does what kube-proxy does on start, established 86400 s, close_wait 3600 s, floor
        the larger of 131072 and 32768 per CPU.
      - V(container_host) uses established 86400 s, floor 131072, and reminds that every namespace can hold
        up to max entries.
    type: str
    default: default
    choices: [default, nat_gateway, load_balancer, kubernetes_node, container_host]
  peak_entries:
    description: A peak number of entries you know the host must hold.
    type: int
  tcp_new_per_second:
    description: New TCP connections per second at peak.
    type: float
  tcp_duration_seconds:
    description:
      - How long a TCP connection lasts before it closes. Each connection then sits in TIME_WAIT for
        C(nf_conntrack_tcp_timeout_time_wait) seconds.
      - 0 suits short requests, whose time in the table is all TIME_WAIT.
    type: float
    default: 0
  udp_new_per_second:
    description: New UDP flows per second at peak.
    type: float
  udp_duration_seconds:
    description: How long a UDP flow keeps sending before it goes quiet.
    type: float
    default: 0
  udp_stream_share:
    description:
      - The fraction (0 to 1) of UDP flows that see replies and become streams
        (C(nf_conntrack_udp_timeout_stream)); the rest live C(nf_conntrack_udp_timeout).
    type: float
    default: 0
  other_new_per_second:
    description: New flows per second of other protocols, each living C(nf_conntrack_generic_timeout).
    type: float
  headroom:
    description: The factor applied to the entries needed. At least 1.
    type: float
    default: 1.5
  memory_budget:
    description:
      - The most kernel memory the table may take when full, as a fraction of RAM (V(0.1)), a percentage
        (V(10%)) or a size (V(2GiB), V(512MiB); K, M, G and T are binary).
      - When the recommendation would need more, nf_conntrack_max is capped, a warning says so, and
        C(timeouts_fitting_budget) shows which timeout reductions would make the load fit.
      - A budget above the RAM is refused.
    type: str
    default: 10%
  target_chain_depth:
    description:
      - The target of nf_conntrack_max / nf_conntrack_buckets. The kernel's boot default is 1 (two entries
        per chain, since each entry sits in two chains); kube-proxy uses 4.
    type: float
    default: 1
  timeouts:
    description:
      - "Timeout overrides in seconds, by sysctl name with or without the C(nf_conntrack_) prefix, for example
        C({tcp_timeout_time_wait: 60})."
      - Values outside 1 to 2147483 seconds (what every kernel accepts) or under the safe floor (for example
        300 s for established, 30 s for time_wait) are refused.
    type: dict
    default: {}
  mem_total_bytes:
    description:
      - The RAM of the machine, in bytes or as a size such as V(16GiB). Defaults to the host's MemTotal from
        the facts.
    type: str
  entry_bytes:
    description:
      - Bytes per entry in the nf_conntrack slab. Defaults to the slab size in the facts, else 320.
      - On 6.x x86_64 kernels nf_conn is 248 bytes in a 256-byte slab.
    type: int
  cpu_count:
    description: CPUs, for the kubernetes_node floor. Defaults to the count in the facts.
    type: int
  namespaces:
    description: How many network namespaces (containers, pods) may fill up, for the worst-case memory.
    type: int
    default: 1
  extensions:
    description:
      - Force the per-entry extension allowance on or off, by name. By default it follows the facts (NAT
        rules present, C(nf_conntrack_acct), C(nf_conntrack_timestamp), C(nf_conntrack_events=1)).
    type: dict
    suboptions:
      nat:
        description: NAT (masquerade) extension.
        type: bool
      acct:
        description: Packet and byte counters.
        type: bool
      timestamp:
        description: Start and stop timestamps.
        type: bool
      events:
        description: Event cache.
        type: bool
      labels:
        description: Connection labels.
        type: bool
      helper:
        description: A connection tracking helper.
        type: bool
  pressure_since_boot:
    description:
      - Count drops, insert failures and C(table full) messages since boot as pressure, which makes the
        recommended max exceed the current one.
      - Set V(false) once max was raised after those drops; pressure then comes only from a statistics
        sample (O(sample_seconds)) that shows drops now.
    type: bool
    default: true
  force:
    description:
      - Accept a recommended C(nf_conntrack_max) that would starve the host, which happens when
        O(memory_budget) caps it. Without it the module fails, with the arithmetic, when the max would be
        below the entries in the table now, under half the kernel's own default for the host's RAM, or
        below the entries seen (the count, the fullest namespace, the TIME_WAIT projection) times
        O(headroom), so that nothing applies a max that drops new flows at once or at the next peak.
      - Planning calls have no host and are never refused.
    type: bool
    default: false
    version_added: 0.2.0
  table:
    description:
      - When reading the host, also walk the table so that the TIME_WAIT count gives the observed close rate.
    type: bool
    default: true
  table_limit:
    description:
      - Read at most this many entries in the table walk. A truncated walk gives no observed close rate.
      - Unset means the whole table (about a second per million entries).
    type: int
  sample_seconds:
    description:
      - When reading the host, sample the statistics over this many seconds (0 to 300) to get rates.
    type: float
    default: 0
  record_file:
    description:
      - When reading the host, the tuning record of the C(netfilter.conntrack.tune) role is read from here;
        a record that cannot be used there is reported as a warning.
      - The same option, with the same default, as in M(netfilter.conntrack.facts) and
        M(netfilter.conntrack.settings), so that one C(group/netfilter.conntrack.all) entry in
        C(module_defaults) sets it for all three modules.
      - Ignored when O(facts) or O(planning) is given.
    type: path
    default: /etc/ansible/facts.d/netfilter_conntrack.fact
    version_added: 0.3.0
notes:
  - Entries needed, memory and verdict thresholds (75% warning, 90% critical) are explained in
    C(docs/sizing.md).
seealso:
  - module: netfilter.conntrack.facts
  - module: netfilter.conntrack.settings
  - ref: netfilter.conntrack.conntrack_memory filter <ansible_collections.netfilter.conntrack.conntrack_memory_filter>
    description: The memory formula in templates.
'''

EXAMPLES = r'''
- name: Explain this host's conntrack state and recommend settings
  netfilter.conntrack.recommend:
  register: ct

- name: Show the verdict and the recommended values with their reasons
  ansible.builtin.debug:
    msg: "{{ ct.recommendation.summary + ct.recommendation.warnings }}"

- name: Size for 6500 new TCP connections per second (6500 x 120 s TIME_WAIT = 780k entries)
  netfilter.conntrack.recommend:
    tcp_new_per_second: 6500
    profile: load_balancer
  register: lb

- name: What would 2M entries cost on a 16 GiB box? (no host is read)
  netfilter.conntrack.recommend:
    planning: true
    peak_entries: 2000000
    mem_total_bytes: 16GiB
    entry_bytes: 256
  delegate_to: localhost
  run_once: true
  register: plan

- name: Reuse facts already gathered
  netfilter.conntrack.recommend:
    facts: "{{ ansible_facts.conntrack }}"
    memory_budget: 1GiB
    timeouts:
      tcp_timeout_time_wait: 60

- name: Apply the recommendation
  netfilter.conntrack.settings:
    settings: "{{ lb.recommendation.settings }}"
'''

RETURN = r'''
recommendation:
  description: The recommendation. Its shape is the contract in CONTRIBUTING.md.
  returned: success
  type: dict
  contains:
    settings:
      description:
        - Kernel key names and values, accepted as is by M(netfilter.conntrack.settings).
        - Always C(nf_conntrack_max), C(nf_conntrack_buckets) (already rounded like the kernel) and
          C(nf_conntrack_expect_max); plus the profile's timeouts and your overrides.
      type: dict
      sample: {nf_conntrack_max: 1170432, nf_conntrack_buckets: 1170432, nf_conntrack_expect_max: 18288}
    reasons:
      description: One sentence per key of C(settings).
      type: dict
      sample:
        nf_conntrack_max: "780k entries needed from Little's law (tcp: 6500 new/s x 120 s in the table = 780k
          entries); x 1.5 headroom = 1.17M; rounded up to 1170432 (a multiple of 512)."
    entries:
      description:
        - C(needed) and the C(driver) that set it, out of C(sources) (C(peak_entries), C(rate_model),
          C(current_count), C(largest_namespace) (the fullest other namespace, with facts from O(netfilter.conntrack.facts#module:namespaces=all)),
          C(observed_rate), C(pressure); null when not applicable). Under live drops C(pressure) is the demand the
          counters show (admitted + dropped flows per second), with C(rates.saturated_demand) saying how.
        - C(with_headroom), C(headroom), C(floor), C(floor_source), the C(rate_model) per traffic kind
          (C(new_per_second), C(lifetime_seconds), C(entries)) and observed C(rates).
      type: dict
      sample: {needed: 780000, driver: rate_model, with_headroom: 1170000, floor: 262144}
    memory:
      description:
        - The table's kernel memory at the recommended max. C(total_bytes) = C(entries) x C(per_entry_bytes) +
          C(hash_table_bytes), where C(per_entry_bytes) = C(entry_bytes) (the slab size) + C(extension_bytes).
        - Also C(total_human), C(share_of_ram), C(needed_bytes) (at the entries needed), C(budget_bytes),
          C(budget_human), C(within_budget), C(capped), and C(all_namespaces_full_bytes) for C(namespaces).
        - With facts listing every namespace, C(namespaces_counted) and C(at_namespace_counts_bytes), the memory
          of what all of them hold now.
      type: dict
      sample: {entry_bytes: 256, extension_bytes: 0, entries_bytes: 299630592, hash_table_bytes: 9363456,
               total_bytes: 308994048, total_human: "294.7 MiB", share_of_ram: 0.018, within_budget: true}
    verdict:
      description:
        - The current state. C(status) is C(ok), C(undersized), C(oversized) or C(chains_too_deep);
          C(severity) is C(ok), C(warning) (75% full) or C(critical) (90% full, drops seen).
        - C(reasons) lists every finding; C(judged) is false in planning mode; C(usage_ratio) is count / max.
        - C(causes) is the drop advisor's list (empty in planning mode), the most severe first, each with
          C(id) (C(table_full), C(udp_insert_race), C(invalid_packets), C(chains_too_deep), C(search_restart),
          C(notrack_candidate), C(ebpf_datapath), C(ena_conntrack_allowance)), C(severity), C(summary),
          C(evidence) (the numbers it was judged on), C(remedy) and C(namespaces) (those that show it, when the
          facts have RV(netfilter.conntrack.facts#module:conntrack.namespaces)). See docs/audit.md.
      type: dict
      sample: {status: ok, severity: ok, judged: true, reasons: ["usage 12 of max 262144, ..."], causes: []}
    comparison:
      description: Per key of C(settings), C(current), C(recommended) and whether it would C(change).
      type: dict
      sample: {nf_conntrack_max: {current: 262144, recommended: 1170432, change: true}}
    tradeoffs:
      description:
        - Rows of C(key), C(timeout_seconds), C(entries_needed), C(nf_conntrack_max), C(memory_bytes),
          C(memory_human), C(share_of_ram), C(within_budget) at a few time_wait (and UDP) timeouts.
      type: list
      elements: dict
    timeouts_fitting_budget:
      description: When the budget capped max, the timeout values (C(key), C(timeout_seconds), C(current_seconds))
        under which the load would fit.
      type: list
      elements: dict
    profile:
      description: The profile's C(name), C(description) and C(sources).
      type: dict
    planning:
      description: Whether this was a planning call (no host state).
      type: bool
    summary:
      description: A few lines that explain the state and the recommendation.
      type: list
      elements: str
    kube_proxy:
      description:
        - Null unless kube-proxy runs (the facts' C(environment.kube_proxy)). Then C(predicted) is what it writes
          at its next start (its own values; the hash size max / 4, raised only), C(differs) the keys where
          it would undo C(settings) (C(kube_proxy), C(recommended)), and C(conntrack) / C(conntrack_yaml) the
          C(conntrack:) block for its configuration that makes it write our values instead.
        - C(release) is its minor release when known (else null, read with the rules under which it can undo
          the most of ours), C(lowers) the table sizes it leaves below ours with the C(reason) (its cap of 1,048,576
          on maxPerCore x CPUs from 1.36, or its own max), C(reproduces) whether the block holds our max on
          that release (every release from 1.21 when unknown) and C(note) why not and what to do instead.
      type: dict
      version_added: 0.2.0
      sample: {pid: 812, config_file: /var/lib/kube-proxy/config.conf, predicted: {nf_conntrack_max: 131072},
               differs: {nf_conntrack_tcp_timeout_established: {kube_proxy: 86400, recommended: 3600}},
               conntrack: {maxPerCore: 25088, min: 100352, tcpEstablishedTimeout: 1h0m0s},
               conntrack_yaml: "conntrack:\n  maxPerCore: 25088\n  min: 100352\n  tcpEstablishedTimeout: 1h0m0s\n"}
    namespaces:
      description:
        - Null unless the facts list every namespace (RV(netfilter.conntrack.facts#module:conntrack.namespaces)).
          Every namespace is held to the one global max on its own, so the largest namespace drives the max
          and the sum of all of them the memory.
        - C(namespaces) and C(readable) count them; C(entries_total) sums their entries and
          C(memory_bytes_at_counts) prices that sum with the hash table (the same figure as
          C(memory.at_namespace_counts_bytes)); C(largest) names the
          namespace with the most entries (C(inode), C(label), C(entries), C(share_of_max) of the recommended max).
      type: dict
      version_added: 0.2.0
      sample: {namespaces: 12, readable: 12, entries_total: 4120, memory_bytes_at_counts: 3151872,
               largest: {inode: 4026532301, label: pod shop/web-0, entries: 3800, share_of_max: 0.0145}}
    warnings:
      description: Budget caps, unknown slab size, namespaces, kube-proxy and the like.
      type: list
      elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import gathering, reading, sizing
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kubeproxy


def main():
    ext = dict((k, dict(type="bool")) for k in ("nat", "acct", "timestamp", "events", "labels", "helper"))
    module = AnsibleModule(
        argument_spec=dict(
            facts=dict(type="dict"),
            planning=dict(type="bool", default=False),
            profile=dict(type="str", default="default", choices=sorted(sizing.PROFILES)),
            peak_entries=dict(type="int"),
            tcp_new_per_second=dict(type="float"),
            tcp_duration_seconds=dict(type="float", default=0),
            udp_new_per_second=dict(type="float"),
            udp_duration_seconds=dict(type="float", default=0),
            udp_stream_share=dict(type="float", default=0),
            other_new_per_second=dict(type="float"),
            headroom=dict(type="float", default=1.5),
            memory_budget=dict(type="str", default="10%"),
            target_chain_depth=dict(type="float", default=1),
            timeouts=dict(type="dict", default={}),
            mem_total_bytes=dict(type="str"),
            entry_bytes=dict(type="int"),
            cpu_count=dict(type="int"),
            namespaces=dict(type="int", default=1),
            extensions=dict(type="dict", options=ext),
            pressure_since_boot=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            table=dict(type="bool", default=True),
            table_limit=dict(type="int"),
            sample_seconds=dict(type="float", default=0),
            record_file=dict(type="path", default=reading.RECORD_FILE),
        ),
        mutually_exclusive=[("facts", "planning")],
        supports_check_mode=True,
    )
    inputs = dict((k, module.params[k]) for k in sizing.INPUTS if k in module.params)
    try:
        if module.params["planning"]:
            facts = None
        elif module.params["facts"] is not None:
            facts = sizing.unwrap_facts(module.params["facts"])
            if facts is None:
                module.fail_json(msg="facts is empty: pass ansible_facts.conntrack, or planning=true")
        else:
            # No facts given: read the host here, through the facts module's reader and its rules.
            problem = gathering.option_problem(module.params["table_limit"], sample_seconds=module.params["sample_seconds"])
            if problem:
                module.fail_json(msg=problem)
            facts, read_warnings = gathering.gather_on_host(module, gathering.ReadOptions(
                table=module.params["table"], table_limit=module.params["table_limit"],
                sample_seconds=module.params["sample_seconds"], record_file=module.params["record_file"]))
            for warning in read_warnings or []:
                module.warn(warning)
        result = kubeproxy.recommend(facts, **inputs)  # with what kube-proxy's next start would undo
    except sizing.SizingError as exc:
        module.fail_json(msg=str(exc))
    for warning in result["warnings"]:
        module.warn(warning)
    module.exit_json(changed=False, recommendation=result)


if __name__ == "__main__":
    main()
