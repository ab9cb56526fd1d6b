# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup files and their manifests: naming, checksums, manifest read/write/verify, listing,
retention selection and the per-database lock.

Shared by pg_backup (writes), backup_s3_copy / backup_retention / backup_verify, and
pg_restore_dryrun (reads). The manifest contract is in docs/ARCHITECTURE.md.

Reader API for restore::

    from ansible_collections.hunter.ops.plugins.module_utils import backup
    found = backup.newest_valid_backup("/var/backups/hunter", database="hunter")
    # -> None or dict(path=..., name=..., manifest={...}, ...)
    manifest = backup.load_manifest(path)          # raises backup.ManifestError
    problems = backup.verify_backup(path, manifest)  # [] when the file matches its manifest
    backup.restore_tool(manifest)                  # "psql" (plain SQL) or "pg_restore"
    backup.decompress_command(manifest)            # None or argv, e.g. ["zstd", "-dc", "--"]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import errno
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import tempfile
import time
from datetime import datetime

# 2 adds the schema inventory ("schema"); version 1 manifests are still read (without it).
MANIFEST_VERSION = 2
READABLE_MANIFEST_VERSIONS = (1, 2)
MANIFEST_SUFFIX = ".manifest.json"

# format -> what the file is and how it is read back
FORMATS = ("plain", "plain-gzip", "custom", "directory")
METHODS = ("none", "gzip", "zstd", "lz4")

# (format, whole-stream compression method) -> extension. "plain-gzip" is gzip'd SQL;
# "plain" is SQL, whole-stream compressed by zstd or lz4 when its method says so.
# "custom" is pg_dump -Fc; with zstd/lz4 done by an external compressor (pg_dump < 16)
# the whole archive is wrapped (".dump.zst"), otherwise compression is inside the archive.
EXTENSIONS = ("sql", "sql.gz", "sql.zst", "sql.lz4", "dump", "dump.zst", "dump.lz4", "dir")

_NAME_RE = re.compile(
    r"^backup_(?P<label>[A-Za-z0-9][A-Za-z0-9._-]*)_(?P<stamp>\d{8}_\d{6})\."
    r"(?P<ext>sql|sql\.gz|sql\.zst|sql\.lz4|dump|dump\.zst|dump\.lz4|dir)$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STAMP_FORMAT = "%Y%m%d_%H%M%S"

_DECOMPRESSORS = {"gzip": ["gzip", "-dc", "--"], "zstd": ["zstd", "-dcq", "--"], "lz4": ["lz4", "-dcq", "--"]}
_CHUNK = 1024 * 1024


class ManifestError(ValueError):
    """A manifest that is missing, unreadable or not of this contract; str() says which and why."""


class LockTimeout(RuntimeError):
    """Another run holds the backup lock for this database."""


# -- names ------------------------------------------------------------------------------

def valid_label(label):
    """True for labels usable in a file name: letters, digits, '.', '_', '-' (e.g. pre_v1.0)."""
    return bool(_LABEL_RE.match(str(label or "")))


def extension(fmt, method="none", external=False):
    """File extension for a format and compression method (see EXTENSIONS)."""
    if fmt == "plain":
        return {"none": "sql", "gzip": "sql.gz", "zstd": "sql.zst", "lz4": "sql.lz4"}[method]
    if fmt == "plain-gzip":
        return "sql.gz"
    if fmt == "custom":
        if external and method in ("zstd", "lz4"):
            return "dump." + {"zstd": "zst", "lz4": "lz4"}[method]
        return "dump"
    if fmt == "directory":
        return "dir"
    raise ValueError("unknown backup format %r" % (fmt,))


def backup_name(label, fmt, method="none", when=None, external=False):
    """backup_<label>_<YYYYmmdd_HHMMSS>.<ext>; `when` is a local datetime (default now)."""
    if not valid_label(label):
        raise ValueError("label %r: use letters, digits, '.', '_' and '-' only" % (label,))
    when = when or datetime.now()
    return "backup_%s_%s.%s" % (label, when.strftime(STAMP_FORMAT), extension(fmt, method, external))


def parse_backup_name(name):
    """dict(label, stamp, ext, created) for a backup name, or None when it is not one.

    ``created`` is the epoch of the name's local timestamp.
    """
    match = _NAME_RE.match(os.path.basename(str(name).rstrip("/")))
    if not match:
        return None
    try:
        created = time.mktime(time.strptime(match.group("stamp"), STAMP_FORMAT))
    except (ValueError, OverflowError):
        return None
    return dict(label=match.group("label"), stamp=match.group("stamp"), ext=match.group("ext"),
                created=created)


def manifest_path(backup_path):
    """Path of the manifest beside a backup."""
    return str(backup_path).rstrip("/") + MANIFEST_SUFFIX


def backup_path_of(path):
    """The backup path for a backup or manifest path."""
    path = str(path).rstrip("/")
    return path[:-len(MANIFEST_SUFFIX)] if path.endswith(MANIFEST_SUFFIX) else path


# -- checksums and sizes ---------------------------------------------------------------------

def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def directory_files(path):
    """Relative paths of the regular files under a directory backup, sorted."""
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = os.path.join(root, name)
            if os.path.isfile(full):
                found.append(os.path.relpath(full, path))
    return sorted(found)


def sha256_directory(path):
    """sha256 of the sorted lines '<relpath> <sha256 of the file>\\n' (the manifest contract)."""
    digest = hashlib.sha256()
    for rel in directory_files(path):
        digest.update(("%s %s\n" % (rel, sha256_file(os.path.join(path, rel)))).encode("utf-8"))
    return digest.hexdigest()


def backup_sha256(path):
    return sha256_directory(path) if os.path.isdir(path) else sha256_file(path)


def backup_size(path):
    """Bytes of the file, or of every file of a directory backup."""
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, rel)) for rel in directory_files(path))
    return os.path.getsize(path)


