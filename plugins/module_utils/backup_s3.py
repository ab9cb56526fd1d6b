# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Uploading backups to S3 and proving each object arrived intact; the S3 side of retention.

The layout is the one of module_utils/s3.py (the object names mirror the backup directory;
a directory backup is one object per file; the manifest goes last, so a backup without its
manifest object is unfinished). Every object carries its sha256 as metadata
(``x-amz-meta-sha256``) and is uploaded with S3's SHA256 checksum: the server checks each
part against the checksum we send, and after the upload ``HeadObject`` must return the
checksum we computed locally (a composite ``<b64>-<parts>`` for multipart uploads). A store
that keeps no checksums is verified by reading the object back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.hunter.ops.plugins.module_utils import backup
from ansible_collections.hunter.ops.plugins.module_utils.s3 import S3Error, _error, backups_in, list_objects, timed_out

MB = 1024 * 1024
MIN_PART = 5 * MB  # S3's smallest part (except the last)
MAX_PARTS = 10000


def b64(raw):
    return base64.b64encode(raw).decode("ascii")


def file_digests(path, part_size):
    """(hex sha256 of the file, [raw sha256 of each part_size slice])."""
    whole = hashlib.sha256()
    parts = []
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(part_size)
            if not chunk:
                break
            whole.update(chunk)
            parts.append(hashlib.sha256(chunk).digest())
    return whole.hexdigest(), parts


def expected_checksum(whole_hex, part_digests, multipart):
    """What S3 reports as ChecksumSHA256: the object's sha256 (base64), or for a multipart upload
    the sha256 of the concatenated part digests with '-<parts>'."""
    if not multipart:
        return b64(bytes(bytearray.fromhex(whole_hex)))
    return "%s-%d" % (b64(hashlib.sha256(b"".join(part_digests)).digest()), len(part_digests))


def part_size_for(size, chunk):
    """The part size: at least 5 MiB, large enough to stay within 10000 parts."""
    part = max(int(chunk), MIN_PART)
    while size > part * MAX_PARTS:
        part *= 2
    return part


def _put_multipart(s3, bucket, key, path, size, part, parts, extra, concurrency):
    try:
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **extra)
    except Exception as err:  # pylint: disable=broad-except
        raise _error(err, "starting the upload of s3://%s/%s" % (bucket, key))
    upload_id = upload["UploadId"]

    def send(index):
        with open(path, "rb") as handle:
            handle.seek(index * part)
            data = handle.read(part)
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=index + 1, Body=data,
                                ChecksumAlgorithm="SHA256", ChecksumSHA256=b64(parts[index]))
        return dict(PartNumber=index + 1, ETag=answer["ETag"], ChecksumSHA256=b64(parts[index]))

    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = [pool.submit(send, index) for index in range(len(parts))]
            try:
                done = [future.result() for future in futures]
            except BaseException:
                for future in futures:   # parts not started yet would each wait on a hung endpoint too
                    future.cancel()
                raise
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                     MultipartUpload={"Parts": sorted(done, key=lambda p: p["PartNumber"])})
    except Exception as err:  # pylint: disable=broad-except
        if not timed_out(err):   # an endpoint that did not answer would not answer the abort either
            try:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:  # pylint: disable=broad-except
                pass  # the lifecycle rule for incomplete uploads is the last resort
        raise _error(err, "uploading s3://%s/%s" % (bucket, key))


