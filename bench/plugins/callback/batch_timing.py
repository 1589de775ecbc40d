# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bench only (B8): the time of every serial batch and of every task in it, written as JSON."""

from __future__ import annotations

DOCUMENTATION = """
    name: batch_timing
    type: aggregate
    short_description: Bench only; times each serial batch and each task
    description:
        - A play start is sent once per serial batch; each batch's record holds its start, its hosts,
          the start of each task and the hosts that failed in it. Written at the end to NC_BENCH_TIMING.
    author: netfilter.conntrack contributors
    requirements:
        - enable in configuration
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "batch_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._batches = []
        self._started = time.monotonic()

    def _now(self):
        return round(time.monotonic() - self._started, 4)

    def v2_playbook_on_play_start(self, play):
        self._batches.append({"play": play.get_name(), "start": self._now(), "tasks": [], "failed": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self._batches:
            self._batches[-1]["tasks"].append({"name": task.get_name(), "start": self._now(), "hosts": 0})

    def _count(self, result):
        if self._batches and self._batches[-1]["tasks"]:
            self._batches[-1]["tasks"][-1]["hosts"] += 1

    def v2_runner_on_ok(self, result, **kwargs):
        self._count(result)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._count(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._count(result)
        if self._batches and not ignore_errors:
            self._batches[-1]["failed"].append(result._host.get_name())

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("NC_BENCH_TIMING")
        if not path:
            return
        end = self._now()
        for batch, following in zip(self._batches, self._batches[1:] + [None]):
            batch["end"] = following["start"] if following else end
            batch["seconds"] = round(batch["end"] - batch["start"], 4)
            for task, after in zip(batch["tasks"], batch["tasks"][1:] + [None]):
                task["seconds"] = round((after["start"] if after else batch["end"]) - task["start"], 4)
        with open(path, "w") as f:
            json.dump({"batches": self._batches, "seconds": end}, f)
