# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One fleet report from the reports of several runs that each audited part of the fleet
(job slices, one controller per site). Pure: reports in, report out.

A report's host entry keeps what was read and recommended, so the merged report judges every
host again with one set of thresholds and one gate, exactly as a single run would have."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._audit import build_report, merge_thresholds, plain

KIND = "netfilter.conntrack.audit"


def _record(entry):
    """The record a run judged this host from, taken back out of its report entry."""
    record = {"host": entry.get("host"), "status": entry.get("status"), "error": entry.get("error"),
              "facts": entry.get("facts"), "recommendation": entry.get("recommendation")}
    failed = [f.get("message") for f in entry.get("findings") or () if f.get("rule") == "recommend_failed"]
    if failed and failed[0]:
        # The finding says "no recommendation: <why>"; the record holds the why alone.
        record["recommendation_error"] = failed[0].split(": ", 1)[-1]
    return record


def merge_reports(reports, thresholds=None, fail_on="never", generated_at=None):
    """``thresholds`` None: the slices' own, which must then agree (a host judged at 80 % in one
    slice and 90 % in another would make one fleet report say two things)."""
    reports = plain(reports)
    if not isinstance(reports, list) or not reports:
        raise ValueError("expects a non-empty list of audit reports (report.json of each run)")
    records = []
    owner = {}
    for index, report in enumerate(reports):
        if not isinstance(report, dict) or report.get("kind") != KIND or not isinstance(report.get("hosts"), list):
            raise ValueError("item %d is not an audit report (report.json with kind %s)" % (index, KIND))
        for entry in report["hosts"]:
            name = entry.get("host")
            if name in owner:
                raise ValueError("host %s is in reports %d and %d: a host belongs to one slice; was a report given twice?"
                                 % (name, owner[name], index))
            owner[name] = index
            records.append(_record(entry))
    if thresholds is None:
        seen = [r.get("thresholds") or {} for r in reports]
        if any(t != seen[0] for t in seen[1:]):
            raise ValueError("the reports were judged with different thresholds; pass thresholds to choose one set")
        # Only the overrides: the defaults then come out in their own form, as in a single run.
        defaults = merge_thresholds(None)
        thresholds = dict((k, v) for k, v in seen[0].items() if defaults.get(k) != v)
    return build_report(records, thresholds=thresholds, generated_at=generated_at, fail_on=fail_on)
