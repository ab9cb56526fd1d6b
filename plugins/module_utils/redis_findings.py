# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an operator wants to know from Redis INFO: a short summary and `warn` findings.

Pure functions over the dict redis-py returns for INFO, so they are unit-tested on
captured INFO output and used unchanged by the module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.hunter.ops.plugins.module_utils.results import human_bytes as _human_bytes

# Every finding code, for documentation and for `info_ignore` validation.
FINDING_CODES = (
    "memory_high",            # used_memory at or above info_memory_warn_pct of maxmemory
    "noeviction",             # maxmemory set with noeviction: writes fail with OOM when full
    "evicted_keys",           # keys were evicted since the last restart
    "rejected_connections",   # clients were refused (maxclients reached)
    "clients_high",           # connected_clients at or above info_clients_warn_pct of maxclients
    "rdb_bgsave_failed",      # the last RDB snapshot failed
    "aof_write_failed",       # AOF is on and its last write failed
    "aof_rewrite_failed",     # AOF is on and its last rewrite failed
    "replica",                # the server is a replica (read-only for clients)
    "replica_link_down",      # a replica whose link to the primary is down
    "loading",                # the dataset is still being loaded
)


def _int(info, key, default=0):
    try:
        return int(info.get(key, default))
    except (TypeError, ValueError):
        return default


def human_bytes(n):
    return _human_bytes(n, digits=2)


def memory_pct(info):
    """used_memory as a percentage of maxmemory, or None when maxmemory is 0 (no limit)."""
    maxmemory = _int(info, "maxmemory")
    if maxmemory <= 0:
        return None
    return round(100.0 * _int(info, "used_memory") / maxmemory, 1)


def summary(info):
    """The INFO fields worth putting in evidence."""
    out = {
        "redis_version": info.get("redis_version"),
        "mode": info.get("redis_mode"),
        "role": info.get("role"),
        "uptime_s": _int(info, "uptime_in_seconds"),
        "used_memory": human_bytes(_int(info, "used_memory")),
        "maxmemory": human_bytes(_int(info, "maxmemory")) if _int(info, "maxmemory") else "0 (no limit)",
        "used_memory_pct_of_max": memory_pct(info),
        "maxmemory_policy": info.get("maxmemory_policy"),
        "evicted_keys": _int(info, "evicted_keys"),
        "rejected_connections": _int(info, "rejected_connections"),
        "connected_clients": _int(info, "connected_clients"),
        "maxclients": _int(info, "maxclients") or None,
        "rdb_last_bgsave_status": info.get("rdb_last_bgsave_status"),
        "rdb_saves_since_start": _int(info, "rdb_saves", None),
        "rdb_changes_since_last_save": _int(info, "rdb_changes_since_last_save", None),
        "aof_enabled": _int(info, "aof_enabled") == 1,
    }
    if out["aof_enabled"]:
        out["aof_last_write_status"] = info.get("aof_last_write_status")
        out["aof_last_bgrewrite_status"] = info.get("aof_last_bgrewrite_status")
    if info.get("role") == "slave":
        out["master_link_status"] = info.get("master_link_status")
    elif "connected_slaves" in info:
        out["connected_replicas"] = _int(info, "connected_slaves")
    return dict((k, v) for k, v in out.items() if v is not None)


def findings(info, memory_warn_pct=90.0, clients_warn_pct=80.0, ignore=()):
    """[{code, message}] for the conditions an operator should act on, minus ``ignore``d codes."""
    found = []

    def add(code, message):
        if code not in ignore:
            found.append({"code": code, "message": message})

    pct = memory_pct(info)
    maxmemory = _int(info, "maxmemory")
    policy = info.get("maxmemory_policy")
    if pct is not None and pct >= memory_warn_pct:
        add("memory_high", "used memory %s is %.1f%% of maxmemory %s (policy %s)"
            % (human_bytes(_int(info, "used_memory")), pct, human_bytes(maxmemory), policy))
    if maxmemory > 0 and policy == "noeviction":
        add("noeviction", "maxmemory-policy noeviction: writes fail with OOM once maxmemory %s is reached"
            % human_bytes(maxmemory))
    if _int(info, "evicted_keys") > 0:
        add("evicted_keys", "%d keys evicted since start (maxmemory pressure, policy %s)"
            % (_int(info, "evicted_keys"), policy))
    if _int(info, "rejected_connections") > 0:
        add("rejected_connections", "%d connections rejected since start (maxclients %s reached)"
            % (_int(info, "rejected_connections"), info.get("maxclients", "?")))
    maxclients = _int(info, "maxclients")
    if maxclients > 0 and 100.0 * _int(info, "connected_clients") / maxclients >= clients_warn_pct:
        add("clients_high", "%d connected clients of maxclients %d"
            % (_int(info, "connected_clients"), maxclients))
    if info.get("rdb_last_bgsave_status", "ok") != "ok":
        add("rdb_bgsave_failed", "last RDB background save failed (rdb_last_bgsave_status=%s)"
            % info.get("rdb_last_bgsave_status"))
    if _int(info, "aof_enabled") == 1:
        if info.get("aof_last_write_status", "ok") != "ok":
            add("aof_write_failed", "last AOF write failed (aof_last_write_status=%s)"
                % info.get("aof_last_write_status"))
        if info.get("aof_last_bgrewrite_status", "ok") != "ok":
            add("aof_rewrite_failed", "last AOF rewrite failed (aof_last_bgrewrite_status=%s)"
                % info.get("aof_last_bgrewrite_status"))
    if info.get("role") == "slave":
        add("replica", "server is a replica of %s:%s (read-only for clients)"
            % (info.get("master_host", "?"), info.get("master_port", "?")))
        if info.get("master_link_status") not in (None, "up"):
            add("replica_link_down", "replication link to the primary is %s" % info.get("master_link_status"))
    if _int(info, "loading") == 1:
        add("loading", "server is still loading its dataset")
    return found
