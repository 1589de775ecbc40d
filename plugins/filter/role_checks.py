# -*- coding: utf-8 -*-
# Copyright (c) netfilter.conntrack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller-side checks of the roles' inputs, run before any module call on a host."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import difflib
import os

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common._collections_compat import Mapping
from ansible.module_utils.six import string_types
from ansible.utils.display import Display

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import sizing

# The recommend inputs a role's ``*_rates`` dict may hold.
RATE_KEYS = ("tcp_new_per_second", "tcp_duration_seconds", "udp_new_per_second", "udp_duration_seconds",
             "udp_stream_share", "other_new_per_second")


def _spec_options(spec):
    """Every option of every entry point of a role's argument_specs, by name (the entry points
    share their options)."""
    if not isinstance(spec, dict):
        raise AnsibleFilterError("role checks: spec must be the parsed meta/argument_specs.yml")
    options = {}
    for entry in (spec.get("argument_specs", spec) or {}).values():
        options.update(((entry or {}).get("options") or {}))
    return options


def _spec_names(spec):
    return set(_spec_options(spec))


def _key_holder(spec, tail):
    """(option, key) when ``tail`` names a key of one of the role's dict options, such as
    ``max`` for ``conntrack_tune_settings: {nf_conntrack_max: ...}``; else None."""
    for option, definition in sorted(_spec_options(spec).items()):
        keys = (definition or {}).get("options") or {}
        for key in (tail, "nf_conntrack_" + tail):
            if tail and key in keys:
                return option, key
    return None


def role_variable_errors(names, spec, allowed=None, prefix=""):
    """One sentence per variable in names that the role does not know, naming the closest known one.

    ``names`` are the variables set for this host with the role's prefix (the varnames
    lookup); ``allowed`` names the role's outputs and the playbooks' variables. With a
    ``prefix`` the closest name is judged on what follows it, which all names share.
    """
    if isinstance(names, string_types):
        names = [n for n in names.split(",") if n]
    known = _spec_names(spec) | set(allowed or ())
    errors = []
    for name in sorted(set(names or ())):
        if name in known:
            continue
        tails = sorted(k[len(prefix):] for k in known if k.startswith(prefix))
        close = difflib.get_close_matches(name[len(prefix):], tails, n=1, cutoff=0.6) \
            if name.startswith(prefix) else []
        holder = _key_holder(spec, name[len(prefix):]) if name.startswith(prefix) else None
        if holder:
            errors.append("unknown variable %s; to set %s, use %s: {%s: VALUE}"
                          % (name, holder[1], holder[0], holder[1]))
        elif close:
            errors.append("unknown variable %s; did you mean %s%s?" % (name, prefix, close[0]))
        else:
            errors.append("unknown variable %s; the role takes only the variables in its meta/argument_specs.yml"
                          " (ansible-doc -t role netfilter.conntrack.%s)" % (name, prefix.rstrip("_") or "ROLE"))
    return errors


def role_input_errors(names, spec, prefix, old_prefix=None, allowed=None, outputs=None, called_as=None):
    """The roles' one variable-name check: typos of ours fail, old names warn, others pass.

    ``names`` are the variables set for the host that start with ``prefix`` (ours, such as
    ``conntrack_tune_``) or ``old_prefix`` (``tune_``, the names before the rename). A name
    with our prefix that the role does not know is a typo, and one sentence per typo is
    returned. A name with the old prefix is ours only when it is exactly an old name of one
    of ours: then a deprecation warning names the new one. Anything else (an auditd role's
    ``audit_backlog_limit``) belongs to someone else and is left alone. ``called_as`` is the
    old role name the role was reached through, which warns too. ``allowed`` are further
    names of ours (the playbooks' variables); ``outputs`` are what the role publishes, under
    both names for one release, so their old names do not warn.
    """
    if isinstance(names, string_types):
        names = [n for n in names.split(",") if n]
    names = sorted(set(names or ()))
    ours = [n for n in names if n.startswith(prefix)]
    display = Display()
    if called_as:
        display.deprecated("the role netfilter.conntrack.%s is now netfilter.conntrack.%s; use the new name"
                           % (called_as, prefix.rstrip("_")), version="0.4.0",
                           collection_name="netfilter.conntrack")
    if old_prefix:
        inputs = _spec_names(spec) | set(allowed or ())
        renamed = dict((old_prefix + n[len(prefix):], n) for n in inputs if n.startswith(prefix))
        for name in names:
            if not name.startswith(prefix) and name in renamed:
                display.deprecated("the variable %s is now %s; use the new name" % (name, renamed[name]),
                                   version="0.4.0", collection_name="netfilter.conntrack")
    return role_variable_errors(ours, spec, list(allowed or ()) + list(outputs or ()), prefix)


