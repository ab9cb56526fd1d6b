# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text-format metrics of the nightly jobs, for node_exporter's textfile collector.

One file per job (docs/METRICS.md): the backup (``hunter_ops_backup_<host>_<database>.prom`` on the
host that dumps), the restore drill (``hunter_ops_restore_drill_<host>_<database>.prom`` on the host
that runs it) and the preflight (``hunter_ops_preflight_<environment>.prom`` on the controller).
Each file is replaced atomically (a temporary file in the same directory, fsync, rename), so the
collector never reads half a file.

Series of the last *successful* run (``*_last_success_*``) survive a failed run: the writer reads its
previous file back and keeps them, so "the newest backup is 30 h old" stays true after a night whose
backup failed. The backup file also keeps the series of other labels (a pre-release backup does not
hide the nightly one). Written by hand (the managed hosts need no library); the tests parse every file
with ``prometheus_client``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import re
import tempfile
import time

from ansible_collections.hunter.ops.plugins.module_utils import backup as bk

STATUSES = ("pass", "fail", "warn", "skip")
# Where node_exporter's textfile collector reads by default: Debian/Ubuntu's prometheus-node-exporter
# package, then the prometheus.prometheus.node_exporter role.
AUTO_DIRS = ("/var/lib/prometheus/node-exporter", "/var/lib/node_exporter/textfile_collector",
             "/var/lib/node_exporter")
JOBS = ("backup", "restore_drill", "preflight")

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_SAMPLE_RE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?$")
_LABEL_RE = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


class Family(object):
    """One metric: name, help, and samples [(labels dict, value)]."""

    def __init__(self, name, help_text, samples=None):
        if not _NAME_RE.match(name):
            raise ValueError("invalid metric name %r" % (name,))
        self.name = name
        self.help = help_text
        self.samples = list(samples or [])

    def add(self, labels, value):
        if value is None:
            return self
        self.samples.append((dict(labels), float(value)))
        return self


# -- text format ---------------------------------------------------------------------------------------------

def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def _number(value):
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def render(families):
    """The exposition text of families (gauges), in order, each with its HELP and TYPE."""
    lines = []
    for family in families:
        if not family.samples:
            continue
        lines.append("# HELP %s %s" % (family.name, family.help.replace("\\", "\\\\").replace("\n", " ")))
        lines.append("# TYPE %s gauge" % family.name)
        for labels, value in family.samples:
            body = ",".join('%s="%s"' % (k, _escape(v)) for k, v in sorted(labels.items()))
            lines.append("%s%s %s" % (family.name, "{%s}" % body if body else "", _number(value)))
    return "\n".join(lines) + "\n" if lines else ""


def parse(text):
    """{name: {"help": text, "samples": [(labels, value)]}} of a file this module wrote (junk lines skipped)."""
    found = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("# HELP "):
            parts = line[len("# HELP "):].split(" ", 1)
            found.setdefault(parts[0], {"help": "", "samples": []})["help"] = parts[1] if len(parts) > 1 else ""
            continue
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE_RE.match(line)
        if not match:
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        labels = dict((m.group("key"), _unescape(m.group("value")))
                      for m in _LABEL_RE.finditer(match.group("labels") or ""))
        found.setdefault(match.group("name"), {"help": "", "samples": []})["samples"].append((labels, value))
    return found


def read_previous(path):
    try:
        with open(path) as handle:
            return parse(handle.read())
    except (IOError, OSError):
        return {}


