# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The cache_audit action: the documentation and the argument spec are in plugins/modules/cache_audit.py."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

import jinja2

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.netfilter.conntrack.plugins.modules.cache_audit import ARGUMENT_SPEC
from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _audit, _audit_cache, _audit_files

try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:
    HAS_JMESPATH = False


def _same_report_time(report, path):
    """The time of the report.json at path when everything else in it equals ``report``."""
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or not isinstance(old.get("generated_at"), str):
        return None
    return old["generated_at"] if dict(old, generated_at=report["generated_at"]) == report else None


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        query_file = args["query_file"]
        if not query_file or "/" in query_file or query_file in (".", ".."):
            raise AnsibleActionFail("query_file=%r is refused: it must be a plain file name inside dir" % query_file)
        if args["query"] and not HAS_JMESPATH:
            raise AnsibleActionFail("query needs the jmespath library on the controller: pip install jmespath")
        for fmt, text in args["templates"].items():
            if text and fmt not in ("markdown", "html"):
                raise AnsibleActionFail("templates.%s is refused: only markdown and html take a template" % fmt)

        play_inputs = _audit_cache.inputs(args["profile"], args["memory_budget"], args["target_chain_depth"],
                                          args["peak_entries"])
        records = _audit_cache.judge(args["hosts"], (task_vars or {})["hostvars"], play_inputs)
        directory = os.path.abspath(args["dir"])
        try:
            report = _audit.build_report(records, thresholds=_audit.plain(args["thresholds"]), fail_on=args["fail_on"])
        except ValueError as exc:
            raise AnsibleActionFail("cache_audit: %s" % to_native(exc))
        if "json" in args["formats"]:
            # An unchanged fleet keeps the report it has: only the time would differ.
            report["generated_at"] = _same_report_time(report, os.path.join(directory, "report.json")) \
                or report["generated_at"]

        extra, query_result = {}, None
        if args["query"]:
            try:
                query_result = jmespath.search(args["query"], report)
            except jmespath.exceptions.JMESPathError as exc:
                raise AnsibleActionFail("query=%r is not a valid JMESPath expression: %s" % (args["query"], to_native(exc)))
            extra[query_file] = json.dumps(query_result, indent=4, sort_keys=True) + "\n"
        templates = dict((fmt, str(text)) for fmt, text in args["templates"].items() if text)
        try:
            planned = _audit_files.plan(report, directory, args["formats"], templates, extra)
            changed, diff = _audit_files.write(planned, check_mode=self._task.check_mode)
        except _audit_files.ReportFileError as exc:
            raise AnsibleActionFail(to_native(exc))
        except jinja2.TemplateError as exc:
            raise AnsibleActionFail("cache_audit: a report template failed, nothing was written: %s" % to_native(exc))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AnsibleActionFail("cache_audit: nothing was written to %s: %s" % (directory, to_native(exc)))
        changed = set(changed)
        result.update(
            changed=bool(changed), dir=directory, summary=report["summary"], gate=report["gate"], query_result=query_result,
            not_audited=[{"host": h["host"], "status": h["status"], "error": h.get("error")}
                         for h in report["hosts"] if h["status"] != "ok"],
            files=[{"path": path, "bytes": len(new), "changed": path in changed} for path, new, _old in planned
                   if os.path.dirname(path) == directory],
            prometheus_files={"dir": os.path.join(directory, _audit_files.PROMETHEUS_DIR),
                              "count": sum(1 for path, _new, _old in planned if os.path.dirname(path) != directory),
                              "changed": sum(1 for path in changed if os.path.dirname(path) != directory)})
        if self._task.diff:
            result["diff"] = diff
        return result
