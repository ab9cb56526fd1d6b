# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/app_env.py:source_argument_spec("HUNTER_SENTRY_DSN"):
    # where the application's Sentry DSN is read from. Types are permissive on purpose: the module
    # checks them (module_utils/sentry_inputs.py) and names a bad one as the operator set it.
    DOCUMENTATION = r'''
options:
  source:
    description:
      - Where the application's environment is read from, on the host the task runs on.
      - V(process) reads C(/proc/<pid>/environ) of the running application, found by O(pid), O(pidfile) or
        O(process_match). Reading another user's process needs root (privilege escalation with C(become)) or that user.
        The evidence names the process by pid and executable name, never by its arguments (they may hold secrets).
      - V(envfile) reads O(env_files) (C(.env) files or systemd C(EnvironmentFile=) files).
      - V(container) runs C(docker exec <container> env) or C(docker compose exec -T <service> env).
      - V(value) takes the DSN given in O(dsn) (from a vault).
      - One of V(process), V(envfile), V(container), V(value); anything else is reported as bad input.
    type: str
  variable:
    description:
      - The environment variable the application reads its DSN from.
    type: str
    default: HUNTER_SENTRY_DSN
  pid:
    description:
      - Process id of the application (O(source=process)), a whole number.
      - Mutually exclusive with O(pidfile) and O(process_match).
    type: raw
  pidfile:
    description:
      - File holding the application's process id (O(source=process)).
    type: path
  process_match:
    description:
      - Python regular expression searched in the command lines of running processes (O(source=process)).
        When several match (a master and its workers), the oldest is read.
      - Ansible's own processes are never matched.
    type: str
  env_files:
    description:
      - Environment files read in order, later ones overriding earlier ones, like systemd does
        (O(source=envfile)). A leading C(-) marks a file that may be missing, as in C(EnvironmentFile=-/path).
      - A list of paths (or one path).
    type: raw
    aliases: [env_file]
  container:
    description:
      - Container name or id for C(docker exec) (O(source=container)).
      - Mutually exclusive with O(compose_service).
    type: str
  compose_service:
    description:
      - Compose service for C(docker compose exec -T) (O(source=container)).
    type: str
  compose_project_dir:
    description:
      - Compose project directory (C(--project-directory)); also the working directory of the command.
    type: path
  compose_files:
    description:
      - Compose files (C(-f)), in order; a list of paths.
    type: raw
    default: []
  docker_command:
    description:
      - The container CLI for O(container), as an argument list (for example V([podman])).
    type: raw
    default: [docker]
  compose_command:
    description:
      - The compose CLI for O(compose_service), as an argument list (for example V([docker-compose])).
    type: raw
    default: [docker, compose]
  command_timeout:
    description:
      - Seconds the container command may take (a number). M(hunter.ops.sentry_event) also gives its script in the
        application's runtime this long.
    type: raw
    default: 30.0
  dsn:
    description:
      - The DSN itself (O(source=value)), normally from a vault. Never logged.
    type: str
'''