# What each argument-spec type accepts, as the error says it (one, and a list of them).
_TYPE_WORDS = {
    "int": ("a whole number", "whole numbers"),
    "float": ("a number", "numbers"),
    "bool": ("true or false", "booleans"),
    "str": ("a string", "strings"),
    "path": ("a path", "paths"),
    "dict": ("a dict of keys to values", "dicts"),
    "list": ("a list", "lists"),
}
# Past this many known keys the message points to the documentation instead of listing them.
_KEYS_SHOWN = 8


def _expected(option):
    kind = option.get("type", "str")
    if option.get("choices"):
        words = "one of: " if kind != "list" else "a list of: "
        return words + ", ".join(str(c) for c in option["choices"])
    words = _TYPE_WORDS.get(kind, ("a " + kind,))[0]
    if kind == "list" and option.get("elements"):
        words += " of " + _TYPE_WORDS.get(option["elements"], (None, option["elements"]))[1]
    return words


def _shown(value):
    """The value as the message shows it, cut short: a mistake may be a whole structure."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value):
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return "a list"
    return None


def _unknown_key(name, key, known, role):
    key = str(key)
    words = [w for w in key.split("_") if w]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) \
        or sorted(k for k in known if words and all(w in k.split("_") for w in words))[:1]
    hint = "; did you mean %s?" % close[0] if close else ""
    if len(known) > _KEYS_SHOWN:
        return "unknown key %s.%s%s (every key: ansible-doc -t role netfilter.conntrack.%s)" % (
            name, key, hint, role)
    return "unknown key %s.%s%s; known: %s" % (name, key, hint, ", ".join(sorted(known)))


def _value_errors(name, value, option, role):
    """Why ``value`` does not fit ``option`` of an argument spec, in one line per problem."""
    kind = option.get("type", "str")
    if value is None or kind == "raw":
        return []
    got = _kind(value)
    mismatch = got and got != "a " + kind
    refused = "%s=%s is refused: it must be %s%s" % (
        name, _shown(value), _expected(option), ", not " + got if mismatch else "")
    if kind == "dict":
        if got != "a dict":
            return [refused]
        suboptions = option.get("options")
        if not suboptions:
            return []
        errors = []
        for key in sorted(value, key=str):
            if key not in suboptions:
                errors.append(_unknown_key(name, key, list(suboptions), role))
            else:
                errors.extend(_value_errors("%s.%s" % (name, key), value[key], suboptions[key], role))
        return errors
    if got == "a dict" or (kind != "list" and got):
        return [refused]
    leaf = dict((k, v) for k, v in option.items() if k in ("type", "elements", "choices"))
    try:
        result = ArgumentSpecValidator({"value": leaf}).validate({"value": value})
    except Exception:  # pylint: disable=broad-except  # what ansible-core's own check would crash on
        return [refused]
    return [refused] if result.error_messages else []


def role_value_errors(values, spec, prefix, old_prefix=None):
    """One short line per variable of ours whose value the role's argument spec refuses.

    ansible-core checks a role's variables against its argument spec too, but its refusal
    ends with the whole spec (some 17 KB), and a list where a dict belongs crashes it. The
    roles run this first. ``values`` maps the variables set for the host that start with
    ``prefix`` or ``old_prefix`` (their names before 0.3.0) to their values; names the spec
    does not know are left to role_input_errors (typos) or to their own role.
    """
    if not isinstance(values, Mapping):
        raise AnsibleFilterError("role_value_errors: values must be a dict of variable names to values")
    options = _spec_options(spec)
    errors = []
    for name in sorted(values):
        option = name if name.startswith(prefix) else None
        if option is None and old_prefix and name.startswith(old_prefix):
            option = prefix + name[len(old_prefix):]
        if option in options:
            shown = name if name == option else "%s (now %s)" % (name, option)
            errors.extend(_value_errors(shown, values[name], options[option], prefix.rstrip("_")))
    return errors


def _role_name(option, prefix, rates):
    """The role variable behind a recommend input."""
    if option is None:
        return None
    if option in rates:
        return "%srates.%s" % (prefix, option)
    if option.startswith("timeouts."):
        return "%stimeouts.%s" % (prefix, option[len("timeouts."):])
    return prefix + option


def recommend_input_errors(variables, prefix):
    """The recommend module's own range checks on the role's variables, before any sample window.

    ``variables`` maps role variable names (``tune_headroom``) to values; a ``<prefix>rates``
    dict is spread into the rate inputs. Returns one sentence naming the role variable, the
    value and what would be accepted, or an empty list.
    """
    if not isinstance(variables, dict):
        raise AnsibleFilterError("recommend_input_errors: variables must be a dict of role variables")
    inputs = {}
    rates = {}
    for name, value in variables.items():
        if not name.startswith(prefix):
            raise AnsibleFilterError("recommend_input_errors: %s does not start with %s" % (name, prefix))
        key = name[len(prefix):]
        if key == "rates":
            if value in (None, ""):
                continue
            if not isinstance(value, dict):
                return ["%s must be a dict of rate names to numbers, got %r" % (name, value)]
            for rate in sorted(value):
                if rate not in RATE_KEYS:
                    close = difflib.get_close_matches(str(rate), RATE_KEYS, n=1, cutoff=0.6)
                    return ["unknown key %s.%s%s; known: %s" % (
                        name, rate, "; did you mean %s?" % close[0] if close else "", ", ".join(RATE_KEYS))]
            rates = dict(value)
            inputs.update(rates)
        elif value is not None and value != "" and value != {}:
            inputs[key] = value
    try:
        sizing.validate_inputs(**inputs)
    except sizing.SizingError as exc:
        option = getattr(exc, "option", None)
        variable = _role_name(option, prefix, rates)
        if variable is None:
            return ["%s (in the role variables %s)" % (exc, ", ".join(sorted(variables)))]
        if option.startswith("timeouts."):
            shown = option[len("timeouts."):]
            value = (variables.get(prefix + "timeouts") or {}).get(shown)
        else:
            value = inputs.get(option)
        return ["%s=%r is refused: %s" % (variable, value, exc)]
    return []


def _plain_file_name(name):
    return (isinstance(name, string_types) and name not in ("", ".", "..")
            and "/" not in name and "\0" not in name)


def _unwritable_directory(path):
    """Why the controller could not create or write the directory ``path``, or None."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if not os.path.isdir(path):
        return "%s is not a directory" % path
    if not os.access(path, os.W_OK | os.X_OK):
        # access(2) says EROFS on a read-only file system too.
        return "%s is not writable here%s" % (path, " (it would hold %s)" % missing[-1] if missing else "")
    if not missing:
        sub = os.path.join(path, "prometheus")
        if os.path.lexists(sub) and not os.path.isdir(sub):
            return "%s is not a directory" % sub
        if os.path.isdir(sub) and not os.access(sub, os.W_OK | os.X_OK):
            return "%s is not writable here" % sub
    return None


