"""Child process of test_s3_library_versions.py: S3 calls through hunter.ops' module_utils on whichever
boto3 this Python imports (the test puts a library set first on PYTHONPATH). Arguments as JSON on stdin,
the outcome as JSON on stdout: {"botocore": version, "ok": bool, "error": message, "elapsed": s, ...}."""
import json
import os
import sys
import time

import botocore

from ansible_collections.hunter.ops.plugins.module_utils import backup, backup_s3, s3

MB = 1024 * 1024


def roundtrip(client, bucket, workdir):
    """A multipart and a single-part upload (each verified by module_utils), the listing, both downloads."""
    sent = {}
    for name, size in (("big.bin", 6 * MB), ("small.bin", 1000)):
        path = os.path.join(workdir, name)
        with open(path, "wb") as handle:
            handle.write(os.urandom(size))
        evidence = backup_s3.put_file(client, bucket, "p/" + name, path, multipart_threshold=5 * MB, chunk=5 * MB)
        sent[name] = dict(sha256=backup.sha256_file(path), parts=evidence["parts"], verified_by=evidence["verified_by"])
    listed = s3.list_objects(client, bucket, "p/")
    received = {}
    os.makedirs(os.path.join(workdir, "down"))
    for name in sent:
        got = s3.download(client, bucket, dict(name=name, key="p/" + name, files={}),
                          os.path.join(workdir, "down"))
        received[name] = backup.sha256_file(got)
    return dict(sent=sent, listed=sorted(listed), received=received)


def main():
    args = json.load(sys.stdin)
    out = {"botocore": botocore.__version__}
    client = s3.client(endpoint_url=args["endpoint"], region="us-east-1", access_key=args.get("access_key", "AKIATEST"),
                       secret_key=args.get("secret_key", "not-a-secret"), timeout=args["timeout"])
    bucket, workdir = args.get("bucket", "b"), args.get("workdir")
    calls = {
        "list": lambda: len(s3.list_objects(client, bucket, "p/")),
        "put": lambda: backup_s3.put_file(client, bucket, "p/x", args["path"])["sha256"],
        "download": lambda: s3.download(client, bucket, dict(name="x", key="p/x", files={}), workdir),
        "roundtrip": lambda: roundtrip(client, bucket, workdir),
    }
    began = time.monotonic()
    try:
        out.update(ok=True, result=calls[args["call"]]())
    except s3.S3Error as err:
        out.update(ok=False, error=str(err))
    out["elapsed"] = round(time.monotonic() - began, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
