# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/redis_client.py:redis_argument_spec()
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Redis URL, as applications configure it
        (C(redis://[[user]:password@]host[:port][/db]), C(rediss://...) for TLS,
        C(unix:///path/to/redis.sock?db=N)).
      - It may hold a password, so it is treated as a secret and never shown; evidence shows the
        server, database and whether a password was used.
      - Options given explicitly (O(host), O(port), O(username), O(password), O(db), O(tls)) override
        what the URL says.
      - Mutually exclusive with O(host) and O(unix_socket).
    type: str
  host:
    description:
      - Redis host name or IP address. Defaults to C(127.0.0.1) when neither O(url) nor O(unix_socket) is given.
    type: str
  port:
    description:
      - Redis TCP port (default C(6379), or the URL's).
      - Checked by the module (a number between 1 and 65535); a bad value fails only the items that connect.
    type: raw
  unix_socket:
    description:
      - Path of the Redis unix socket, instead of O(host).
    type: path
  username:
    description:
      - ACL user name (Redis 6+). Without it the C(default) user is used.
    type: str
  password:
    description:
      - Password of the ACL user (or C(requirepass)). Never shown in output.
    type: str
  db:
    description:
      - Database number (default C(0), or the URL's).
      - Checked by the module (a whole number); a bad value fails only the items that connect.
    type: raw
  tls:
    description:
      - Connect with TLS (implied by a C(rediss://) URL).
      - Checked by the module (a boolean); a bad value fails only the items that connect.
    type: raw
  tls_validate_certs:
    description:
      - Verify the server certificate and host name. Turn off only for a test environment.
      - Checked by the module (a boolean); a bad value fails only the items that connect.
    type: raw
    default: true
  tls_ca_path:
    description:
      - PEM file with the CA certificates to trust for the server certificate.
    type: path
  tls_client_cert:
    description:
      - PEM client certificate, for servers requiring mutual TLS.
    type: path
  tls_client_key:
    description:
      - PEM private key of O(tls_client_cert), if not inside it.
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the TCP (or unix socket) connection.
      - Checked by the module (a number of seconds greater than 0); a bad value fails only the items that connect.
    type: raw
    default: 3.0
  command_timeout:
    description:
      - Seconds to wait for the answer to each command (also bounds a server that accepts
        connections and never answers).
      - redis-py's own retries are off, so a dead server costs one timeout, not several.
      - Checked by the module (a number of seconds greater than 0); a bad value fails only the items that connect.
    type: raw
    default: 3.0
'''
