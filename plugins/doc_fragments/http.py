# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/http.py:http_argument_spec()
    DOCUMENTATION = r'''
options:
  timeout:
    description:
      - Seconds to wait for the connection and for each read of every HTTP request.
    type: float
    default: 5.0
  validate_certs:
    description:
      - Verify the server's TLS certificate. Turn off only for a test environment.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to trust instead of the system ones.
    type: path
  client_cert:
    description:
      - PEM client certificate for mutual TLS.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert), if not inside it.
    type: path
  headers:
    description:
      - Extra request headers. Values of credential headers (V(Authorization), V(X-API-Key), cookies) are
        redacted from the evidence, but the task's invocation shows them; put credentials in O(secret_headers).
    type: dict
    default: {}
  secret_headers:
    description:
      - Request headers carrying credentials (for example V(Authorization) or V(X-API-Key)), merged over
        O(headers). Their values are C(no_log) and redacted wherever they could appear.
    type: dict
    default: {}
'''
