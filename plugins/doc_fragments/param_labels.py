# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # plugins/module_utils/validate.py:InputProblems
    DOCUMENTATION = r'''
options:
  param_labels:
    description:
      - >-
        How the caller names each option, for messages about bad input, for example
        C({"db_port": "hunter_app_db_port (health_check_db_port)"}): a bad value is reported under the
        variable the operator set, and fails only the items that use it. Roles fill it; options not
        listed keep their own name.
    type: dict
    default: {}
'''