def verify_object(s3, bucket, key, size, whole_hex, checksum):
    """How the object was proven intact ('checksum' or 'read back'); raises S3Error when it is not."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except Exception as err:  # pylint: disable=broad-except
        raise _error(err, "checking s3://%s/%s" % (bucket, key))
    if head.get("ContentLength") != size:
        raise S3Error("s3://%s/%s has %s bytes, the local file %d" % (bucket, key, head.get("ContentLength"), size))
    meta = (head.get("Metadata") or {}).get("sha256")
    if meta != whole_hex:
        raise S3Error("s3://%s/%s carries sha256 %s, expected %s" % (bucket, key, meta, whole_hex))
    remote = head.get("ChecksumSHA256")
    if remote:
        # some stores omit the '-<parts>' suffix of a composite checksum
        if remote != checksum and remote != checksum.split("-")[0]:
            raise S3Error("s3://%s/%s: S3 computed checksum %s, expected %s" % (bucket, key, remote, checksum))
        return "checksum"
    digest = hashlib.sha256()
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for chunk in iter(lambda: body.read(MB), b""):
            digest.update(chunk)
    except Exception as err:  # pylint: disable=broad-except
        raise _error(err, "reading back s3://%s/%s" % (bucket, key))
    if digest.hexdigest() != whole_hex:
        raise S3Error("s3://%s/%s read back with sha256 %s, expected %s" % (bucket, key, digest.hexdigest(), whole_hex))
    return "read back"


def put_file(s3, bucket, key, path, extra=None, multipart_threshold=64 * MB, chunk=16 * MB, concurrency=4):
    """Upload one file with its sha256 and verify it; returns the object's evidence."""
    size = os.path.getsize(path)
    multipart = size >= max(multipart_threshold, MIN_PART + 1)
    part = part_size_for(size, chunk) if multipart else max(size, 1)
    whole_hex, parts = file_digests(path, part)
    extra = dict(extra or {})
    extra["Metadata"] = dict(extra.get("Metadata") or {}, sha256=whole_hex)
    checksum = expected_checksum(whole_hex, parts, multipart)
    began = time.monotonic()
    if multipart:
        _put_multipart(s3, bucket, key, path, size, part, parts, extra, concurrency)
    else:
        try:
            with open(path, "rb") as handle:
                s3.put_object(Bucket=bucket, Key=key, Body=handle, ContentLength=size,
                              ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum, **extra)
        except Exception as err:  # pylint: disable=broad-except
            raise _error(err, "uploading s3://%s/%s" % (bucket, key))
    verified_by = verify_object(s3, bucket, key, size, whole_hex, checksum)
    return dict(key=key, size_bytes=size, sha256=whole_hex, parts=len(parts) if multipart else 1,
                verified_by=verified_by, seconds=round(time.monotonic() - began, 3))


def upload_backup(s3, bucket, prefix, path, extra=None, multipart_threshold=64 * MB, chunk=16 * MB, concurrency=4):
    """Upload a verified local backup and then its manifest; returns dict(location, objects, ...).

    The directory digest is recomputed from the uploaded objects' verified sha256s and must equal
    the manifest's sha256, so the copy as a whole is checked, not only each object."""
    path = backup.backup_path_of(path)
    manifest = backup.load_manifest(path)
    problems = backup.verify_backup(path, manifest)
    if problems:
        raise S3Error("not uploading %s: %s" % (path, "; ".join(problems)))
    name = os.path.basename(path)
    objects = []
    if os.path.isdir(path):
        files = [(rel, os.path.join(path, rel)) for rel in backup.directory_files(path)]
        for rel, full in files:
            objects.append(put_file(s3, bucket, "%s%s/%s" % (prefix, name, rel), full, extra, multipart_threshold,
                                    chunk, concurrency))
        lines = "".join("%s %s\n" % (pair[0], obj["sha256"]) for pair, obj in zip(files, objects))
        combined = hashlib.sha256(lines.encode("utf-8")).hexdigest()
    else:
        objects.append(put_file(s3, bucket, prefix + name, path, extra, multipart_threshold, chunk, concurrency))
        combined = objects[0]["sha256"]
    if combined != manifest["sha256"]:
        raise S3Error("uploaded %s hashes to %s, the manifest says %s" % (name, combined, manifest["sha256"]))
    manifest_obj = put_file(s3, bucket, prefix + name + backup.MANIFEST_SUFFIX, backup.manifest_path(path), extra,
                            multipart_threshold, chunk, concurrency)
    return dict(location="s3://%s/%s%s" % (bucket, prefix, name), name=name, sha256=combined,
                size_bytes=sum(o["size_bytes"] for o in objects), objects=len(objects) + 1,
                verified_by=sorted(set(o["verified_by"] for o in objects + [manifest_obj])),
                multipart_objects=sum(1 for o in objects if o["parts"] > 1),
                manifest_key=manifest_obj["key"])


# -- retention in a bucket prefix ------------------------------------------------------------------------

