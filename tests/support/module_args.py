"""``patch_module_args`` on every ansible-core the version matrix runs.

ansible-core 2.19 ships it as ``ansible.module_utils.testing``; before, a module read
its arguments from ``basic._ANSIBLE_ARGS``, which is what this fallback sets.
"""
import contextlib
import json

__all__ = ["patch_module_args"]

try:
    from ansible.module_utils.testing import patch_module_args  # ansible-core >= 2.19
except ImportError:
    from ansible.module_utils import basic

    @contextlib.contextmanager
    def patch_module_args(args=None):
        args = dict(args or {})
        args.setdefault("_ansible_remote_tmp", "/tmp")
        args.setdefault("_ansible_keep_remote_files", False)
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved
