"""Our roles in someone else's playbook: other roles' variables beside ours in one inventory.

An auditd role's ``audit_backlog_limit``/``audit_rules`` and a kernel tuning role's
``tune_*`` variables sit in the same group_vars as ours. Our audit and our tune (check
mode) must pass untouched by them, a typo of ours must still fail before anything runs,
and the names before 0.3.0 must still work, with a deprecation naming the new one.
"""
import json

from support.ansible import run_playbook
from support.etc import EtcOverlay
from support.kernel import read_int

OTHER_ROLES = {
    "auditd": "- name: Configure auditd (stand-in)\n"
              "  ansible.builtin.debug:\n"
              "    msg: backlog {{ audit_backlog_limit }}, {{ audit_rules | length }} rules\n",
    "kernel_tune": "- name: Tune the kernel (stand-in)\n"
                   "  ansible.builtin.debug:\n"
                   "    msg: swappiness {{ tune_swappiness }}, profile {{ tune_vm_profile }}\n",
}
OTHER_VARS = {
    "audit_backlog_limit": 8192,
    "audit_rules": ["-w /etc/passwd -p wa -k identity"],
    "audit_failure_mode": 1,
    "tune_swappiness": 10,
    "tune_vm_profile": "throughput",
    "tune_profiles_enabled": True,
}


def write_project(tmp_path, our_vars,
                  roles=("netfilter.conntrack.conntrack_audit", "netfilter.conntrack.conntrack_tune")):
    """A project as a platform team has it: its own roles, shared group_vars, one playbook."""
    for role, tasks in OTHER_ROLES.items():
        (tmp_path / "roles" / role / "tasks").mkdir(parents=True)
        (tmp_path / "roles" / role / "tasks" / "main.yml").write_text("---\n" + tasks)
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.json").write_text(json.dumps(dict(OTHER_VARS, **our_vars)))
    (tmp_path / "hosts.ini").write_text("localhost ansible_connection=local\n")
    playbook = tmp_path / "site.yml"
    playbook.write_text("- name: Site\n  hosts: all\n  gather_facts: false\n  roles:\n"
                        + "".join("    - role: %s\n" % r for r in ("auditd", "kernel_tune") + tuple(roles)))
    return str(playbook), str(tmp_path / "hosts.ini")


def our_vars(tmp_path, prefix_tune="conntrack_tune_", prefix_audit="conntrack_audit_"):
    return {
        prefix_audit + "dir": str(tmp_path / "audit"),
        prefix_audit + "formats": ["json"],
        prefix_tune + "settings": {"nf_conntrack_max": read_int("nf_conntrack_max") + 3584},
        prefix_tune + "record_file": str(tmp_path / "record.fact"),
        prefix_tune + "health_sample_seconds": 1,
    }


def test_other_roles_variables_beside_ours_leave_our_audit_and_tune_untouched(kernel_lock, tmp_path):
    max_before = read_int("nf_conntrack_max")
    playbook, inventory = write_project(tmp_path, our_vars(tmp_path))
    etc = EtcOverlay(tmp_path)
    proc, recap = run_playbook(playbook, inventory=inventory, check=True, etc=etc)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and recap["localhost"]["failed"] == 0, out
    assert "unknown variable" not in out and "DEPRECATION" not in out, out
    with open(str(tmp_path / "audit" / "report.json")) as f:
        assert [h["status"] for h in json.load(f)["hosts"]] == ["ok"]
    assert "Apply every key in one call" in out and read_int("nf_conntrack_max") == max_before
    assert etc.written() == {} and not (tmp_path / "record.fact").exists()


def test_a_typo_of_ours_fails_before_anything_is_read(kernel_lock, tmp_path):
    variables = dict(our_vars(tmp_path), conntrack_tune_profle="nat_gateway")
    playbook, inventory = write_project(tmp_path, variables, roles=("netfilter.conntrack.conntrack_tune",))
    etc = EtcOverlay(tmp_path)
    proc, recap = run_playbook(playbook, inventory=inventory, check=True, etc=etc)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and recap["localhost"]["changed"] == 0, out
    assert "unknown variable conntrack_tune_profle; did you mean conntrack_tune_profile?" in out, out
    assert "Read conntrack state" not in out and etc.written() == {}, out


def test_the_names_before_0_3_0_still_work_with_a_deprecation(kernel_lock, tmp_path):
    playbook, inventory = write_project(tmp_path, our_vars(tmp_path, "tune_", "audit_"),
                                        roles=("netfilter.conntrack.audit", "netfilter.conntrack.tune"))
    etc = EtcOverlay(tmp_path)
    # The test runs turn deprecation warnings off; a user sees them by default.
    proc, recap = run_playbook(playbook, inventory=inventory, check=True, etc=etc,
                               env={"ANSIBLE_DEPRECATION_WARNINGS": "True"})
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0 and recap["localhost"]["failed"] == 0, out
    for old, new in (("tune_settings", "conntrack_tune_settings"), ("audit_dir", "conntrack_audit_dir"),
                     ("role netfilter.conntrack.tune", "netfilter.conntrack.conntrack_tune")):
        assert "%s is now %s" % (old, new) in out, out
    # Another role's variables with our old prefix are not old names of ours: no warning.
    assert "audit_backlog_limit is now" not in out and "tune_swappiness is now" not in out, out
    assert (tmp_path / "audit" / "report.json").exists() and etc.written() == {}
