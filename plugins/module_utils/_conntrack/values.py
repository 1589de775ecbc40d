# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading the facts dicts without tripping over a missing or odd-typed level.

Private to this collection: not an API. Pure; standard library only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def dig(mapping, *path):
    """mapping[path[0]][path[1]]...; None as soon as a level is missing or not a dict."""
    for key in path:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def number(value):
    """An int or float as it is; None for anything else (bools included)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
