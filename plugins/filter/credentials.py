# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Documentation: url_credential.yml and secret_values.yml beside this file.

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.hunter.ops.plugins.plugin_utils.secret_vars import secret_values_of


def url_credential(value):
    """A user name or password percent-encoded for the userinfo of a URL.

    Every character outside RFC 3986's unreserved set is encoded, '/' included (Jinja's
    `urlencode` leaves it as is, so a base64 password broke the URL it was put in).
    """
    if value is None or isinstance(value, (bool, Mapping, list, tuple)):
        raise AnsibleFilterError("url_credential expects a string (a user name or password), got %s"
                                 % type(value).__name__)
    return quote(str(value), safe="")


def secret_values(hostvars, hosts, names=(), prefixes=("vault_",)):
    """The values of the inventory's secret variables on the given hosts, for the report to scrub.

    A variable counts when it is named in `names` (every value in it), or starts with one of
    `prefixes` or has a name that says it holds a secret (`*_password`, `*_token`, `*_api_key`,
    `*_secret_key`, `*_dsn`, ...): then its strings of 6 characters or more, never a registered
    task result, and never a variable whose name starts with `_` (a role's private variables and
    registered results). A variable that cannot be templated on a host (it refers to something
    undefined there) is skipped: the report must be written whatever the inventory holds.
    """
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("secret_values: hosts must be a list of inventory host names")
    found = set()
    for host in hosts:
        try:
            host_vars = hostvars[host]
            candidates = [str(k) for k in host_vars.keys()]
        except Exception:  # pylint: disable=broad-except
            continue
        found.update(secret_values_of(candidates, host_vars.__getitem__, names, prefixes))
    return sorted(found)


class FilterModule(object):
    def filters(self):
        return {"url_credential": url_credential, "secret_values": secret_values}
