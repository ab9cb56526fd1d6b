# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs hunter.ops.dependency_diag and records its items (plugins/plugin_utils/recording.py).

A run with ``needed: false`` (ready and startup passed: most runs) connects to nothing and reads no
file on the host: it validates the settings and reports HEALTH-DIAG as skip, or fail naming the bad
values. The controller does that with the module's own argument spec and code
(module_utils/diag_settings.py), so such a run costs the host no module run; a run that sets a
path the host must have (redis_ca_path, db_sslrootcert), or arguments the spec rejects, goes to
the host as before.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from types import SimpleNamespace

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.hunter.ops.plugins.module_utils import diag_settings, secret
from ansible_collections.hunter.ops.plugins.plugin_utils.recording import CheckModuleAction


class ActionModule(CheckModuleAction):

    def outcome_on_controller(self, args):
        validated = ArgumentSpecValidator(diag_settings.argument_spec()).validate(args)
        if validated.error_messages:
            return None  # the module reports them, as it always did
        params = dict(validated.validated_parameters)
        if params["needed"] or any(params.get(name) for name in diag_settings.HOST_PATH_OPTIONS):
            return None
        # secret.register fills a module's no_log_values: a stand-in registry here
        secrets = secret.register(SimpleNamespace(no_log_values=set()), *list(validated._no_log_values))
        problems = diag_settings.check_settings(params)[0]
        return diag_settings.not_needed_result(params, problems, secrets)
