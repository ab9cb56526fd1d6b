# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checklist contract (shared/CHECKLIST.md): every ID, in report order, with its owner."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

Check = namedtuple("Check", "id section title role group")

SECTIONS = {
    "6.1": "Health checks",
    "6.2": "Monitoring and Sentry",
    "6.3": "Database backup",
    "6.4": "Redis and API versioning",
}

CHECKS = (
    Check("HEALTH-LIVE", "6.1", "GET /healthz/live answers 200 (independent of DB/Redis)", "health_check", "app"),
    Check("HEALTH-READY", "6.1", "GET /healthz/ready answers 200 with DB and Redis OK", "health_check", "app"),
    Check("HEALTH-STARTUP", "6.1", "GET /healthz/startup answers 200 (polled until the startup timeout)",
          "health_check", "app"),
    Check("HEALTH-ENV", "6.1", "Probe body reports the expected environment", "health_check", "app"),
    Check("HEALTH-DB", "6.1", "Probe body reports the database ok", "health_check", "app"),
    Check("HEALTH-REDIS", "6.1", "Probe body reports Redis ok", "health_check", "app"),
    Check("HEALTH-DIAG", "6.1", "When ready/startup fail: SELECT 1 and PING from the app host name the dependency",
          "health_check", "app"),
    Check("SENTRY-DSN", "6.2", "The app's Sentry DSN is set (hidden) and well-formed", "sentry_probe", "app"),
    Check("SENTRY-EVENT", "6.2", "A test error is found through the Sentry server's API in time", "sentry_probe", "app"),
    Check("SENTRY-ENV", "6.2", "The event's environment is the expected one", "sentry_probe", "app"),
    Check("SENTRY-DETAIL", "6.2", "The event has a stack trace and the probe's context", "sentry_probe", "app"),
    Check("SENTRY-ALERTS", "6.2", "At least one alert rule exists", "sentry_probe", "app"),
    Check("BACKUP-CMD", "6.3", "A backup is taken with the documented method", "pg_backup", "db"),
    Check("BACKUP-VALID", "6.3", "The backup is a recognisable, non-empty dump with a recorded checksum",
          "pg_backup", "db"),
    Check("BACKUP-LOCATION", "6.3", "Local and off-host copies exist, verified by checksum", "pg_backup", "db"),
    Check("BACKUP-RETENTION", "6.3", "Old backups pruned by policy; the newest valid one kept", "pg_backup", "db"),
    Check("BACKUP-SCHEDULE", "6.3", "A scheduled backup job is installed and runnable", "pg_backup", "db"),
    Check("RESTORE-DRYRUN", "6.3", "The latest backup restores into a scratch database and matches the source",
          "pg_restore_dryrun", "db"),
    Check("RESTORE-RTO", "6.3", "Restore time within the rollback plan's target", "pg_restore_dryrun", "db"),
    Check("REDIS-PING", "6.4", "PING from the control side answers PONG", "redis_check", "cache"),
    Check("REDIS-APP-PING", "6.4", "PING with the app's own Redis settings from the app host", "redis_check", "app"),
    Check("REDIS-OPS", "6.4", "SET/GET/DEL on a unique probe key with a short TTL", "redis_check", "cache"),
    Check("REDIS-POOL", "6.4", "Concurrent commands through one connection pool all succeed", "redis_check", "cache"),
    Check("REDIS-HEALTH", "6.4", "The readiness body's Redis status is ok", "redis_check", "app"),
    Check("API-V1-LEADS", "6.4", "GET /api/v1/leads answers 200 (or 401 without a key)", "api_versioning", "app"),
    Check("API-V1-SCAN", "6.4", "GET /api/v1/scan answers 200 (or 400 for an invalid domain)", "api_versioning", "app"),
    Check("API-V1-SALES", "6.4", "GET /api/v1/leads/{domain}/sales-summary answers 200 (or 404)",
          "api_versioning", "app"),
    Check("API-LEGACY", "6.4", "Legacy endpoints match the documented decision", "api_versioning", "app"),
    Check("API-COMPAT", "6.4", "v1 and legacy responses have the same structure", "api_versioning", "app"),
)

CHECK_IDS = tuple(c.id for c in CHECKS)
BY_ID = dict((c.id, c) for c in CHECKS)

# CHECKLIST.md 6.5: GO only if each of these passes. HEALTH-READY "includes the dependency statuses":
# it passes only when HEALTH-DB and HEALTH-REDIS pass too (or are not checked by configuration), judged by
# the same expressions on the same body (plugins/modules/health_probe.py), so they count for GO through it.
DEFAULT_REQUIRED = (
    "HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP",
    "SENTRY-EVENT", "SENTRY-ENV",
    "BACKUP-CMD", "BACKUP-VALID", "BACKUP-LOCATION", "RESTORE-DRYRUN",
    "REDIS-PING",
    "API-V1-LEADS", "API-V1-SCAN", "API-LEGACY",
)

# Items a required item includes (shown with it in the report's "Required for GO").
INCLUDES = {"HEALTH-READY": ("HEALTH-DB", "HEALTH-REDIS")}


def ids_of_role(role, groups=None):
    """The IDs ``role`` owns, in report order; with ``groups``, only those run on hosts of these groups."""
    return [c.id for c in CHECKS if c.role == role and (groups is None or c.group in groups)]


# The IDs each check module reports (its action plugin records every one of them, whatever happens).
# redis_probe and api_probe report the IDs their arguments select (plugins/action/<module>.py).
MODULE_IDS = {
    "health_probe": ("HEALTH-LIVE", "HEALTH-READY", "HEALTH-STARTUP", "HEALTH-ENV", "HEALTH-DB", "HEALTH-REDIS"),
    "dependency_diag": ("HEALTH-DIAG",),
    "app_environment": ("HEALTH-ENV",),
    "sentry_dsn": ("SENTRY-DSN",),
    "sentry_event": ("SENTRY-EVENT", "SENTRY-ENV", "SENTRY-DETAIL", "SENTRY-ALERTS"),
    "pg_backup": ("BACKUP-CMD", "BACKUP-VALID"),
    "backup_location": ("BACKUP-LOCATION",),
    "backup_retention": ("BACKUP-RETENTION",),
    "backup_schedule": ("BACKUP-SCHEDULE",),
    "pg_restore_dryrun": ("RESTORE-DRYRUN", "RESTORE-RTO"),
    "redis_probe": ("REDIS-PING", "REDIS-OPS", "REDIS-POOL"),
    "api_probe": ("API-V1-LEADS", "API-V1-SCAN", "API-V1-SALES", "API-LEGACY", "API-COMPAT"),
}