def stored_backups(s3, bucket, prefix, database=None):
    """Backups under prefix (s3.backups_in) with 'created' and 'manifest' (or 'manifest_error'), newest first.
    With `database`, backups whose manifest names another database are left out."""
    from ansible_collections.hunter.ops.plugins.module_utils.s3 import read_manifest
    items = []
    for item in backups_in(list_objects(s3, bucket, prefix), prefix):
        item = dict(item)
        item["created"] = backup.parse_backup_name(item["name"])["created"]
        item["manifest"], item["manifest_error"] = None, None
        if item["manifest_key"]:
            try:
                item["manifest"] = read_manifest(s3, bucket, item["manifest_key"])
            except (S3Error, backup.ManifestError) as err:
                item["manifest_error"] = str(err)
        else:
            item["manifest_error"] = "no manifest object (unfinished upload)"
        manifest = item["manifest"]
        if database is not None and manifest is not None and manifest.get("database") != database:
            continue
        if manifest is not None and backup.parse_iso_utc(manifest.get("started_at")) is not None:
            item["created"] = backup.parse_iso_utc(manifest["started_at"])
        items.append(item)
    items.sort(key=lambda b: (b["created"], b["name"]), reverse=True)
    return items


def stored_backup_problems(s3, bucket, item):
    """[] when a stored backup matches its manifest by the sha256 each object carries."""
    manifest = item.get("manifest")
    if manifest is None:
        return [item.get("manifest_error") or "no manifest"]
    if item["size_bytes"] != manifest.get("size_bytes"):
        return ["%d bytes stored, manifest says %s" % (item["size_bytes"], manifest.get("size_bytes"))]

    def sha_of(key):
        try:
            return (s3.head_object(Bucket=bucket, Key=key).get("Metadata") or {}).get("sha256")
        except Exception as err:  # pylint: disable=broad-except
            raise _error(err, "checking s3://%s/%s" % (bucket, key))

    if item["files"]:
        lines = "".join("%s %s\n" % (rel, sha_of(key)) for rel, key in sorted(item["files"].items()))
        actual = hashlib.sha256(lines.encode("utf-8")).hexdigest()
    else:
        actual = sha_of(item["key"])
    if actual != manifest.get("sha256"):
        return ["stored sha256 %s, manifest says %s" % (actual, manifest.get("sha256"))]
    return []


def delete_stored_backup(s3, bucket, item):
    """Delete every object of a stored backup (its files, then its manifest)."""
    keys = sorted(item["files"].values()) if item["files"] else [item["key"]]
    if item.get("manifest_key"):
        keys.append(item["manifest_key"])
    for start in range(0, len(keys), 1000):
        batch = keys[start:start + 1000]
        try:
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        except Exception as err:  # pylint: disable=broad-except
            raise _error(err, "deleting %s" % item["name"])
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise S3Error("deleting %s: %s %s" % (first.get("Key"), first.get("Code"), first.get("Message")))
    return len(keys)


# -- options shared by the S3 modules ---------------------------------------------------------------------

def s3_argument_spec():
    """Options documented by the doc fragment hunter.ops.s3 (same names as pg_restore_dryrun's)."""
    return dict(
        s3_bucket=dict(type="str"),
        s3_prefix=dict(type="str", default=""),
        s3_endpoint_url=dict(type="str"),
        s3_region=dict(type="str"),
        s3_access_key=dict(type="str", no_log=True),
        s3_secret_key=dict(type="str", no_log=True),
        s3_session_token=dict(type="str", no_log=True),
        s3_timeout=dict(type="int", default=30),
    )


def s3_client_from_params(params):
    """(client, bucket, prefix) from module params; raises ParameterError or S3Error."""
    from ansible_collections.hunter.ops.plugins.module_utils.s3 import client, normalize_prefix
    from ansible_collections.hunter.ops.plugins.module_utils.validate import ParameterError, url

    bucket = str(params.get("s3_bucket") or "").strip()
    if not bucket or "/" in bucket or any(c.isspace() for c in bucket):
        raise ParameterError("s3_bucket", "a bucket name is required (no '/', no spaces), got %r"
                             % (params.get("s3_bucket"),))
    endpoint = params.get("s3_endpoint_url")
    if endpoint:
        endpoint = url("s3_endpoint_url", endpoint)
    if params.get("s3_timeout") is None or params["s3_timeout"] < 1:
        raise ParameterError("s3_timeout", "must be at least 1 second, got %r" % (params.get("s3_timeout"),))
    s3 = client(endpoint_url=endpoint, region=params.get("s3_region"), access_key=params.get("s3_access_key"),
                secret_key=params.get("s3_secret_key"), session_token=params.get("s3_session_token"),
                timeout=params["s3_timeout"])
    return s3, bucket, normalize_prefix(params.get("s3_prefix"))


def s3_secrets(params):
    return [v for v in (params.get("s3_secret_key"), params.get("s3_session_token"), params.get("s3_access_key"))
            if v]
