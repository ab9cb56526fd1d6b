# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs hunter.ops.app_environment and records its item (plugins/plugin_utils/recording.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hunter.ops.plugins.plugin_utils.recording import CheckModuleAction


class ActionModule(CheckModuleAction):
    pass
