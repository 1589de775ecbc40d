#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cache_audit
short_description: Audit a fleet from the fact cache and write its report, on the controller, in one task
version_added: 0.4.0
description:
  - Judges every host of O(hosts) from its C(ansible_facts.conntrack) in the fact cache (filled by an earlier
    C(netfilter.conntrack.facts) run with fact caching), computes each host's recommendation with the code of
    M(netfilter.conntrack.recommend), builds the fleet report and writes its files into O(dir) on the
    controller. No host is contacted.
  - This is an action that runs on the controller. The report never passes through a task variable, which at
    ten thousand hosts would be a hundred megabytes templated and copied between processes; only its summary
    and gate come back. The full report is O(dir)/C(report.json) when C(json) is in O(formats).
  - A host without cached conntrack facts is reported as failed, not skipped.
  - A host's own inventory variables C(conntrack_audit_profile), C(conntrack_audit_memory_budget),
    C(conntrack_audit_target_chain_depth) and C(conntrack_audit_peak_entries) (or their names before 0.3.0)
    take the place of O(profile), O(memory_budget), O(target_chain_depth) and O(peak_entries) for that host.
  - Every file is rendered and every destination checked before the first one is written; each is replaced
    in one rename, and a file whose content would not change is left alone. When nothing but the time of the
    report differs from the C(report.json) already in O(dir), the files are kept as they are.
  - The C(netfilter.conntrack.conntrack_audit) role's C(cache) entry point and the
    C(netfilter.conntrack.audit_cache) playbook call it.
author:
  - netfilter.conntrack maintainers (@netfilter-conntrack)
extends_documentation_fragment:
  - netfilter.conntrack.attributes
options:
  hosts:
    description:
      - The inventory host names to judge.
    type: list
    elements: str
    required: true
  dir:
    description:
      - The directory of the report files on the controller. It is created when missing.
    type: path
    required: true
  formats:
    description:
      - The report files to write. C(json) is C(report.json), C(csv) C(report.csv), C(markdown) C(report.md),
        C(html) C(report.html), and C(prometheus) one C(prometheus/HOST.prom) per host.
    type: list
    elements: str
    choices: [json, csv, markdown, html, prometheus]
    default: [json, csv, markdown, html, prometheus]
  templates:
    description:
      - The text of a Jinja2 template to render a format with instead of the collection's own, by format
        (C(markdown) and C(html) only). An empty value means the collection's own.
    type: dict
    default: {}
  profile:
    description:
      - The recommendation profile, as M(netfilter.conntrack.recommend) takes it.
    type: str
    default: default
  memory_budget:
    description:
      - The memory budget of the recommendation, as M(netfilter.conntrack.recommend) takes it (C(10%), C(512MiB)).
    type: str
    default: 10%
  target_chain_depth:
    description:
      - The target max / buckets of the recommendation; the recommend module's default when unset.
    type: float
  peak_entries:
    description:
      - The peak number of entries to size for; measured from the facts when unset.
    type: int
  thresholds:
    description:
      - Overrides of the audit's thresholds, as the role's C(conntrack_audit_thresholds) takes them.
    type: dict
    default: {}
  fail_on:
    description:
      - The severity that fails the gate. The action never fails on it; it returns C(gate) for a later task.
    type: str
    choices: [never, warning, critical]
    default: never
  query:
    description:
      - A JMESPath expression run on the report; its result is returned and written to O(query_file).
    type: str
    default: ""
  query_file:
    description:
      - The file name of the query result, inside O(dir). A plain file name only.
    type: str
    default: query.json
attributes:
  action:
    support: full
    description: Runs on the controller as an action; nothing runs on the managed hosts.
  check_mode:
    support: full
    details:
      - Reports which files would change and writes nothing.
  diff_mode:
    support: full
    details:
      - One entry per file that changes, with its size and a digest of its content before and after (a report
        diff would be hundreds of thousands of lines).
  idempotent:
    support: full
    details:
      - A second run over the same cache finds the same report and writes nothing, when C(json) is among
        O(formats); without it the time of the report changes every file.
notes:
  - Needs C(jmespath) on the controller for O(query) only.
seealso:
  - module: netfilter.conntrack.facts
  - module: netfilter.conntrack.recommend
'''

EXAMPLES = r'''
- name: Audit every cached host and write the reports
  netfilter.conntrack.cache_audit:
    hosts: "{{ groups['all'] }}"
    dir: /srv/audit/conntrack
    fail_on: critical
  register: audit

- name: Fail when a host reached the gate
  ansible.builtin.fail:
    msg: "{{ audit.gate.hosts | join(', ') }} reached critical"
  when: audit.gate.failed
'''

RETURN = r'''
summary:
  description: The report's summary, as in C(report.json).
  returned: success
  type: dict
  sample: {hosts: 10000, by_status: {ok: 9000, failed: 1000, unreachable: 0},
           by_severity: {critical: 2000, warning: 5000, info: 1000, ok: 2000}, worst_severity: critical}
gate:
  description: The gate of O(fail_on), as in C(report.json).
  returned: success
  type: dict
  sample: {fail_on: critical, failed: true, hosts: [node00001]}
not_audited:
  description: The hosts that could not be judged, with why.
  returned: success
  type: list
  elements: dict
  sample: [{host: node00009, status: failed, error: no conntrack facts in the fact cache}]
files:
  description: The fleet-wide files of the report (and the query result), and whether this run wrote them (or would,
    in check mode).
  returned: success
  type: list
  elements: dict
  sample: [{path: /srv/audit/conntrack/report.json, bytes: 104857600, changed: true}]
prometheus_files:
  description: The per-host Prometheus textfiles, counted.
  returned: success
  type: dict
  sample: {dir: /srv/audit/conntrack/prometheus, count: 10000, changed: 12}
query_result:
  description: The result of O(query); null without one.
  returned: success
  type: raw
dir:
  description: The absolute path of the report directory.
  returned: success
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

ARGUMENT_SPEC = dict(
    hosts=dict(type="list", elements="str", required=True),
    dir=dict(type="path", required=True),
    formats=dict(type="list", elements="str", choices=["json", "csv", "markdown", "html", "prometheus"],
                 default=["json", "csv", "markdown", "html", "prometheus"]),
    templates=dict(type="dict", default={}),
    profile=dict(type="str", default="default"),
    memory_budget=dict(type="str", default="10%"),
    target_chain_depth=dict(type="float"),
    peak_entries=dict(type="int"),
    thresholds=dict(type="dict", default={}),
    fail_on=dict(type="str", choices=["never", "warning", "critical"], default="never"),
    query=dict(type="str", default=""),
    query_file=dict(type="str", default="query.json"),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="netfilter.conntrack.cache_audit runs on the controller as an action plugin; it was run as a "
                         "module, which means its action plugin was not found (is the collection installed whole?)")


if __name__ == "__main__":
    main()
