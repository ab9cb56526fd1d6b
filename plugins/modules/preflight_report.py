#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: preflight_report
short_description: Write the preflight report (Markdown, JSON, JUnit) and decide GO/NO-GO
version_added: 0.1.0
description:
  - Takes the check items every host recorded (keyed by checklist ID), places them in checklist order,
    marks the IDs nobody reported as V(skip) with the reason, fails an ID for every host of its group that
    reported nothing for it (every host reports every item its role owns, CHECKLIST "What a pass may
    claim"), and decides the verdict of CHECKLIST 6.5.
  - Writes C(report.md), C(report.json) and C(junit.xml) into a new folder
    C(preflight_<environment>_<YYYYmmdd_HHMMSS>) under O(output_dir) and points the C(latest) symlink at it.
  - It does not fail on NO-GO; the caller fails after publishing the result, so the report always exists.
  - It does not fail when the report cannot be written either. The table and the verdict come back in any case,
    and the report goes to the first of O(fallback_dirs), then to a private temporary directory
    (O(fallback_tempdir)), with RV(message) naming the folder asked for, why it failed, and where the report is.
author:
  - hunter.ops contributors (@hunter-ops)
options:
  results:
    description:
      - "Check items per host, as C({host: {ID: {status, message, evidence}}})."
      - When omitted (the usual way), the action plugin takes this run's C(hunter_ops_checks) fact of every
        inventory host; facts another run left (a fact cache) are ignored and named in O(stale_hosts).
    type: dict
    default: {}
  host_groups:
    description:
      - 'Groups of every inventory host (C({host: [group, ...]})), to tell "no host in group" from
        "a host reported nothing". When O(results) is omitted, taken from the inventory.'
    type: dict
    default: {}
  stale_hosts:
    description:
      - Hosts whose recorded items belong to another run, with a note; they count as silent.
        Filled by the action plugin.
    type: dict
    default: {}
  required:
    description:
      - Checklist IDs that must pass for GO. Defaults to the CHECKLIST 6.5 list.
    type: list
    elements: str
  output_dir:
    description:
      - Folder under which the report folder is created.
    type: path
    required: true
  environment:
    description:
      - Expected environment of the run (shown in the report and in the folder name).
    type: str
    default: unknown
  inventory:
    description:
      - Name of the inventory, shown in the report.
    type: str
    default: ''
  title:
    description:
      - Report title.
    type: str
    default: Hunter production preflight
  decisions:
    description:
      - Documented decisions the runbook asks for (for example the legacy endpoint decision), printed in the report.
    type: dict
    default: {}
  secrets:
    description:
      - Values that must never appear in the report (the inventory's passwords, tokens, DSNs, URLs with
        credentials); they are replaced wherever they occur, percent-encoded and decoded forms and the
        passwords inside URLs included. C(no_log).
    type: list
    elements: str
    default: []
  fallback_dirs:
    description:
      - Folders tried in order when O(output_dir) cannot be written (missing permissions, a full or read-only disk).
    type: list
    elements: path
    default: ['~/.hunter-ops/reports']
  fallback_tempdir:
    description:
      - When neither O(output_dir) nor O(fallback_dirs) can be written, write the report into a new private
        temporary directory (C(mkdtemp), mode 0700).
    type: bool
    default: true
  table_width:
    description:
      - Width of the message column of the compact table.
    type: int
    default: 90
  dry_run:
    description:
      - The checks ran in check mode (a dry run). The report is written all the same, marked as a dry run in
        C(report.md), C(report.json) (C(dry_run)), C(junit.xml) and its folder name (C(..._dry-run)), and
        C(latest) points at it, so the path printed always exists and C(latest) is the last run printed.
        The role passes V(true) in check mode and runs this task with C(check_mode=false).
    type: bool
    default: false
notes:
  - In check mode the module writes nothing and says so plainly (RV(written) false, RV(report_dir) null); to write
    a dry run's report, run it outside check mode with O(dry_run=true), as the role does.
'''

EXAMPLES = r'''
- name: Write the report
  hunter.ops.preflight_report:
    output_dir: "{{ playbook_dir }}/reports"
    environment: staging
    decisions:
      Legacy endpoints: removed
  register: report
'''

RETURN = r'''
verdict:
  description: V(GO) or V(NO-GO).
  returned: always
  type: str
  sample: NO-GO
blocking:
  description: Required items that block GO.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "HEALTH-READY", "host": "app1", "status": "fail", "message": "answered 503"}]
