# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Documentation: role_check_ids.yml beside this file. Items are recorded by the check modules' action
# plugins and hunter.ops.record_checks (plugins/plugin_utils/recording.py), not by filters.

from ansible.errors import AnsibleFilterError

from ansible_collections.hunter.ops.plugins.module_utils.checklist import ids_of_role


def role_check_ids(role, groups=None):
    """The checklist IDs a role owns, from the catalogue (module_utils/checklist.py), so playbooks
    and roles never keep their own copy of the list."""
    if groups is not None and not isinstance(groups, (list, tuple)):
        raise AnsibleFilterError("role_check_ids: groups must be a list of group names, e.g. group_names")
    ids = ids_of_role(str(role))
    if not ids:
        raise AnsibleFilterError("role_check_ids: no checklist ID belongs to role %r" % (role,))
    return ids_of_role(str(role), groups)


class FilterModule(object):
    def filters(self):
        return {"role_check_ids": role_check_ids}
