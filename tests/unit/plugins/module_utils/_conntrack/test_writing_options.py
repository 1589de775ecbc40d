"""The settings backend's options are written once: argument_spec(), from_params() and its defaults."""
import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import errors, settings_input, sizing, transaction
from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack.writing import ConntrackSettings


def module_params(**given):
    """What AnsibleModule hands main(): every option, the defaults filled in."""
    params = dict((name, spec.get("default")) for name, spec in settings_input.argument_spec().items())
    params.update(given)
    return params


def test_from_params_takes_every_option_of_the_spec():
    b = ConntrackSettings.from_params(module_params(settings={"nf_conntrack_max": 1048576}, root="/tmp/x",
                                                    kube_proxy="override", sysctl_file="/etc/sysctl.d/91-netfilter-conntrack.conf",
                                                    lock_timeout=5.0, record_file="/etc/ansible/facts.d/x.fact"))
    assert b.given == {"nf_conntrack_max": 1048576} and b.root == "/tmp/x"
    assert b.options.kube_proxy == "override" and b.options.lock_timeout == 5.0
    assert b.options.paths["sysctl"] == "/etc/sysctl.d/91-netfilter-conntrack.conf"
    assert b.options.paths["udev_rule"] == settings_input.DEFAULT_UDEV_RULE_FILE
    assert b.options.record_file == "/etc/ansible/facts.d/x.fact"


def test_the_defaults_of_the_backend_are_the_specs():
    spec = settings_input.argument_spec()
    assert set(spec) == set(settings_input.OPTION_DEFAULTS) | {"settings", "root"}
    plain = ConntrackSettings({})
    from_module = ConntrackSettings.from_params(module_params())
    for attribute in ("options", "root", "given"):
        assert getattr(plain, attribute) == getattr(from_module, attribute), attribute


def test_an_unknown_option_is_a_programming_error():
    with pytest.raises(TypeError, match="kube_proxi"):
        ConntrackSettings({}, kube_proxi="override")


def test_every_refusal_and_failure_shares_one_base():
    for error in (settings_input.SettingsError, transaction.ApplyError, sizing.SizingError):
        assert issubclass(error, errors.ConntrackError)
    assert issubclass(sizing.SizingError, ValueError)