counts:
  description: Number of report rows per status.
  returned: always
  type: dict
  sample: {"pass": 20, "fail": 1, "warn": 2, "skip": 6}
items:
  description: Every report row in checklist order.
  returned: always
  type: list
  elements: dict
report_dir:
  description: Folder the report was written to (the fallback one when O(output_dir) could not be written); null
    when no report was written (check mode, or no folder could be written).
  returned: always
  type: str
files:
  description: Paths of the written files (empty when no report could be written).
  returned: always
  type: dict
  sample: {"markdown": "/srv/reports/preflight_staging_20261128_020000/report.md"}
written:
  description: Whether the report was written (false in check mode and when no folder could be written; true for a
    dry run's report, O(dry_run)).
  returned: always
  type: bool
fallback:
  description: Whether the report went to a fallback folder instead of O(output_dir).
  returned: always
  type: bool
write_errors:
  description: Each folder that could not be written, with the reason.
  returned: always
  type: list
  elements: str
message:
  description: Where the report is, or why there is none, naming every folder tried.
  returned: always
  type: str
table:
  description: The compact table, one line per row, for printing.
  returned: always
  type: list
  elements: str
summary:
  description: Short summary for C(set_stats) (AWX artifacts).
  returned: always
  type: dict
'''

import datetime
import json
import os
import shutil
import tempfile
from xml.sax.saxutils import escape, quoteattr

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hunter.ops.plugins.module_utils.checklist import (
    BY_ID, CHECKS, DEFAULT_REQUIRED, INCLUDES, SECTIONS,
)
from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_data, redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, PASS, SKIP, STATUSES, WARN

STATUS_MARK = {PASS: "PASS", FAIL: "FAIL", WARN: "WARN", SKIP: "SKIP"}


def _row(check_id, host, item, required):
    status = item.get("status") if isinstance(item, dict) else None
    if status not in STATUSES:
        status, message = FAIL, "malformed result from the check: %r" % (item,)
        evidence = {}
    else:
        message = " ".join(str(item.get("message", "")).split())
        evidence = item.get("evidence") or {}
    check = BY_ID.get(check_id)
    return {
        "id": check_id, "host": host, "status": status, "message": message, "evidence": evidence,
        "section": check.section if check else "other", "title": check.title if check else check_id,
        "required": check_id in required,
    }


def _no_result(check, host, stale_hosts):
    note = stale_hosts.get(host)
    message = "no result from this host for %s: unreachable, or its %s play stopped before recording it" % (
        check.id, check.role)
    evidence = {"role": check.role, "group": check.group}
    if note:
        message += " (%s)" % note
        evidence["stale"] = note
    return {"status": FAIL, "message": message, "evidence": evidence}


def collect_rows(results, host_groups, required, stale_hosts=None):
    """Report rows in checklist order, including rows for what nobody reported.

    Every host of an ID's group must report it: once one host of the group did, a sibling that did
    not fails that ID (a silent host is never hidden behind another's pass).
    """
    rows = []
    stale_hosts = stale_hosts or {}
    silent_hosts = sorted(h for h in host_groups if not results.get(h))
    for check in CHECKS:
        reported = sorted(h for h, items in results.items() if check.id in (items or {}))
        in_group = sorted(h for h, groups in host_groups.items() if check.group in (groups or []))
        for host in sorted(set(reported) | set(in_group if reported else [])):
            if host in reported:
                rows.append(_row(check.id, host, results[host][check.id], required))
            else:
                rows.append(_row(check.id, host, _no_result(check, host, stale_hosts), required))
        if reported:
            continue
        silent = [h for h in in_group if h in silent_hosts]
        if silent:
            item = {"status": FAIL, "message": "no result from %s: unreachable, or stopped before recording results"
                    % ", ".join(silent), "evidence": {"hosts": silent}}
            stale = dict((h, stale_hosts[h]) for h in silent if h in stale_hosts)
            if stale:
                item["evidence"]["stale"] = stale
        elif not in_group:
            item = {"status": SKIP, "message": "no host in inventory group '%s'" % check.group, "evidence": {}}
        else:
            item = {"status": SKIP, "message": "not checked: role %s did not run for group '%s'"
                    % (check.role, check.group), "evidence": {"role": check.role}}
        rows.append(_row(check.id, "-", item, required))
    known = set(BY_ID)
    for host in sorted(results):
        for check_id in sorted(set(results[host] or {}) - known):
            rows.append(_row(check_id, host, results[host][check_id], required))
    return rows


def decide(rows, required):
    """CHECKLIST 6.5: GO iff every required ID was reported and none of its rows is fail or skip."""
    blocking = []
    for check_id in required:
        mine = [r for r in rows if r["id"] == check_id]
        if not mine:
            blocking.append({"id": check_id, "host": "-", "status": SKIP, "message": "not in the checklist catalogue"})
        for r in mine:
            if r["status"] in (FAIL, SKIP):
                blocking.append({"id": r["id"], "host": r["host"], "status": r["status"], "message": r["message"]})
    return ("NO-GO" if blocking else "GO"), blocking


def compact_table(rows, verdict, width):
    id_w = max([len(r["id"]) for r in rows] + [2])
    host_w = max([len(r["host"]) for r in rows] + [4])
    lines = ["%-4s %-*s %-*s %s" % ("", id_w + 1, "ID", host_w, "HOST", "MESSAGE")]
    for r in rows:
        msg = r["message"] if len(r["message"]) <= width else r["message"][:width - 3] + "..."
        check_id = r["id"] + ("*" if r["required"] else "")
        lines.append("%-4s %-*s %-*s %s" % (STATUS_MARK[r["status"]], id_w + 1, check_id, host_w, r["host"], msg))
    lines.append("VERDICT: %s   (* = required for GO)" % verdict)
    return lines


def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(meta, rows, verdict, blocking, counts, decisions, required):
    out = ["# %s" % meta["title"], ""]
    if meta.get("dry_run"):
        out.append("**DRY RUN (check mode): the checks that write something (the backup, the restore drill, the "
                   "Redis probe key) did not run; this verdict is not a release decision.**")
        out.append("")
    out.append("**Verdict: %s**" % verdict)
    out.append("")
    out.append("- Environment: `%s`" % meta["environment"])
    if meta["inventory"]:
        out.append("- Inventory: `%s`" % meta["inventory"])
    out.append("- Generated: %s" % meta["generated_at"])
    out.append("- Items: %s" % ", ".join("%d %s" % (counts[s], s) for s in STATUSES))
    includes = dict((r, " (includes %s)" % ", ".join(INCLUDES[r])) for r in required if r in INCLUDES)
    out.append("- Required for GO: %s" % ", ".join("`%s`%s" % (r, includes.get(r, "")) for r in required))
    out.append("")
    if blocking:
        out.append("## Blocking GO")
        out.append("")
        for b in blocking:
            out.append("- **%s** on `%s` (%s): %s" % (b["id"], b["host"], b["status"], b["message"]))
        out.append("")
    if decisions:
        out.append("## Documented decisions")
        out.append("")
        for key in sorted(decisions):
            out.append("- %s: **%s**" % (key, decisions[key]))
        out.append("")
    for section in sorted(set(r["section"] for r in rows)):
        out.append("## %s %s" % (section, SECTIONS.get(section, "Other")))
        out.append("")
        out.append("| Status | ID | Host | Message |")
        out.append("|---|---|---|---|")
        for r in rows:
            if r["section"] == section:
                out.append("| %s | %s%s | %s | %s |" % (
                    STATUS_MARK[r["status"]], r["id"], " *" if r["required"] else "",
                    _md_cell(r["host"]), _md_cell(r["message"])))
        out.append("")
    out.append("## Evidence")
    out.append("")
    for r in rows:
        if not r["evidence"]:
            continue
        out.append("### %s on %s (%s)" % (r["id"], r["host"], r["status"]))
        out.append("")
        out.append("```json")
        out.append(json.dumps(r["evidence"], indent=2, sort_keys=True, default=str))
        out.append("```")
        out.append("")
    return "\n".join(out)


def junit(meta, rows):
    cases = []
    failures = skipped = 0
    for r in rows:
        name = quoteattr("%s [%s]" % (r["id"], r["host"]))
        classname = quoteattr("preflight.%s" % r["section"])
        duration = (r["evidence"] or {}).get("duration_ms") if isinstance(r["evidence"], dict) else None
        seconds = "%.3f" % (float(duration) / 1000.0) if isinstance(duration, (int, float)) else "0"
        body = ""
        if r["status"] == FAIL:
            failures += 1
            body = "<failure message=%s>%s</failure>" % (quoteattr(r["message"]), escape(
                json.dumps(r["evidence"], sort_keys=True, default=str)))
        elif r["status"] == SKIP:
            skipped += 1
            body = "<skipped message=%s/>" % quoteattr(r["message"])
        elif r["status"] == WARN:
            body = "<system-out>%s</system-out>" % escape("WARN: " + r["message"])
        cases.append('    <testcase classname=%s name=%s time="%s">%s</testcase>' % (classname, name, seconds, body))
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name=%s>\n  <testsuite name=%s tests="%d" '
            'failures="%d" errors="0" skipped="%d" timestamp=%s>'
            % (quoteattr(meta["title"]), quoteattr("preflight %s%s" % (meta["environment"], " (dry run)" if
                                                                       meta.get("dry_run") else "")), len(rows), failures,
               skipped, quoteattr(meta["generated_at"])))
    return "\n".join([head] + cases + ["  </testsuite>", "</testsuites>", ""])


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o640)
    os.rename(tmp, path)


def _scrub(data, secrets):
    return redact_data(data, secrets)


def _scrub_results(results, secrets):
    """Each item scrubbed on its own: host names and checklist IDs are keys here, not secret names
    (a host called "app-sentry-dsn" must not have every item masked)."""
    return dict((host, dict((check_id, _scrub(item, secrets)) for check_id, item in (items or {}).items()))
                for host, items in results.items())


def _unique(path):
    """``path``, or ``path_2``, ``path_3``...: two runs within one second keep both reports."""
    suffix = 1
    while os.path.lexists(path + ("" if suffix == 1 else "_%d" % suffix)):
        suffix += 1
    return path + ("" if suffix == 1 else "_%d" % suffix)


def write_into(parent, name, contents, latest=True):
    """Write ``contents`` ({filename: text}) into a new folder ``parent/name``; (folder, warning or None).

    Raises OSError when the folder or a file cannot be written (a partial folder is removed). The
    ``latest`` symlink is best effort: failing to update it does not lose the report.
    """
    os.makedirs(parent, mode=0o750, exist_ok=True)
    report_dir = _unique(os.path.join(parent, name))
    os.mkdir(report_dir, 0o750)
    try:
        for filename, text in contents.items():
            _write(os.path.join(report_dir, filename), text)
    except BaseException:
        shutil.rmtree(report_dir, ignore_errors=True)
        raise
    if not latest:
        return report_dir, None
    link = os.path.join(parent, "latest")
    try:
        tmp_link = link + ".tmp"
        if os.path.lexists(tmp_link):
            os.unlink(tmp_link)
        os.symlink(os.path.basename(report_dir), tmp_link)
        os.replace(tmp_link, link)
    except OSError as err:
        return report_dir, "could not update %s: %s" % (link, err.strerror or err)
    return report_dir, None


def _reason(err):
    if isinstance(err, OSError) and err.strerror:
        return "%s (%s)" % (err.strerror, err.filename) if err.filename else err.strerror
    return "%s: %s" % (type(err).__name__, err)


def write_report(output_dir, fallback_dirs, use_tempdir, name, render):
    """Write the report into the first folder that takes it: output_dir, each fallback, a private temporary
    directory. ``render()`` returns {filename: text}. Returns a dict: report_dir (None when nowhere),
    fallback, errors (one line per folder that failed), warning.
    """
    errors = []
    try:
        contents = render()
    except Exception as err:  # pylint: disable=broad-except
        return dict(report_dir=None, fallback=False, warning=None,
                    errors=["the report could not be rendered: %s" % _reason(err)])
    for index, parent in enumerate([output_dir] + list(fallback_dirs or [])):
        parent = os.path.abspath(parent)  # type path: ~ already expanded
        try:
            report_dir, warning = write_into(parent, name, contents)
            return dict(report_dir=report_dir, fallback=index > 0, errors=errors, warning=warning)
        except Exception as err:  # pylint: disable=broad-except
            errors.append("%s: %s" % (parent, _reason(err)))
    if use_tempdir:
        try:
            parent = tempfile.mkdtemp(prefix="hunter-ops-report-")
            report_dir, warning = write_into(parent, name, contents, latest=False)
            return dict(report_dir=report_dir, fallback=True, errors=errors, warning=warning)
        except Exception as err:  # pylint: disable=broad-except
            errors.append("temporary directory (%s): %s" % (tempfile.gettempdir(), _reason(err)))
    return dict(report_dir=None, fallback=False, errors=errors, warning=None)


def where_message(output_dir, outcome):
    """One line: where the report is, or why there is none (every folder tried, with its reason)."""
    if outcome["report_dir"] and not outcome["fallback"]:
        return "report written to %s" % outcome["report_dir"]
    if outcome["report_dir"]:
        return "report NOT written to %s (%s); written to %s instead" % (
            output_dir, "; ".join(outcome["errors"]), outcome["report_dir"])
    return "NO REPORT WRITTEN: %s" % "; ".join(outcome["errors"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            results=dict(type="dict", default={}),
            host_groups=dict(type="dict", default={}),
            stale_hosts=dict(type="dict", default={}),
            required=dict(type="list", elements="str"),
            output_dir=dict(type="path", required=True),
            environment=dict(type="str", default="unknown"),
            inventory=dict(type="str", default=""),
            title=dict(type="str", default="Hunter production preflight"),
            decisions=dict(type="dict", default={}),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
            fallback_dirs=dict(type="list", elements="path", default=["~/.hunter-ops/reports"]),
            fallback_tempdir=dict(type="bool", default=True),
            table_width=dict(type="int", default=90),
            dry_run=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    secrets = secret.protect(module)  # the inventory's secrets, their encodings, the passwords inside URLs
    required = list(p["required"]) if p["required"] is not None else list(DEFAULT_REQUIRED)
    unknown = [r for r in required if r not in BY_ID]
    if unknown:
        module.fail_json(msg="required: unknown checklist IDs %s (known: %s)" % (", ".join(unknown), ", ".join(BY_ID)))
    if not isinstance(p["results"], dict) or any(v is not None and not isinstance(v, dict) for v in p["results"].values()):
        module.fail_json(msg="results: expected {host: {ID: item}}")

    # Everything the operator must see (rows, verdict, table) is decided before anything is written.
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = collect_rows(_scrub_results(p["results"], secrets), p["host_groups"], required, p["stale_hosts"])
    for r in rows:
        r["message"] = redact_text(r["message"], secrets)
    verdict, blocking = decide(rows, required)
    counts = dict((s, sum(1 for r in rows if r["status"] == s)) for s in STATUSES)
    env_slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in p["environment"]) or "unknown"
    meta = {"title": p["title"], "environment": p["environment"], "inventory": p["inventory"],
            "generated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "dry_run": p["dry_run"]}
    name = "preflight_%s_%s%s" % (env_slug, now.strftime("%Y%m%d_%H%M%S"), "_dry-run" if p["dry_run"] else "")
    decisions = _scrub(p["decisions"], secrets)
    document = dict(meta, verdict=verdict, blocking=blocking, counts=counts, required=required,
                    decisions=decisions, items=rows)
    table = compact_table(rows, verdict, p["table_width"])

    def render():
        return {"report.json": json.dumps(document, indent=2, sort_keys=True, default=str) + "\n",
                "report.md": markdown(meta, rows, verdict, blocking, counts, decisions, required) + "\n",
                "junit.xml": junit(meta, rows)}

    if module.check_mode:
        # Never print a path that does not exist (issue 9.10): say plainly that nothing was written.
        outcome = dict(report_dir=None, fallback=False, errors=["check mode"], warning=None)
        latest = os.path.join(p["output_dir"], "latest")
        message = ("check mode: NO REPORT WRITTEN (%s keeps pointing at the last written report); run the task with "
                   "check_mode: false and dry_run: true to write a dry run's report" % latest)
    else:
        outcome = write_report(p["output_dir"], p["fallback_dirs"], p["fallback_tempdir"], name, render)
        message = where_message(p["output_dir"], outcome)
        if p["dry_run"]:
            message = "DRY RUN (check mode): " + message
        if outcome["fallback"] or not outcome["report_dir"]:
            module.warn(message)
        if outcome["warning"]:
            module.warn(outcome["warning"])
    report_dir = outcome["report_dir"]
    written = bool(report_dir) and not module.check_mode
    files = {}
    if report_dir:
        files = {"markdown": os.path.join(report_dir, "report.md"), "json": os.path.join(report_dir, "report.json"),
                 "junit": os.path.join(report_dir, "junit.xml")}
    summary = {"verdict": verdict, "counts": counts, "blocking": ["%s@%s" % (b["id"], b["host"]) for b in blocking],
               "report_dir": report_dir, "report_written": written, "environment": p["environment"],
               "dry_run": p["dry_run"]}
    module.exit_json(changed=written, verdict=verdict, blocking=blocking, counts=counts, items=rows,
                     report_dir=report_dir, files=files, table=table, summary=summary, written=written,
                     fallback=outcome["fallback"], write_errors=outcome["errors"], message=message)


if __name__ == "__main__":
    main()