def write_atomic(path, text):
    """Replace path with text: a temporary file in the same directory (not *.prom, so the collector never
    reads it), fsync, mode 0644 (node_exporter reads it; metrics hold no secret), rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    bk.fsync_dir(directory)
    return path


def resolve_directory(setting):
    """(directory or None, why): '' is off; 'auto' is the first textfile-collector directory that exists."""
    setting = str(setting if setting is not None else "").strip()
    if not setting:
        return None, "metrics are off (no metrics directory configured)"
    if setting == "auto":
        for candidate in AUTO_DIRS:
            if os.path.isdir(candidate):
                return candidate, "node_exporter's textfile collector directory %s" % candidate
        return None, "no textfile collector directory found (%s); set hunter_ops_metrics_dir" % ", ".join(AUTO_DIRS)
    return setting, "configured directory %s" % setting


def slug(value):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(value or "")) or "unknown"


def file_name(job, labels):
    if job == "preflight":
        return "hunter_ops_preflight_%s.prom" % slug(labels.get("environment"))
    return "hunter_ops_%s_%s_%s.prom" % (job, slug(labels.get("host")), slug(labels.get("database")))


# -- what each job exports ------------------------------------------------------------------------------------

def _status_families(prefix, what, checks, labels):
    family = Family(prefix + "_check_status",
                    "Status of each checklist item of the %s's last run (1 for the item's status, 0 for the others)."
                    % what)
    for check_id in sorted(checks or {}):
        item = checks[check_id] or {}
        current = item.get("status") if isinstance(item, dict) else None
        for status in STATUSES:
            family.add(dict(labels, check=check_id, status=status), 1 if current == status else 0)
    return family


def _status_of(checks, check_id):
    item = (checks or {}).get(check_id)
    return item.get("status") if isinstance(item, dict) else None


def backup_families(labels, data, now):
    """The backup job: this run (from its BACKUP-* items) and, when it wrote a verified backup, that backup.

    data: {"checks": {ID: item}, "backup": hunter_ops_backup ({path, host, manifest}) or None}."""
    checks = dict((k, v) for k, v in (data.get("checks") or {}).items() if k.startswith("BACKUP-"))
    backup = data.get("backup") or {}
    manifest = backup.get("manifest") or {}
    ok = all(_status_of(checks, i) == "pass" for i in ("BACKUP-CMD", "BACKUP-VALID")) and bool(manifest)
    location = _status_of(checks, "BACKUP-LOCATION")
    p = "hunter_ops_backup"
    families = [
        Family(p + "_last_run_timestamp_seconds", "When the last backup run ended (Unix time).").add(labels, now),
        Family(p + "_last_run_success", "1 when the last backup run wrote a verified backup (BACKUP-CMD and "
                                        "BACKUP-VALID pass), else 0.").add(labels, 1 if ok else 0),
        Family(p + "_last_run_offsite_verified", "1 when the last run's off-host copies were all verified by "
                                                 "checksum (BACKUP-LOCATION pass), else 0.")
        .add(labels, 1 if location == "pass" else 0),
        _status_families(p, "backup", checks, labels),
    ]
    if ok:
        finished = bk.parse_iso_utc(manifest.get("finished_at")) or now
        tables = manifest.get("tables") or {}
        families += [
            Family(p + "_last_success_timestamp_seconds", "When the newest verified backup finished (Unix time).")
            .add(labels, finished),
            Family(p + "_last_success_duration_seconds", "How long the newest verified backup took (dump and "
                                                         "verification).").add(labels, manifest.get("duration_s")),
            Family(p + "_last_success_size_bytes", "Size of the newest verified backup.")
            .add(labels, manifest.get("size_bytes")),
            Family(p + "_last_success_verified", "1 when the newest backup was verified (size, sha256, dump "
                                                 "structure) after it was written.")
            .add(labels, 1 if manifest.get("verified", True) else 0),
            Family(p + "_last_success_tables", "Tables counted in the newest verified backup's manifest.")
            .add(labels, len(tables)),
            Family(p + "_last_success_rows", "Rows counted (inside the dump's snapshot) in the newest verified "
                                             "backup.").add(labels, sum(v for v in tables.values()
                                                                        if isinstance(v, (int, float)))),
        ]
    return families, ok


def restore_drill_families(labels, data, now):
    """The restore drill: its result (RESTORE-DRYRUN, RESTORE-RTO) and, when it restored, the measurements.

    data: {"checks": {ID: item}, "drill": hunter_ops_restore_drill ({backup, rto, ...})}."""
    checks = dict((k, v) for k, v in (data.get("checks") or {}).items() if k.startswith("RESTORE-"))
    drill = data.get("drill") or {}
    rto = drill.get("rto") or {}
    backup = drill.get("backup") or {}
    ok = _status_of(checks, "RESTORE-DRYRUN") == "pass"
    p = "hunter_ops_restore_drill"
    families = [
        Family(p + "_last_run_timestamp_seconds", "When the last restore drill ended (Unix time).").add(labels, now),
        Family(p + "_last_run_success", "1 when the last drill restored the backup and it matched its manifest "
                                        "(RESTORE-DRYRUN pass), else 0.").add(labels, 1 if ok else 0),
        Family(p + "_rto_ok", "1 when the projected restore time is within the target (RESTORE-RTO pass), else 0.")
        .add(labels, 1 if _status_of(checks, "RESTORE-RTO") == "pass" else 0),
        _status_families(p, "restore drill", checks, labels),
    ]
    if ok:
        families.append(Family(p + "_last_success_timestamp_seconds", "When the last successful drill ended "
                                                                      "(Unix time).").add(labels, now))
    if rto:
        families += [
            Family(p + "_restore_seconds", "Restore time of the last drill (the restore alone).")
            .add(labels, rto.get("restore_s")),
            Family(p + "_end_to_end_seconds", "End-to-end time of the last drill (download, restore, verification, "
                                              "drop).").add(labels, rto.get("end_to_end_s")),
            Family(p + "_throughput_bytes_per_second", "Restored database bytes per second in the last drill.")
            .add(labels, rto.get("throughput_bytes_per_s")),
            Family(p + "_rto_projected_seconds", "Restore time projected for the production database size.")
            .add(labels, rto.get("projected_s")),
            Family(p + "_rto_end_to_end_projected_seconds", "End-to-end time projected for the production size.")
            .add(labels, rto.get("end_to_end_projected_s")),
            Family(p + "_rto_target_seconds", "The rollback plan's restore-time target.")
            .add(labels, rto.get("target_s")),
            Family(p + "_backup_size_bytes", "Size of the backup the last drill restored.")
            .add(labels, rto.get("backup_size_bytes")),
        ]
    parsed = bk.parse_backup_name(backup.get("name") or "") if isinstance(backup, dict) else None
    if parsed:
        families.append(Family(p + "_backup_timestamp_seconds", "When the backup the last drill tested was taken "
                                                                "(its name's timestamp, Unix time).")
                        .add(labels, parsed["created"]))
    return families, ok


def preflight_families(labels, data, now):
    """The preflight: verdict, counts and every item per host (the report module's result)."""
    verdict = data.get("verdict")
    go = verdict == "GO"
    rows = data.get("items") or []
    counts = data.get("counts") or {}
    p = "hunter_ops_preflight"
    per_item = Family(p + "_check_status", "Status of each checklist item per host in the last preflight (1 for the "
                                           "item's status, 0 for the others).")
    for row in rows:
        if not isinstance(row, dict) or not row.get("id"):
            continue
        for status in STATUSES:
            per_item.add(dict(labels, check=row["id"], host=row.get("host") or "", status=status),
                         1 if row.get("status") == status else 0)
    items = Family(p + "_items", "Items of the last preflight by status.")
    for status in STATUSES:
        items.add(dict(labels, status=status), counts.get(status, 0))
    families = [
        Family(p + "_last_run_timestamp_seconds", "When the last preflight ended (Unix time).").add(labels, now),
        Family(p + "_go", "1 when the last preflight's verdict was GO, else 0.").add(labels, 1 if go else 0),
        Family(p + "_blocking_items", "Required items that did not pass in the last preflight.")
        .add(labels, len(data.get("blocking") or [])),
        Family(p + "_report_written", "1 when the last preflight's report was written.")
        .add(labels, 1 if data.get("written") else 0),
        items,
        per_item,
    ]
    if go:
        families.append(Family(p + "_last_go_timestamp_seconds", "When a preflight last said GO (Unix time).")
                        .add(labels, now))
    return families, go


BUILDERS = {"backup": backup_families, "restore_drill": restore_drill_families, "preflight": preflight_families}
# The series kept from the previous file when this run did not produce them (a failed run).
CARRIED = {"backup": "hunter_ops_backup_last_success_", "restore_drill": "hunter_ops_restore_drill_last_success_",
           "preflight": "hunter_ops_preflight_last_go_"}


def merge_previous(job, families, previous, labels):
    """Keep from the previous file: the last-success series of this identity this run did not renew, and for
    the backup, every series of other labels (their last state)."""
    by_name = dict((f.name, f) for f in families)
    renewed = set((f.name, tuple(sorted(s[0].items()))) for f in families for s in f.samples)
    for name, previous_family in sorted(previous.items()):
        for sample_labels, value in previous_family["samples"]:
            key = (name, tuple(sorted(sample_labels.items())))
            if key in renewed:
                continue
            same_identity = all(sample_labels.get(k) == v for k, v in labels.items())
            keep = (same_identity and name.startswith(CARRIED[job])) or \
                (job == "backup" and not same_identity and
                 all(sample_labels.get(k) == v for k, v in labels.items() if k != "label"))
            if not keep:
                continue
            family = by_name.get(name)
            if family is None:
                family = by_name[name] = Family(name, previous_family["help"] or name.replace("_", " "))
                families.append(family)
            family.samples.append((sample_labels, value))
    return families


def build(job, labels, data, previous=None, now=None):
    """(families, success) of one job run, merged with what the previous file holds."""
    if job not in BUILDERS:
        raise ValueError("job must be one of %s, got %r" % (", ".join(JOBS), job))
    now = time.time() if now is None else now
    families, ok = BUILDERS[job](dict(labels), data or {}, now)
    return merge_previous(job, families, previous or {}, labels), ok