# -- durability -------------------------------------------------------------------------------

def fsync_path(path):
    """fsync a file, or every file of a directory and the directory itself."""
    if os.path.isdir(path):
        for rel in directory_files(path):
            fsync_path(os.path.join(path, rel))
        fsync_dir(path)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:  # some filesystems refuse fsync on directories
        if err.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def remove_path(path):
    """Remove a file or a directory tree; missing is fine."""
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                os.rmdir(os.path.join(root, name))
        os.rmdir(path)
    elif os.path.lexists(path):
        os.unlink(path)


# -- manifests ---------------------------------------------------------------------------------

def iso_utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_iso_utc(text):
    """Epoch of '2026-11-28T02:00:00Z' (as written by iso_utc), or None."""
    try:
        return float(calendar.timegm(time.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")))
    except (TypeError, ValueError):
        return None


_REQUIRED_KEYS = ("manifest_version", "backup", "database", "format", "compression", "size_bytes", "sha256",
                  "tables")


def write_manifest(backup_path, manifest):
    """Write <backup>.manifest.json atomically (temp file, fsync, rename), mode 0600. Returns its path."""
    path = manifest_path(backup_path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
    return path


def parse_manifest(text, source="manifest"):
    """A manifest dict from JSON text; raises ManifestError."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise ManifestError("%s: not valid JSON (%s)" % (source, err))
    if not isinstance(data, dict):
        raise ManifestError("%s: expected a JSON object" % source)
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise ManifestError("%s: missing keys %s" % (source, ", ".join(missing)))
    if data.get("manifest_version") not in READABLE_MANIFEST_VERSIONS:
        raise ManifestError("%s: manifest_version %r is not supported (expected one of %s)"
                            % (source, data.get("manifest_version"),
                               ", ".join(str(v) for v in READABLE_MANIFEST_VERSIONS)))
    if data.get("format") not in FORMATS:
        raise ManifestError("%s: unknown format %r" % (source, data.get("format")))
    if not isinstance(data.get("tables"), dict):
        raise ManifestError("%s: 'tables' must be an object of table -> row count" % source)
    if data["manifest_version"] >= 2 and not isinstance(data.get("schema"), dict):
        raise ManifestError("%s: 'schema' must be an object of kind -> objects (manifest_version 2)" % source)
    return data


def load_manifest(path):
    """The manifest of a backup; `path` is the backup or its .manifest.json. Raises ManifestError."""
    mpath = manifest_path(backup_path_of(path))
    try:
        with open(mpath) as handle:
            text = handle.read()
    except (IOError, OSError) as err:
        raise ManifestError("%s: cannot read manifest (%s)" % (mpath, err.strerror or err))
    return parse_manifest(text, source=mpath)


def verify_backup(path, manifest=None, checksum=True):
    """Problems (list of one-line strings) with a backup against its manifest; [] means valid.

    Checks: exists, non-empty, the manifest's name/size match, and (checksum=True) the sha256.
    `manifest` defaults to load_manifest(path).
    """
    path = backup_path_of(path)
    if not os.path.exists(path):
        return ["%s does not exist" % path]
    if manifest is None:
        try:
            manifest = load_manifest(path)
        except ManifestError as err:
            return [str(err)]
    problems = []
    if manifest.get("backup") != os.path.basename(path):
        problems.append("manifest names %r, not %r" % (manifest.get("backup"), os.path.basename(path)))
    size = backup_size(path)
    if size <= 0:
        problems.append("backup is empty")
    if size != manifest.get("size_bytes"):
        problems.append("size is %d bytes, manifest says %r" % (size, manifest.get("size_bytes")))
    if checksum and not problems:
        actual = backup_sha256(path)
        if actual != manifest.get("sha256"):
            problems.append("sha256 is %s, manifest says %s" % (actual, manifest.get("sha256")))
    return problems


def restore_tool(manifest):
    """'psql' for SQL dumps (plain, plain-gzip), 'pg_restore' for custom and directory archives."""
    return "psql" if manifest.get("format") in ("plain", "plain-gzip") else "pg_restore"


def decompress_command(manifest):
    """argv (append the file) that writes the decompressed stream to stdout, or None when
    the file is read as it is (pg_restore reads its own internal compression)."""
    comp = manifest.get("compression") or {}
    method = comp.get("method") or "none"
    fmt = manifest.get("format")
    if fmt == "plain-gzip":
        method = "gzip"
    if fmt in ("plain", "plain-gzip") and method != "none":
        return list(_DECOMPRESSORS[method])
    if fmt == "custom" and comp.get("external") and method in ("zstd", "lz4"):
        return list(_DECOMPRESSORS[method])
    return None


# -- listing ------------------------------------------------------------------------------------

def list_backups(directory, database=None, label=None):
    """Backups in a directory, newest first: dicts with path, name, label, stamp, ext, created
    (epoch: manifest started_at, else the name's timestamp), manifest (dict or None) and
    manifest_error (str or None). With `database`, backups whose manifest names another
    database are left out (backups without a readable manifest stay in: they are invalid)."""
    found = []
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        parsed = parse_backup_name(name)
        if parsed is None:
            continue
        if label is not None and parsed["label"] != label:
            continue
        path = os.path.join(directory, name)
        manifest, error = None, None
        try:
            manifest = load_manifest(path)
        except ManifestError as err:
            error = str(err)
        if database is not None and manifest is not None and manifest.get("database") != database:
            continue
        created = parsed["created"]
        if manifest is not None and parse_iso_utc(manifest.get("started_at")) is not None:
            created = parse_iso_utc(manifest.get("started_at"))
        found.append(dict(parsed, path=path, name=name, manifest=manifest, manifest_error=error,
                          created=created))
    found.sort(key=lambda b: (b["created"], b["name"]), reverse=True)
    return found


def newest_valid_backup(directory, database=None, label=None, checksum=True, skipped=None):
    """The newest backup (list_backups item plus 'problems': []) that matches its manifest, or None.

    Pass a list as `skipped` to receive the newer backups passed over, as dict(name, problem).
    """
    for item in list_backups(directory, database=database, label=label):
        problems = [item["manifest_error"]] if item["manifest"] is None else \
            verify_backup(item["path"], item["manifest"], checksum=checksum)
        if not problems:
            item["problems"] = []
            return item
        if skipped is not None:
            skipped.append(dict(name=item["name"], problem="; ".join(problems)))
    return None


# -- retention ------------------------------------------------------------------------------------

def count_limit(label, keep_count=0, count_by_label=None):
    """The newest-N limit of a label: the first pattern of count_by_label ([(fnmatch pattern, N)], or a
    dict in its order) that matches it, else keep_count. 0 = no count limit."""
    pairs = count_by_label.items() if isinstance(count_by_label, dict) else (count_by_label or ())
    for pattern, limit in pairs:
        if fnmatch.fnmatchcase(str(label or ""), str(pattern)):
            return int(limit)
    return int(keep_count or 0)


def retention_plan(backups, now, keep_days=7, keep_count=0, protect=None, count_by_label=None):
    """Split backups (each with 'name', 'created' and optionally 'label') into (keep, delete).

    A backup is deleted when it is older than keep_days, or beyond the newest N of its label
    (count_limit: count_by_label, else keep_count); both rules are limits, so repeated runs of one
    label keep a bounded number whatever their age. Backups named in `protect` (callers pass the
    newest valid backup) are always kept. A limit of 0 is off; with no limit at all nothing is
    deleted. Each item gets 'reason'.
    """
    protect = set(protect or ())
    if not keep_days and not keep_count and not any(int(n or 0) for n in dict(count_by_label or {}).values()):
        return [dict(b, reason="no retention rule set") for b in backups], []
    ordered = sorted(backups, key=lambda b: (b["created"], b["name"]), reverse=True)
    rank = {}
    keep, delete = [], []
    for item in ordered:
        label = item.get("label")
        if label is None:
            parsed = parse_backup_name(item["name"])
            label = parsed["label"] if parsed else None
        index = rank[label] = rank.get(label, -1) + 1
        limit = count_limit(label, keep_count, count_by_label)
        age_days = (now - item["created"]) / 86400.0
        why = []
        if keep_days and age_days >= keep_days:
            why.append("%.1f days old (keep %s)" % (age_days, keep_days))
        if limit and index >= limit:
            why.append("beyond the %d newest of label %s" % (limit, label))
        if item["name"] in protect:
            keep.append(dict(item, reason="newest valid backup (never deleted)"))
        elif why:
            delete.append(dict(item, reason=", ".join(why)))
        else:
            kept = []
            if keep_days:
                kept.append("younger than %s days" % keep_days)
            if limit:
                kept.append("among the %d newest of label %s" % (limit, label))
            keep.append(dict(item, reason=" and ".join(kept) or "no limit for label %s" % label))
    return keep, delete


# -- lock ---------------------------------------------------------------------------------------------

def lock_path(directory, database):
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(database))
    return os.path.join(directory, ".pg_backup_%s.lock" % safe)


class BackupLock(object):
    """One backup per database at a time: an flock on <dir>/.pg_backup_<db>.lock, waited for
    at most `timeout` seconds. Released when the process ends, even on SIGKILL."""

    def __init__(self, path, timeout=60.0, interval=0.2):
        self.path = path
        self.timeout = float(timeout)
        self.interval = interval
        self._fd = None
        self.waited_s = 0.0

    def _holder(self):
        try:
            with open(self.path) as handle:
                return handle.read().strip() or "unknown"
        except (IOError, OSError):
            return "unknown"

    def acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        began = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() - began >= self.timeout:
                holder = self._holder()
                os.close(fd)
                raise LockTimeout("another backup of this database is running (lock %s held by %s); "
                                  "waited %.0f s" % (self.path, holder, self.timeout))
            time.sleep(self.interval)
        self.waited_s = time.monotonic() - began
        os.ftruncate(fd, 0)
        os.write(fd, ("pid %d since %s" % (os.getpid(), iso_utc(time.time()))).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
