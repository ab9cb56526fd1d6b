# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups in S3 (boto3): one client with timeouts, and the layout that mirrors a backup directory.

Layout under a prefix (``prod/`` below), the same names as on disk (docs/ARCHITECTURE.md)::

    prod/backup_pre_v1.0_20261128_020000.dump
    prod/backup_pre_v1.0_20261128_020000.dump.manifest.json
    prod/backup_pre_v1.0_20261128_030000.dir/toc.dat          # a directory backup: one object per file
    prod/backup_pre_v1.0_20261128_030000.dir/3456.dat.gz
    prod/backup_pre_v1.0_20261128_030000.dir.manifest.json

Errors become S3Error with a one-line message (never a credential).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.hunter.ops.plugins.module_utils import backup

from importlib.util import find_spec

# boto3 is imported only when a client is made: it costs ~0.1 s per module run that never uses S3.
HAS_BOTO3 = find_spec("boto3") is not None  # missing: reported through missing_required_lib


class S3Error(RuntimeError):
    """An S3 call failed; str() is one line, without credentials."""


def _cause(err):
    """The S3 call's own error behind boto3's transfer wrapper (RetriesExceededError hides a timeout)."""
    last = getattr(err, "last_exception", None)
    return last if isinstance(last, Exception) else err


def _error(err, what):
    err = _cause(err)
    response = getattr(err, "response", None)  # a botocore ClientError carries the parsed answer
    info = response.get("Error") if isinstance(response, dict) else None
    if info:
        return S3Error(("%s: %s %s" % (what, info.get("Code", "error"), info.get("Message", ""))).strip())
    return S3Error("%s: %s" % (what, " ".join(str(err).split())))


# Answered errors botocore's standard retry mode retries (botocore/retries/standard.py, the same
# codes in 1.29 and 1.44; InternalError is S3's); any other answer is left to botocore, which
# raises its own error class for it or follows a redirect.
_RETRIED_STATUS = (429, 500, 502, 503, 504)
_RETRIED_CODES = frozenset((
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "Throttling",
    "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
    "EC2ThrottledException", "InternalError"))


class _WaitBound(object):
    """Keeps a hung endpoint from costing much more than `timeout` per call.

    botocore retries on top of its timeouts: with a 30 s timeout, an endpoint that accepts and never
    answers cost 90 s per call (three attempts), 194 s for a copy and its listing. Here a request that
    timed out (connect or read) is never retried, and a retry of an answered error (throttling, 5xx, a
    reset connection) starts only within `timeout` seconds of the call's start; so a call waits about
    `timeout` on an endpoint that does not answer, and at worst about twice that (an error answered
    just before `timeout`, then a retry that times out), plus up to 1 s per attempt of a PUT waiting
    for "100 Continue". The operation a call belongs to stops at its first failed call.

    The loop is ended by raising what the call would have raised, never by returning False: newer
    botocore reads False as "stop", Debian 12's botocore 1.29 sleeps False seconds and retries,
    forever (the first handler's answer wins).
    """

    def __init__(self, timeout, client):
        import threading
        self.timeout = float(timeout)
        self.client = client              # for botocore's error classes (client.exceptions)
        self._local = threading.local()   # multipart uploads share one client across threads

    def call_started(self, **kwargs):
        self._local.began = time.monotonic()

    def needs_retry(self, caught_exception=None, response=None, operation=None, **kwargs):
        from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
        if isinstance(caught_exception, (ConnectTimeoutError, ReadTimeoutError)):
            raise caught_exception
        began = getattr(self._local, "began", None)
        if began is None or time.monotonic() - began < self.timeout:
            return None    # no opinion: botocore's own retry policy decides (bounded attempts)
        if caught_exception is not None:
            raise caught_exception
        code = _retried_error_code(response)
        if code is not None:
            raise self._client_error(code, response[1], getattr(operation, "name", "S3"))
        return None        # a success, a redirect or an error botocore does not retry: botocore handles it

    def _client_error(self, code, parsed, operation_name):
        """The error botocore would raise for this answer: its modeled class (e.g. NoSuchKey) or ClientError."""
        from botocore.exceptions import ClientError
        try:
            cls = self.client.exceptions.from_code(code)
        except Exception:  # pylint: disable=broad-except
            cls = ClientError
        return cls(parsed, operation_name)


def _retried_error_code(response):
    """The error code of an answer botocore's standard mode retries, or None for any other answer."""
    if not response:
        return None
    http, parsed = response
    info = parsed.get("Error") if isinstance(parsed, dict) else None
    code = (info or {}).get("Code") or ""
    if getattr(http, "status_code", 200) in _RETRIED_STATUS or code in _RETRIED_CODES:
        return code or str(getattr(http, "status_code", ""))
    return None


