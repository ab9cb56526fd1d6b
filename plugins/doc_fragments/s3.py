# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options of plugins/module_utils/backup_s3.py:s3_argument_spec()
    DOCUMENTATION = r'''
options:
  s3_bucket:
    description:
      - Bucket holding the backups.
    type: str
  s3_prefix:
    description:
      - Key prefix of the backups in O(s3_bucket) (a C(/) is added when missing).
    type: str
    default: ''
  s3_endpoint_url:
    description:
      - Endpoint of an S3-compatible store (MinIO, Ceph, moto); default AWS. Path-style addressing is used with it.
    type: str
  s3_region:
    description:
      - Region of the bucket.
    type: str
  s3_access_key:
    description:
      - Access key id; default the boto3 credential chain (environment, instance profile).
    type: str
  s3_secret_key:
    description:
      - Secret access key. Never shown in output.
    type: str
  s3_session_token:
    description:
      - Session token of temporary credentials. Never shown in output.
    type: str
  s3_timeout:
    description:
      - Seconds S3 may keep a request waiting (connecting, or for each read). A request that timed out is not
        retried, so an endpoint that accepts and never answers costs about this long per operation (the copy,
        the listing, the download), not once per attempt; an answered error (throttling, 5xx, a reset
        connection) is retried at most twice, and only within this many seconds of the request's start.
    type: int
    default: 30
requirements:
  - boto3 on the host running the module
'''
