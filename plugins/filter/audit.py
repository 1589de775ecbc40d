# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters of the fleet audit: build the report, render it, query it with JMESPath.
The documentation of each filter is in the YAML file of the same name."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_render

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:
    HAS_JMESPATH = False


def audit_report(hosts, thresholds=None, fail_on="never", generated_at=None):
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("audit_report expects a list of host records, got %s" % type(hosts).__name__)
    try:
        return _audit.build_report(hosts, thresholds=_audit.plain(thresholds or {}), fail_on=str(fail_on),
                                   generated_at=generated_at)
    except ValueError as exc:
        raise AnsibleFilterError("audit_report: %s" % to_native(exc))


def audit_render(report, fmt, host=None):
    try:
        return _audit_render.render(_audit.plain(report), str(fmt), None if host is None else str(host))
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("audit_render(%s): %s" % (fmt, to_native(exc)))


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
            "audit_report": audit_report,
            "audit_render": audit_render,
            "audit_query": audit_query,
        }
