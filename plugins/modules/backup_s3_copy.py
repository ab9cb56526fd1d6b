#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_s3_copy
short_description: Copy a backup and its manifest to S3-compatible object storage, verified by checksum
version_added: 0.1.0
description:
  - Uploads a backup written by M(hunter.ops.pg_backup) (a file, or every file of a directory backup) and then its
    manifest under O(s3_prefix), with server-side encryption and storage class as configured.
  - Each object carries its sha256 (C(x-amz-meta-sha256)) and is uploaded with S3's SHA256 checksum (per part for
    multipart uploads). After the transfer C(HeadObject) must return the checksum computed locally; a store that keeps
    no checksums is verified by reading the object back. The backup's sha256 is then recomputed from the verified
    objects and compared with the manifest.
  - The local backup is verified against its manifest before anything is sent.
  - An action (C(changed=true) when it uploads); check mode reports what it would upload.
  - Its result C(location) feeds M(hunter.ops.backup_location) (BACKUP-LOCATION).
author:
  - hunter.ops contributors (@hunter-ops)
extends_documentation_fragment:
  - hunter.ops.s3
options:
  backup:
    description:
      - Path of the backup (file or C(.dir) directory) or of its manifest.
    type: path
    required: true
  s3_sse:
    description:
      - Server-side encryption, V(none) to request none.
    type: str
    default: AES256
    choices: [none, AES256, aws:kms]
  s3_sse_kms_key_id:
    description:
      - KMS key for O(s3_sse=aws:kms); default the bucket's key.
    type: str
  s3_storage_class:
    description:
      - Storage class of the objects, e.g. V(STANDARD), V(STANDARD_IA), V(GLACIER_IR).
    type: str
    default: STANDARD
  s3_multipart_threshold_mb:
    description:
      - Files of at least this many MiB go up in parts.
    type: int
    default: 64
  s3_multipart_chunk_mb:
    description:
      - Part size in MiB (at least 5; raised when a file would need more than 10000 parts).
    type: int
    default: 16
  s3_max_concurrency:
    description:
      - Parts uploaded at the same time.
    type: int
    default: 4
'''

EXAMPLES = r'''
- name: Copy the new backup to object storage
  hunter.ops.backup_s3_copy:
    backup: "{{ _backup.backup }}"
    s3_endpoint_url: https://s3.eu-central-1.amazonaws.com
    s3_region: eu-central-1
    s3_bucket: hunter-backups
    s3_prefix: prod/
    s3_access_key: "{{ vault_s3_access_key }}"
    s3_secret_key: "{{ vault_s3_secret_key }}"
  register: _s3_copy
'''

RETURN = r'''
location:
  description:
    - The copy, for M(hunter.ops.backup_location) - C(kind) (s3), C(location) (s3://bucket/prefix/name),
      C(verified), C(message) and C(evidence) (objects, bytes, sha256, how verified, seconds).
  returned: always
  type: dict
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk
from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.backup_s3 import (
    MB, s3_argument_spec, s3_client_from_params, upload_backup,
)
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.s3 import HAS_BOTO3, S3Error
from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError


def main():
    spec = s3_argument_spec()
    spec.update(
        backup=dict(type="path", required=True),
        s3_sse=dict(type="str", default="AES256", choices=["none", "AES256", "aws:kms"]),
        s3_sse_kms_key_id=dict(type="str"),
        s3_storage_class=dict(type="str", default="STANDARD"),
        s3_multipart_threshold_mb=dict(type="int", default=64),
        s3_multipart_chunk_mb=dict(type="int", default=16),
        s3_max_concurrency=dict(type="int", default=4),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    secrets = secret.protect(module)
    where = "s3://%s/%s" % (p.get("s3_bucket") or "?", (p.get("s3_prefix") or "").lstrip("/"))
    location = dict(kind="s3", location=where, verified=False, message="", evidence={})

    def fail(msg):
        msg = redact_text(" ".join(str(msg).split()), secrets)
        location.update(message=msg)
        location["evidence"]["error"] = msg
        module.fail_json(msg=msg, location=location, changed=False)

    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), location=dict(location, message="boto3 missing"))
    try:
        for name in ("s3_multipart_threshold_mb", "s3_multipart_chunk_mb", "s3_max_concurrency"):
            if p[name] < 1:
                raise ParameterError(name, "must be at least 1, got %d" % p[name])
        if p["s3_multipart_chunk_mb"] < 5:
            raise ParameterError("s3_multipart_chunk_mb", "S3 parts are at least 5 MiB, got %d"
                                 % p["s3_multipart_chunk_mb"])
        path = bk.backup_path_of(p["backup"])
        if not os.path.exists(path):
            raise ParameterError("backup", "%s does not exist" % path)
        s3, bucket, prefix = s3_client_from_params(p)
    except ParameterError as err:
        fail(str(err))
    except S3Error as err:
        fail(str(err))
    name = os.path.basename(path)
    location["location"] = "s3://%s/%s%s" % (bucket, prefix, name)
    extra = {"StorageClass": p["s3_storage_class"]}
    if p["s3_sse"] != "none":
        extra["ServerSideEncryption"] = p["s3_sse"]
        if p["s3_sse"] == "aws:kms" and p["s3_sse_kms_key_id"]:
            extra["SSEKMSKeyId"] = p["s3_sse_kms_key_id"]
    location["evidence"].update(endpoint=p["s3_endpoint_url"] or "AWS", bucket=bucket, prefix=prefix,
                                sse=p["s3_sse"], storage_class=p["s3_storage_class"])
    if module.check_mode:
        location.update(message="check mode: would upload %s to %s" % (name, location["location"]))
        module.exit_json(changed=True, location=location, msg=location["message"])
    began = time.monotonic()
    try:
        copied = upload_backup(s3, bucket, prefix, path, extra=extra,
                               multipart_threshold=p["s3_multipart_threshold_mb"] * MB,
                               chunk=p["s3_multipart_chunk_mb"] * MB, concurrency=p["s3_max_concurrency"])
    except (S3Error, bk.ManifestError, OSError) as err:
        fail("copy of %s to %s failed: %s" % (name, location["location"], err))
    seconds = round(time.monotonic() - began, 3)
    location["evidence"].update(copied, seconds=seconds)
    location.update(verified=True, message="%s copied to %s (%d objects, %d bytes) and verified by %s in %.1f s"
                    % (name, copied["location"], copied["objects"], copied["size_bytes"],
                       " and ".join(copied["verified_by"]), seconds))
    module.exit_json(changed=True, location=location, msg=location["message"])


if __name__ == "__main__":
    main()
