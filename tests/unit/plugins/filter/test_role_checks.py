"""The roles' input checks: unknown variables, sizing ranges and the audit's output paths."""
import os

import pytest
import yaml

from ansible_collections.netfilter.conntrack.plugins.filter import role_checks
from ansible_collections.netfilter.conntrack.plugins.filter.role_checks import (
    audit_output_errors, recommend_input_errors, role_input_errors, role_value_errors, role_variable_errors)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")


def spec(role):
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as f:
        return yaml.safe_load(f)


def test_typo_in_role_variable_names_the_closest_known_one():
    errors = role_variable_errors(["conntrack_tune_profle", "conntrack_tune_profile"], spec("conntrack_tune"))
    assert errors == ["unknown variable conntrack_tune_profle; did you mean conntrack_tune_profile?"]


def test_every_entry_point_of_the_role_counts_as_known():
    # group_vars for tune must not break rollback, whose entry point takes fewer options.
    assert role_variable_errors(["conntrack_tune_rates", "conntrack_tune_record_file", "conntrack_tune_verify"],
                                spec("conntrack_tune")) == []


def test_outputs_and_playbook_variables_are_allowed_explicitly():
    names = ["conntrack_tune_result", "conntrack_tune_desired", "conntrack_tune_hosts"]
    assert len(role_variable_errors(names, spec("conntrack_tune"))) == 3
    assert role_variable_errors(names, spec("conntrack_tune"), names) == []


def test_a_name_far_from_every_known_one_still_fails():
    [error] = role_variable_errors(["conntrack_audit_zzzzzz"], spec("conntrack_audit"), prefix="conntrack_audit_")
    assert error.startswith("unknown variable conntrack_audit_zzzzzz;") and "argument_specs" in error


@pytest.fixture
def deprecations(monkeypatch):
    said = []
    monkeypatch.setattr(role_checks.Display, "deprecated", lambda self, msg, **kw: said.append(msg))
    return said


def test_another_roles_variables_with_our_old_prefix_are_not_ours(deprecations):
    # An auditd role's variables in a shared inventory: neither a failure nor a warning.
    names = ["audit_backlog_limit", "audit_rules", "conntrack_audit_table"]
    assert role_input_errors(names, spec("conntrack_audit"), "conntrack_audit_", "audit_") == []
    assert deprecations == []


def test_a_typo_of_ours_fails_with_the_closest_name():
    assert role_input_errors(["conntrack_tune_profle", "tune_profle"], spec("conntrack_tune"), "conntrack_tune_",
                             "tune_") == ["unknown variable conntrack_tune_profle; did you mean conntrack_tune_profile?"]


def test_an_exact_old_name_works_with_a_deprecation_naming_the_new_one(deprecations):
    assert role_input_errors(["tune_profile", "tune_serial", "tune_result"], spec("conntrack_tune"), "conntrack_tune_",
                             "tune_", allowed=["conntrack_tune_serial"],
                             outputs=["conntrack_tune_result", "tune_result"]) == []
    assert deprecations == ["the variable tune_profile is now conntrack_tune_profile; use the new name",
                            "the variable tune_serial is now conntrack_tune_serial; use the new name"]


def test_the_old_role_name_warns(deprecations):
    assert role_input_errors([], spec("conntrack_audit"), "conntrack_audit_", "audit_", called_as="audit") == []
    assert deprecations == ["the role netfilter.conntrack.audit is now netfilter.conntrack.conntrack_audit;"
                            " use the new name"]


@pytest.mark.parametrize("variables, named, accepted", [
    ({"tune_peak_entries": -1}, "tune_peak_entries=-1", ">= 0"),
    ({"tune_peak_entries": "-1"}, "tune_peak_entries='-1'", ">= 0"),
    ({"tune_headroom": 0}, "tune_headroom=0", ">= 1 and <= 100"),
    ({"tune_headroom": "0"}, "tune_headroom='0'", ">= 1 and <= 100"),
    ({"tune_rates": {"tcp_new_per_second": 1e308}}, "tune_rates.tcp_new_per_second=1e+308", "<= 1000000000"),
    ({"tune_target_chain_depth": 0}, "tune_target_chain_depth=0", "above 0 and at most 64"),
    ({"tune_memory_budget": "lots"}, "tune_memory_budget='lots'", "a share of RAM"),
    ({"tune_timeouts": {"nf_conntrack_tcp_timeout_time_wait": 5}},
     "tune_timeouts.nf_conntrack_tcp_timeout_time_wait=5", "30..2147483"),
    ({"tune_profile": "nat_gatway"}, "tune_profile='nat_gatway'", "known: container_host, default"),
])
def test_out_of_range_sizing_inputs_name_the_role_variable_the_value_and_the_range(variables, named, accepted):
    [error] = recommend_input_errors(variables, "tune_")
    assert error.startswith(named + " is refused: "), error
    assert accepted in error, error


