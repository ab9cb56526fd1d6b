#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: sentry_dsn
short_description: Check the Sentry DSN the application really runs with (SENTRY-DSN), without showing it
version_added: 0.1.0
description:
  - Reads the application's environment from where it really lives (the running process, an environment file,
    a container, or a value from a vault; see O(source)) and checks the variable holding the Sentry DSN
    (default V(HUNTER_SENTRY_DSN)). Returns the item V(SENTRY-DSN) under RV(checks).
  - The value is reported as C(SET (hidden)) and never appears in the result, the evidence or any message.
  - The format is validated part by part - scheme V(https) (V(http) only with O(allow_http)), a public key, a host,
    a valid port, a numeric project id - and each problem is named.
  - When the variable is missing but a similar one is set (V(SENTRY_DSN) while the application reads
    V(HUNTER_SENTRY_DSN), a typo, another case), the item is V(warn) and names the similar variables.
  - Reading the source can fail (no such process, file or container); that is the item's V(fail), not a module
    failure. Bad parameters fail the item too, every one of them named (as O(param_labels) says the operator
    set it), never the module.
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.sentry_dsn_source
  - hunter.ops.param_labels
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Only reads.
options:
  allow_http:
    description:
      - Accept a plain V(http) DSN (a test or internal Sentry). Production DSNs should be V(https). A boolean.
    type: raw
    default: false
notes:
  - O(source=container) runs the container CLI with an argument list (no shell); its output stays in the module.
'''

EXAMPLES = r'''
- name: DSN of the running service (found by its command line)
  hunter.ops.sentry_dsn:
    source: process
    process_match: "uvicorn .*app:app"
  become: true

- name: DSN from the systemd unit's environment file
  hunter.ops.sentry_dsn:
    source: envfile
    env_files: [/etc/hunter/hunter.env, -/etc/hunter/override.env]

- name: DSN inside the compose service
  hunter.ops.sentry_dsn:
    source: container
    compose_service: api
    compose_project_dir: /srv/hunter
'''

RETURN = r'''
checks:
  description: The item V(SENTRY-DSN) with C(status), C(message) and C(evidence).
  returned: always
  type: dict
  sample:
    SENTRY-DSN:
      status: pass
      message: HUNTER_SENTRY_DSN is SET (hidden) and valid (https, host sentry.example.com, project 42)
      evidence:
        variable: HUNTER_SENTRY_DSN
        value: SET (hidden)
        source: the environment of process 4242 (process matching 'uvicorn')
        dsn: {scheme: https, host: sentry.example.com, port: null, project_id: "42", public_key: SET (hidden)}
        duration_ms: 1.2
dsn_set:
  description: Whether the variable is set (to anything) in the source.
  returned: always
  type: bool
  sample: true
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils import app_env, secret
from ansible_collections.hunter.ops.plugins.module_utils import sentry_inputs as inputs
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_data
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, check_item
from ansible_collections.hunter.ops.plugins.module_utils.sentry import DEFAULT_VARIABLE, assess
from ansible_collections.hunter.ops.plugins.module_utils.validate import InputProblems


def argument_spec():
    spec = app_env.source_argument_spec(DEFAULT_VARIABLE)
    spec.update(allow_http=dict(type="raw", default=False), param_labels=dict(type="dict", default={}))
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    secrets = secret.protect(module)
    problems = InputProblems(module.params.get("param_labels"))
    params = dict(module.params)
    params.update(inputs.source_settings(module.params, problems))
    params["allow_http"] = problems.check("allow_http", inputs.flag, module.params.get("allow_http"))
    if problems.errors:
        item = check_item(FAIL, "not checked, bad input: %s" % problems.message(),
                          {"variable": module.params.get("variable"), "bad_input": sorted(problems.errors)})
        module.exit_json(changed=False, checks={"SENTRY-DSN": redact_data(item, secrets)}, dsn_set=False)

    started = time.monotonic()
    try:
        snapshot = app_env.load(params, secrets)
    except app_env.EnvSourceError as err:
        item = check_item(FAIL, "%s not checked, cannot read the application's environment: %s" % (params["variable"], err),
                          {"variable": params["variable"], "source": params["source"], "error": str(err)},
                          duration_ms=(time.monotonic() - started) * 1000.0)
        module.exit_json(changed=False, checks={"SENTRY-DSN": item}, dsn_set=False)

    # The DSN and whatever else the environment holds that is secret, in every shape.
    secret.register_environment(module, snapshot.variables, names=[params["variable"]])
    result = assess(snapshot.variables, params["variable"], snapshot.description, params["allow_http"])
    evidence = dict(snapshot.evidence)
    evidence.update(result.evidence)
    evidence = redact_data(evidence, secrets)
    item = check_item(result.status, result.message, evidence, duration_ms=(time.monotonic() - started) * 1000.0)
    module.exit_json(changed=False, checks={"SENTRY-DSN": item}, dsn_set=params["variable"] in snapshot.variables)


if __name__ == "__main__":
    main()
