"""The settings backend's options are written once: argument_spec(), from_params() and its defaults."""
import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import errors, sizing, writing
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.writing import ConntrackSettings


def module_params(**given):
    """What AnsibleModule hands main(): every option, the defaults filled in."""
    params = dict((name, spec.get("default")) for name, spec in writing.argument_spec().items())
    params.update(given)
    return params


def test_from_params_takes_every_option_of_the_spec():
    b = ConntrackSettings.from_params(module_params(settings={"nf_conntrack_max": 1048576}, root="/tmp/x",
                                                    kube_proxy="override", sysctl_file="/etc/sysctl.d/91-netfilter-conntrack.conf",
                                                    lock_timeout=5.0, record_file="/etc/ansible/facts.d/x.fact"))
    assert b.raw_settings == {"nf_conntrack_max": 1048576} and b.root == "/tmp/x"
    assert b.kube_proxy == "override" and b.lock_timeout == 5.0
    assert b.paths["sysctl"] == "/etc/sysctl.d/91-netfilter-conntrack.conf"
    assert b.paths["udev_rule"] == writing.DEFAULT_UDEV_RULE_FILE
    assert b.record_file == "/etc/ansible/facts.d/x.fact"


def test_the_defaults_of_the_backend_are_the_specs():
    spec = writing.argument_spec()
    assert set(spec) == set(writing.OPTION_DEFAULTS) | {"settings", "root"}
    plain = ConntrackSettings({})
    from_module = ConntrackSettings.from_params(module_params())
    for attribute in ("state", "runtime_enabled", "persist_sysctl", "persist_modprobe", "boot_fix", "paths",
                      "kube_proxy", "strict", "backup", "force", "lock_timeout", "restore", "record_file",
                      "record_pressure_entries", "root", "raw_settings"):
        assert getattr(plain, attribute) == getattr(from_module, attribute), attribute


def test_an_unknown_option_is_a_programming_error():
    with pytest.raises(TypeError, match="kube_proxi"):
        ConntrackSettings({}, kube_proxi="override")


def test_every_refusal_and_failure_shares_one_base():
    for error in (writing.SettingsError, writing.ApplyError, sizing.SizingError):
        assert issubclass(error, errors.ConntrackError)
    assert issubclass(sizing.SizingError, ValueError)
