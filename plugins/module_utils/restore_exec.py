# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore command of a backup, run as one checked pipeline (module_utils/pg_dump.Pipeline).

plain SQL: ``psql -X -q -v ON_ERROR_STOP=1 --single-transaction`` (compressed SQL streamed from
its decompressor); custom / directory: ``pg_restore -j N --no-owner --no-acl --exit-on-error``.
The target database is named by ``--dbname=dbname=<name>``, a connection string built from
its parts, so a name can never be expanded into another connection (``-d 'dbname=hunter'``
would restore into ``hunter``). Credentials reach the tools through the environment only; the
stages die with the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import time

from ansible_collections.hunter.ops.plugins.module_utils import backup
from ansible_collections.hunter.ops.plugins.module_utils.pg import conninfo
from ansible_collections.hunter.ops.plugins.module_utils.pg_dump import ClientTools, DumpError, Pipeline


class RestoreError(RuntimeError):
    """A restore that failed; str() carries the tool's own message."""


def restore_stages(path, manifest, dbname, jobs=1, bin_dir=None):
    """argv of each pipeline stage (the decompressor first, when there is one); raises RestoreError."""
    tool_name = backup.restore_tool(manifest)
    try:
        tool = ClientTools(bin_dir=bin_dir).tool_path(tool_name)
    except DumpError as err:
        raise RestoreError(str(err))
    decompress = backup.decompress_command(manifest)
    stages = []
    target = "--dbname=%s" % conninfo(dbname=dbname)
    source = path
    if decompress:
        if not shutil.which(decompress[0]):
            raise RestoreError("%s not found on PATH: needed to read %s" % (decompress[0], os.path.basename(path)))
        stages.append(decompress + [path])
        source = "-"
    if tool_name == "psql":
        stages.append([tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", target, "-f", source])
    else:
        argv = [tool, "--no-owner", "--no-acl", "--exit-on-error", target]
        if source != "-":
            # -j needs a seekable archive: a streamed (externally compressed) one restores serially
            argv += (["-j", str(int(jobs))] if int(jobs) > 1 else []) + [source]
        stages.append(argv)
    return stages


def run_restore(stages, env, timeout, on_start=None, secrets=()):
    """Run the stages to the end; the duration in seconds. Raises RestoreError with the tool's message.

    on_start(pipeline) hands the running pipeline to the caller, so an interrupted module can kill it.
    """
    pipeline = Pipeline(stages, env, secrets=secrets, die_with_parent=True)
    began = time.monotonic()
    try:
        pipeline.start()
        if on_start:
            on_start(pipeline)
        pipeline.wait(timeout)
        return time.monotonic() - began
    except DumpError as err:
        raise RestoreError(str(err))
    finally:
        pipeline.close()