def test_an_unknown_rate_names_the_closest_rate():
    [error] = recommend_input_errors({"tune_rates": {"tcp_new_per_sec": 10}}, "tune_")
    assert error.startswith("unknown key tune_rates.tcp_new_per_sec; did you mean tcp_new_per_second?"), error


def test_unset_role_variables_are_the_recommend_defaults():
    assert recommend_input_errors({"tune_peak_entries": None, "tune_headroom": None, "tune_rates": {},
                                   "tune_timeouts": {}, "tune_memory_budget": None, "tune_profile": "default"},
                                  "tune_") == []
    assert recommend_input_errors({"audit_memory_budget": "10%", "audit_peak_entries": None}, "audit_") == []


@pytest.mark.parametrize("query_file", ["../x.json", "/etc/passwd", "a/b.json", "..", "."])
def test_a_query_file_outside_audit_dir_is_refused(query_file):
    [error] = audit_output_errors(query_file, "netfilter_conntrack.prom", query="summary")
    assert error.startswith("conntrack_audit_query_file must be a file name inside conntrack_audit_dir") and repr(query_file) in error


def test_the_query_file_is_not_judged_without_a_query():
    assert audit_output_errors("../x.json", "netfilter_conntrack.prom", query="") == []


@pytest.mark.parametrize("name", ["../x.prom", "x.txt", "sub/x.prom", ".prom", "", "x.prom/.."])
def test_a_textfile_name_that_is_not_a_plain_prom_file_is_refused(name):
    [error] = audit_output_errors("query.json", name)
    assert error.startswith("conntrack_audit_textfile_name must be a plain file name ending in .prom") and repr(name) in error


def test_host_names_that_would_leave_the_prometheus_directory_are_refused():
    [error] = audit_output_errors("query.json", "x.prom", hosts=["web1", "../../etc/cron.d/x"],
                                  formats=["prometheus"])
    assert "'../../etc/cron.d/x'" in error
    assert audit_output_errors("query.json", "x.prom", hosts=["../x"], formats=["json"]) == []


@pytest.mark.parametrize("value, taken", [(1, 1), ("2", 2), ("25%", "25%"), ([1, "25%"], [1, "25%"]),
                                          (["1", "50%"], [1, "50%"])])
def test_serial_takes_hosts_percentages_and_lists_of_them(value, taken):
    assert role_checks.play_keyword(value, "conntrack_tune_serial") == taken


@pytest.mark.parametrize("value", ["abc", -1, "150%", [], [1, "lots"], True, {"a": 1}])
def test_a_bad_serial_is_one_named_line(value):
    with pytest.raises(role_checks.AnsibleFilterError) as info:
        role_checks.play_keyword(value, "conntrack_tune_serial")
    message = str(info.value)
    assert message.startswith("conntrack_tune_serial=%r is refused: serial takes" % (value,)) and "\n" not in message


@pytest.mark.parametrize("value", ["abc", 101, "-1"])
def test_a_bad_max_fail_percentage_is_one_named_line(value):
    with pytest.raises(role_checks.AnsibleFilterError, match="0 to 100"):
        role_checks.play_keyword(value, "conntrack_tune_max_fail_percentage", "max_fail_percentage")


def test_a_variable_named_after_a_settings_key_points_to_the_settings_dict():
    # conntrack_tune_max: "lots" once suggested conntrack_tune_table.
    errors = role_variable_errors(["conntrack_tune_max", "conntrack_tune_buckets"], spec("conntrack_tune"),
                                  prefix="conntrack_tune_")
    assert errors == [
        "unknown variable conntrack_tune_buckets; to set nf_conntrack_buckets, use conntrack_tune_settings:"
        " {nf_conntrack_buckets: VALUE}",
        "unknown variable conntrack_tune_max; to set nf_conntrack_max, use conntrack_tune_settings: {nf_conntrack_max: VALUE}"]


