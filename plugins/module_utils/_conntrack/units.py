# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Figures written for people: bytes in binary units, counts in k and M, shares in percent.

Private to this collection. Pure; standard library only; Python 3.8 compatible.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def fmt(num):
    """A number as short as it reads: 2 for 2.0, 1.5, 1e+20."""
    if float(num).is_integer() and abs(num) < 1e15:
        return str(int(num))
    return "%g" % num


def percent(fraction):
    """0.1 -> "10%", 0.0125 -> "1.25%"."""
    return ("%.2f" % (fraction * 100)).rstrip("0").rstrip(".") + "%"


def human_bytes(num):
    """1.5 GiB style, binary units, one decimal. Not bytes_to_human, which labels the same
    binary figures "MB" and would disagree with /proc/slabinfo-based docs."""
    if num is None:
        return None
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return "%d B" % num if unit == "B" else "%.1f %s" % (value, unit)
        value /= 1024.0
    return None  # pragma: no cover


def human_count(num):
    """780000 -> "780k", 1170000 -> "1.17M"."""
    if num >= 1000000:
        return "%.2fM" % (num / 1e6)
    if num >= 10000:
        return "%dk" % round(num / 1e3)
    return "%d" % num
