# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the fleet audit: build the report, merge sliced runs' reports, render it, query it.
The documentation of each filter is in the YAML file of the same name."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import jinja2
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.six import string_types

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_cache, _audit_merge, _audit_render

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:
    HAS_JMESPATH = False


_get = _audit_cache.get


def audit_record(host, facts_result=None, recommendation_result=None, cached_facts=None, gathered=True,
                 active=None):
    """One host's record for audit_report, from what was registered for it.

    ``facts_result`` and ``recommendation_result`` are the registered results of the facts
    and recommend calls; ``cached_facts`` the host's ``ansible_facts.conntrack`` for a run
    with ``gathered=false``. ``active`` is ansible_play_hosts: a host outside it left the
    play before the audit."""
    if not isinstance(host, string_types):
        raise AnsibleFilterError("audit_record expects a host name (inventory_hostname), got %s"
                                 % type(host).__name__)
    name = str(host)
    record = {"host": name, "status": "ok", "error": None, "facts": None, "recommendation": None}
    result = facts_result or {}
    if _get(result, "unreachable"):
        record.update(status="unreachable", error=to_native(_get(result, "msg", "unreachable")))
        return record
    if _get(result, "failed"):
        record.update(status="failed", error="facts: %s" % to_native(_get(result, "msg", "failed")))
        return record
    facts = _get(_get(result, "ansible_facts", {}), "conntrack") if gathered else cached_facts
    if not facts:
        if active is not None and name not in list(active):
            why = "the host left the play (failed or unreachable) before the audit"
        elif gathered:
            why = "no conntrack facts were gathered"
        else:
            why = "no conntrack facts in the fact cache (run netfilter.conntrack.facts with fact caching first)"
        record.update(status="failed", error=why)
        return record
    record["facts"] = facts
    rec = recommendation_result or {}
    if _get(rec, "failed") or _get(rec, "unreachable"):
        record["recommendation_error"] = to_native(_get(rec, "msg", "recommend failed"))
    else:
        record["recommendation"] = _get(rec, "recommendation")
    return _audit.plain(record)


def audit_cached(hosts, hostvars, profile="default", memory_budget="10%", target_chain_depth=None,
                 peak_entries=None):
    """Every host's record for audit_report from the fact cache alone, in this one call."""
    if isinstance(hosts, string_types) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("audit_cached expects a list of inventory host names, got %s" % type(hosts).__name__)
    play_inputs = _audit_cache.inputs(profile, memory_budget, target_chain_depth, peak_entries)
    return _audit_cache.judge(hosts, hostvars, play_inputs)


def audit_report(hosts, thresholds=None, fail_on="never", generated_at=None):
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("audit_report expects a list of host records, got %s" % type(hosts).__name__)
    try:
        return _audit.build_report(hosts, thresholds=_audit.plain(thresholds or {}), fail_on=str(fail_on),
                                   generated_at=generated_at)
    except ValueError as exc:
        raise AnsibleFilterError("audit_report: %s" % to_native(exc))


def audit_merge(reports, thresholds=None, fail_on="never", generated_at=None):
    try:
        return _audit_merge.merge_reports(reports, thresholds=None if thresholds is None else _audit.plain(thresholds),
                                          fail_on=str(fail_on), generated_at=generated_at)
    except ValueError as exc:
        raise AnsibleFilterError("audit_merge: %s" % to_native(exc))


def audit_render(report, fmt, host=None, template=None):
    try:
        return _audit_render.render(_audit.plain(report), str(fmt), None if host is None else str(host),
                                    None if template is None else str(template))
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("audit_render(%s): %s" % (fmt, to_native(exc)))
    except jinja2.TemplateError as exc:
        raise AnsibleFilterError("audit_render(%s): the template failed: %s" % (fmt, to_native(exc)))


def audit_query(data, expression):
    if not HAS_JMESPATH:
        raise AnsibleFilterError("audit_query needs the jmespath library on the controller: pip install jmespath")
    try:
        return jmespath.search(str(expression), _audit.plain(data))
    except jmespath.exceptions.JMESPathError as exc:
        raise AnsibleFilterError("audit_query: bad JMESPath expression %r: %s" % (str(expression), to_native(exc)))


class FilterModule(object):

    def filters(self):
        return {
            "audit_record": audit_record,
            "audit_cached": audit_cached,
            "audit_report": audit_report,
            "audit_merge": audit_merge,
            "audit_render": audit_render,
            "audit_query": audit_query,
        }