@pytest.mark.parametrize("name, value, message", [
    ("conntrack_tune_peak_entries", "lots", "conntrack_tune_peak_entries='lots' is refused: it must be a whole number"),
    ("conntrack_tune_headroom", "x", "conntrack_tune_headroom='x' is refused: it must be a number"),
    ("conntrack_tune_force", "maybe", "conntrack_tune_force='maybe' is refused: it must be true or false"),
    ("conntrack_tune_settings", [1, 2], "conntrack_tune_settings=[1, 2] is refused: it must be a dict of keys to values,"
                                        " not a list"),
    ("conntrack_tune_rates", [{"tcp_new_per_second": 1}], "conntrack_tune_rates=[{'tcp_new_per_second': 1}] is refused"),
    ("conntrack_tune_timeouts", 5, "conntrack_tune_timeouts=5 is refused: it must be a dict"),
    ("conntrack_tune_table", [True], "conntrack_tune_table=[True] is refused: it must be true or false, not a list"),
    ("conntrack_tune_profile", "nat_gatway", "conntrack_tune_profile='nat_gatway' is refused: it must be one of: default,"
                                             " nat_gateway"),
    ("conntrack_tune_settings", {"nf_conntrack_max": "lots"},
     "conntrack_tune_settings.nf_conntrack_max='lots' is refused: it must be a whole number"),
    ("conntrack_tune_timeouts", {"tcp_established": 600},
     "unknown key conntrack_tune_timeouts.tcp_established; did you mean nf_conntrack_tcp_timeout_established?"),
    ("tune_peak_entries", "lots", "tune_peak_entries (now conntrack_tune_peak_entries)='lots' is refused"),
])
def test_a_wrong_type_or_shape_is_one_short_named_line(name, value, message):
    [error] = role_value_errors({name: value}, spec("conntrack_tune"), "conntrack_tune_", "tune_")
    assert error.startswith(message) and len(error) < 200 and "argument_spec" not in error, error


@pytest.mark.parametrize("name, value, message", [
    ("conntrack_audit_thresholds", [1], "conntrack_audit_thresholds=[1] is refused: it must be a dict"),
    ("conntrack_audit_formats", ["json", "pdf"], "conntrack_audit_formats=['json', 'pdf'] is refused: it must be a list of:"
                                                 " json, csv"),
    ("conntrack_audit_formats", {"json": 1}, "conntrack_audit_formats={'json': 1} is refused: it must be a list of:"),
    ("conntrack_audit_sample_seconds", "soon", "conntrack_audit_sample_seconds='soon' is refused: it must be a number"),
])
def test_the_audit_roles_wrong_types_are_one_line_each(name, value, message):
    [error] = role_value_errors({name: value}, spec("conntrack_audit"), "conntrack_audit_", "audit_")
    assert error.startswith(message), error


def test_values_that_ansible_core_accepts_pass():
    # What -e gives (strings) and what YAML gives, for every type, as ansible-core converts them.
    values = {"conntrack_tune_peak_entries": "250000", "conntrack_tune_headroom": "1.5", "conntrack_tune_force": "yes",
              "conntrack_tune_table": False, "conntrack_tune_settings": {"nf_conntrack_max": "262144"},
              "conntrack_tune_rates": {}, "conntrack_tune_memory_budget": "1GiB", "conntrack_tune_target_chain_depth": 4,
              "conntrack_tune_timeouts": None, "conntrack_tune_profile": "nat_gateway"}
    assert role_value_errors(values, spec("conntrack_tune"), "conntrack_tune_", "tune_") == []
    assert role_value_errors({"conntrack_audit_formats": "json,csv"}, spec("conntrack_audit"), "conntrack_audit_") == []


def test_other_roles_variables_and_typos_are_not_judged_here():
    # Typos are role_input_errors' job; another role's tune_ variable is never ours.
    values = {"tune_swappiness": "high", "conntrack_tune_profle": 3, "audit_backlog_limit": "x"}
    assert role_value_errors(values, spec("conntrack_tune"), "conntrack_tune_", "tune_") == []


def test_an_unwritable_or_impossible_report_directory_is_refused(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    [error] = audit_output_errors("q.json", "x.prom", report_dir=str(afile / "sub"))
    assert error.startswith("conntrack_audit_dir=%r cannot hold the report: %s is not a directory" % (str(afile / "sub"), afile))
    (tmp_path / "report" / "prometheus").parent.mkdir()
    (tmp_path / "report" / "prometheus").write_text("x")
    [error] = audit_output_errors("q.json", "x.prom", report_dir=str(tmp_path / "report"))
    assert "prometheus is not a directory" in error
    assert audit_output_errors("q.json", "x.prom", report_dir=str(tmp_path / "new" / "deeper")) == []
    assert audit_output_errors("q.json", "x.prom", report_dir=str(tmp_path)) == []
