#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: app_environment
short_description: The environment the application is configured with, from its own configuration (HEALTH-ENV)
version_added: 0.1.0
description:
  - For a service that does not show its environment over HTTP (CHECKLIST 6.1 C(HEALTH-ENV), source
    C(config)). Reads the first of O(variables) where the application reads it - its process environment
    (O(pidfile)), then its environment files (O(env_files)), a process variable winning over a file - and
    compares it exactly with O(expected_environment). Returns the item C(HEALTH-ENV) under RV(checks).
  - Never passes on the inventory's own value - when no source is given, or none of the variables is set there,
    the item fails saying where it looked.
  - Run it on the application host (the files and the process are there). Read-only.
author:
  - hunter.ops contributors (@hunter-ops)
options:
  expected_environment:
    description:
      - The environment the inventory expects (for example V(production)). Empty reports C(HEALTH-ENV) as V(skip).
    type: str
    default: ""
  variables:
    description:
      - Variables holding the environment name in the application's configuration, tried in order.
    type: list
    elements: str
    default: [HUNTER_ENVIRONMENT]
  pidfile:
    description:
      - Pidfile of the running application; its process environment is read first (needs the application's user
        or root).
    type: path
  env_files:
    description:
      - The application's environment files (C(KEY=value) lines), later files winning; a path starting with C(-)
        may be missing.
    type: list
    elements: path
    default: []
notes:
  - Supports check mode (it only reads).
seealso:
  - module: hunter.ops.health_probe
'''

EXAMPLES = r'''
- name: HEALTH-ENV from the environment file the service loads
  hunter.ops.app_environment:
    expected_environment: production
    env_files: [/srv/hunter/.env]
    variables: [APP_ENV]
'''

RETURN = r'''
checks:
  description: The item C(HEALTH-ENV) (C(status), C(message), C(evidence)).
  returned: always
  type: dict
  sample:
    HEALTH-ENV:
      status: fail
      message: "HUNTER_ENVIRONMENT in environment file /srv/hunter/.env is 'staging', expected 'production'"
      evidence: {source: envfile, files: [/srv/hunter/.env], variable: HUNTER_ENVIRONMENT, found: staging,
                 expected: production}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hunter.ops.plugins.module_utils.app_settings import AppSettings, SettingUnknown
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, check_item


def environment_item(settings, variables, expected):
    """HEALTH-ENV from the application's configuration (pure but for reading the sources)."""
    evidence = {"expected": expected, "variables": list(variables)}
    if not expected:
        return check_item(SKIP, "no expected environment configured (expected_environment is empty)", evidence)
    if not variables:
        return check_item(FAIL, "no variable to read the environment from (variables is empty)", evidence)
    if not settings.configured:
        return check_item(FAIL, "the environment was not read: no source of the application's configuration is "
                                "given (pidfile, env_files)", evidence)
    try:
        found = settings.lookup(variables)
    except SettingUnknown as err:
        return check_item(FAIL, "the environment was not read: %s" % err, evidence)
    evidence.update(found.evidence)
    evidence["found"] = found.value
    if found.value == expected:
        return check_item(PASS, "%s is %r as expected" % (found.origin, found.value), evidence)
    return check_item(FAIL, "%s is %r, expected %r" % (found.origin, found.value, expected), evidence)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            expected_environment=dict(type="str", default=""),
            variables=dict(type="list", elements="str", default=["HUNTER_ENVIRONMENT"]),
            pidfile=dict(type="path"),
            env_files=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    settings = AppSettings(params.get("pidfile"), params.get("env_files"))
    item = environment_item(settings, params["variables"], (params.get("expected_environment") or "").strip())
    module.exit_json(changed=False, checks={"HEALTH-ENV": item})


if __name__ == "__main__":
    main()