def audit_output_errors(query_file, textfile_name, hosts=(), query="", formats=(), report_dir=None):
    """Why the audit's outputs would land outside audit_dir or the textfile directory, or could
    not be written there; empty when fine."""
    errors = []
    if report_dir:
        why = _unwritable_directory(str(report_dir))
        if why:
            errors.append("conntrack_audit_dir=%r cannot hold the report: %s (the report is written on the controller,"
                          " as the user running ansible-playbook)" % (str(report_dir), why))
    if query and not _plain_file_name(query_file):
        errors.append("conntrack_audit_query_file must be a file name inside conntrack_audit_dir (no '/', not '.' or '..'), got %r"
                      % (query_file,))
    if not _plain_file_name(textfile_name) or not str(textfile_name).endswith(".prom") \
            or str(textfile_name) == ".prom":
        errors.append("conntrack_audit_textfile_name must be a plain file name ending in .prom (node_exporter's textfile"
                      " collector reads only *.prom in its directory), got %r" % (textfile_name,))
    if "prometheus" in (formats or ()):
        bad = sorted(str(h) for h in hosts or () if not _plain_file_name(str(h)))
        if bad:
            errors.append("inventory host names %s cannot name a file in conntrack_audit_dir/prometheus/ (HOST.prom):"
                          " leave prometheus out of conntrack_audit_formats, or rename the hosts"
                          % ", ".join(repr(h) for h in bad))
    return errors


def _batch(value):
    """One batch size as serial takes it, or None: a whole number of hosts or a percentage."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, string_types):
        text = value.strip()
        if text.isdigit():
            return int(text)
        if text.endswith("%") and text[:-1].strip().isdigit() and int(text[:-1]) <= 100:
            return text
    return None


def play_keyword(value, name, keyword="serial"):
    """A play variable of our playbooks checked before the play uses it, else one named error.

    ansible-core turns a bad ``serial`` into "Unexpected Exception, this is probably a bug";
    ``keyword`` is ``serial`` (hosts or percentages, or a list of them) or
    ``max_fail_percentage`` (0 to 100).
    """
    if keyword == "max_fail_percentage":
        number = _batch(value)
        if isinstance(number, int) and number <= 100:
            return number
        raise AnsibleFilterError("%s=%r is refused: max_fail_percentage is a whole number from 0 to 100"
                                 % (name, value))
    if keyword != "serial":
        raise AnsibleFilterError("play_keyword: keyword must be serial or max_fail_percentage, got %r" % (keyword,))
    values = value if isinstance(value, (list, tuple)) else [value]
    batches = [_batch(v) for v in values]
    if not values or any(b is None for b in batches):
        raise AnsibleFilterError("%s=%r is refused: serial takes a number of hosts (2), a percentage ('25%%')"
                                 " or a list of them ([1, '25%%'])" % (name, value))
    return batches if isinstance(value, (list, tuple)) else batches[0]


class FilterModule(object):
    def filters(self):
        return {
            "role_variable_errors": role_variable_errors,
            "role_input_errors": role_input_errors,
            "role_value_errors": role_value_errors,
            "play_keyword": play_keyword,
            "recommend_input_errors": recommend_input_errors,
            "audit_output_errors": audit_output_errors,
        }
