# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/pg.py:pg_argument_spec()
    DOCUMENTATION = r'''
options:
  db_host:
    description:
      - PostgreSQL host name, IP address, or the directory of its Unix socket.
      - When omitted, libpq's default applies (E(PGHOST) or the local socket).
    type: str
  db_port:
    description:
      - PostgreSQL port.
    type: int
    default: 5432
  db_name:
    description:
      - Database to connect to.
    type: str
  db_user:
    description:
      - Role to connect as.
    type: str
  db_password:
    description:
      - Password of O(db_user). Never shown in output; passed to libpq as a connection
        keyword (or E(PGPASSWORD) for client tools), never inside a URL or on a command line.
    type: str
  db_sslmode:
    description:
      - libpq C(sslmode).
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  db_sslrootcert:
    description:
      - CA certificate file used to verify the server when O(db_sslmode) is V(verify-ca) or V(verify-full).
    type: path
  db_connect_timeout:
    description:
      - Seconds to wait for the connection (libpq C(connect_timeout); values below 2 count as 2).
    type: int
    default: 5
  db_statement_timeout:
    description:
      - Seconds any statement may run before the server cancels it; V(0) means no limit.
    type: int
    default: 30
requirements:
  - psycopg >= 3.1 (C(psycopg[binary])) on the host running the module
'''
