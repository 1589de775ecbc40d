# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one base of the errors the backends raise on purpose. Private to this collection."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ConntrackError(Exception):
    """Raised on purpose by sizing (SizingError) and writing (SettingsError, ApplyError): the
    message is meant for the user, and a module turns it into fail_json."""
