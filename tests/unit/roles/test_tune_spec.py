"""The tune role's argument spec against the module code it feeds."""
import os

import yaml

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack import kernel

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "conntrack_tune", "meta", "argument_specs.yml")


def test_tune_settings_accepts_exactly_the_settings_allowlist():
    # The spec lists the keys for ansible-core's own validation; the allowlist is kernel.WRITABLE_KEYS.
    # A key added to one and not the other would be refused by the role or silently unknown.
    with open(SPEC) as f:
        spec = yaml.safe_load(f)
    options = spec["argument_specs"]["main"]["options"]["conntrack_tune_settings"]["options"]
    assert sorted(options) == sorted(kernel.WRITABLE_KEYS)