def client(endpoint_url=None, region=None, access_key=None, secret_key=None, session_token=None, timeout=30):
    """A boto3 S3 client whose calls each wait at most about `timeout` seconds on an endpoint that does
    not answer (connect and read timeouts, no retry after a timeout; see _WaitBound)."""
    if not HAS_BOTO3:
        raise S3Error("boto3 is required for S3 backups")
    import boto3
    import botocore.config
    config = botocore.config.Config(connect_timeout=timeout, read_timeout=timeout,
                                    retries={"total_max_attempts": 3, "mode": "standard"},
                                    s3={"addressing_style": "path"} if endpoint_url else None)
    try:
        s3 = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            aws_session_token=session_token or None, config=config)
    except Exception as err:  # pylint: disable=broad-except
        raise _error(err, "S3 client")
    bound = _WaitBound(timeout, s3)
    s3.meta.events.register_first("before-call.s3", bound.call_started)
    s3.meta.events.register_first("needs-retry.s3", bound.needs_retry)
    return s3


def timed_out(err):
    """True when an S3 call failed because the endpoint did not answer in time (nothing to retry or clean up)."""
    try:
        from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
    except ImportError:
        return False
    return isinstance(_cause(err), (ConnectTimeoutError, ReadTimeoutError))


def normalize_prefix(prefix):
    """'' or a prefix ending in '/' ('prod' -> 'prod/')."""
    prefix = str(prefix or "").lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def list_objects(s3, bucket, prefix):
    """{key: size} of every object under prefix."""
    found = {}
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                found[obj["Key"]] = obj["Size"]
    except Exception as err:  # pylint: disable=broad-except
        raise _error(err, "listing s3://%s/%s" % (bucket, prefix))
    return found


def backups_in(objects, prefix):
    """Backups stored under prefix, newest name first: [dict(name, key, size_bytes, manifest_key, files)].

    size_bytes is the total of a directory backup's objects; files maps relpath -> key for one.
    Only names of the backup contract count; a backup without its manifest object is listed with
    manifest_key None (it is not valid).
    """
    found = {}
    for key, size in objects.items():
        rest = key[len(prefix):]
        head = rest.split("/", 1)[0]
        name = backup.backup_path_of(head) if head.endswith(backup.MANIFEST_SUFFIX) else head
        parsed = backup.parse_backup_name(name)
        if parsed is None:
            continue
        item = found.setdefault(name, dict(name=name, key=prefix + name, size_bytes=0, manifest_key=None,
                                           files={}, stamp=parsed["stamp"]))
        if head.endswith(backup.MANIFEST_SUFFIX):
            if "/" not in rest:
                item["manifest_key"] = key
        elif "/" in rest:
            item["files"][rest.split("/", 1)[1]] = key
            item["size_bytes"] += size
        else:
            item["size_bytes"] += size
    return sorted(found.values(), key=lambda b: (b["stamp"], b["name"]), reverse=True)


def read_manifest(s3, bucket, key):
    """A manifest object parsed (backup.parse_manifest); raises S3Error or backup.ManifestError."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as err:  # pylint: disable=broad-except
        raise _error(err, "reading s3://%s/%s" % (bucket, key))
    return backup.parse_manifest(body.decode("utf-8", "replace"), source="s3://%s/%s" % (bucket, key))


def download(s3, bucket, item, dest_dir):
    """Download one backup (a file, or every object of a directory backup) into dest_dir; its path."""
    from boto3.s3.transfer import TransferConfig
    # s3transfer retries a failed download 5 times on top of botocore: once is enough (see _WaitBound)
    config = TransferConfig(num_download_attempts=1)
    path = os.path.join(dest_dir, item["name"])
    try:
        if item["files"]:
            for rel, key in sorted(item["files"].items()):
                target = os.path.join(path, rel)
                if not os.path.abspath(target).startswith(os.path.abspath(path) + os.sep):
                    raise S3Error("refusing object %s: it would land outside %s" % (key, path))
                if not os.path.isdir(os.path.dirname(target)):
                    os.makedirs(os.path.dirname(target))
                s3.download_file(bucket, key, target, Config=config)
        else:
            s3.download_file(bucket, item["key"], path, Config=config)
    except S3Error:
        raise
    except Exception as err:  # pylint: disable=broad-except
        raise _error(err, "downloading s3://%s/%s" % (bucket, item["key"]))
    return path
