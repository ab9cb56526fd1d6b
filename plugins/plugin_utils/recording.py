# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recording check items: the one mechanism every role uses (docs/ARCHITECTURE.md, "Roles record results").

Every check module has an action plugin of the same name built on CheckModuleAction. It runs the
module and, whatever happens (the module's items, a failure, bad arguments, an exception, an
unreachable host), records an item for every checklist ID the task owns into the host fact
``hunter_ops_checks``. The task itself never fails, so the role goes on to its next check; the
verdict is the report's job.

Facts can outlive a run (a fact cache, AWX's fact storage), and a stale item would be a result
nobody observed in this run. So the fact ``hunter_ops_run`` names the run that recorded the items:
a record from another run is dropped, never merged, and the report reads only this run's items.
Items are scrubbed of the host's secret variables before they are recorded: facts land in that
cache, beside the runner's job events, whatever the task's no_log says.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.hunter.ops.plugins.module_utils import secret
from ansible_collections.hunter.ops.plugins.module_utils.checklist import MODULE_IDS
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_data
from ansible_collections.hunter.ops.plugins.module_utils.results import FAIL, NOTICE_PREFIX, SKIP, STATUSES
from ansible_collections.hunter.ops.plugins.plugin_utils.secret_vars import secret_values_of

CHECKS_FACT = "hunter_ops_checks"
RUN_FACT = "hunter_ops_run"


def run_id(task):
    """An id shared by every task of one ansible-playbook run and by no other run.

    Ansible names every playbook object ``<node>-<node>-<rand>-<rand>-<counter>`` where the first
    four parts are drawn once per ansible-playbook process; the objects reach the workers with
    their names, so every task of the run agrees on them.
    """
    uuid = to_text(getattr(task, "_uuid", "") or "")
    parts = uuid.split("-")
    return "-".join(parts[:4]) if len(parts) >= 5 else uuid


def one_line(text):
    return " ".join(to_text(text or "").split())


def failed_items(ids, message, evidence=None):
    text = one_line(message) or "the check task failed"
    return dict((check_id, {"status": FAIL, "message": text, "evidence": dict(evidence or {"error": text})})
                for check_id in ids)


def valid_item(item):
    return isinstance(item, dict) and item.get("status") in STATUSES


def module_notices(result):
    """The `hunter.ops notice:` lines a module printed on stderr before it died (the restore drill
    names the scratch database it was creating): all that survives a module killed outright."""
    stderr = result.get("module_stderr")
    if not isinstance(stderr, str):
        return []
    return [line.strip() for line in stderr.splitlines() if line.startswith(NOTICE_PREFIX)][-3:]


def items_of(result, ids):
    """Every ID of ``ids`` as an item: the module's own, or a failure saying why there is none."""
    result = result if isinstance(result, dict) else {}
    checks = result.get("checks") if isinstance(result.get("checks"), dict) else {}
    reason = one_line(result.get("msg"))
    if reason.startswith("MODULE FAILURE"):
        # A crash: the last line of its stderr names it (an ImportError, the interpreter missing).
        lines = [line for line in to_text(result.get("module_stderr") or "").splitlines()
                 if line.strip() and not line.startswith(NOTICE_PREFIX)]
        reason = "the check module crashed: %s" % (
            one_line(lines[-1]) if lines else "it died without an error message (rc %s)" % result.get("rc", "unknown"))
    if result.get("unreachable"):
        reason = "host unreachable: %s" % (reason or "no connection")
    elif result.get("skipped"):
        reason = "the check module was skipped: %s" % (reason or "no reason given")
    elif result.get("failed") or result.get("exception"):
        reason = reason or "the check module failed without a message"
    notices = module_notices(result)
    if notices:
        reason = "%s; %s" % (reason, " ".join(notices))
    items = {}
    for check_id in ids:
        item = checks.get(check_id)
        if valid_item(item):
            items[check_id] = item
        elif item is not None:
            items.update(failed_items([check_id], "malformed result from the check module: %r" % (item,)))
        else:
            items.update(failed_items([check_id], reason or "the check module returned no result for this item"))
    # Items the module reports beyond the task's IDs are kept (a configured extra ID).
    for check_id, item in checks.items():
        if check_id not in items:
            items[check_id] = item if valid_item(item) else failed_items(
                [check_id], "malformed result from the check module: %r" % (item,))[check_id]
    return items


def recorded(task_vars, run):
    """The items this run recorded so far for the host (never another run's)."""
    facts = (task_vars or {}).get("ansible_facts") or {}
    if facts.get(RUN_FACT) != run or not isinstance(facts.get(CHECKS_FACT), dict):
        return {}
    return dict(facts[CHECKS_FACT])


def host_secrets(templar, task_vars):
    """The values of the host's secret variables (vault_*, *_password, *_token, ...), templated, in
    every shape they take in text (encoded, the password inside a URL)."""
    task_vars = task_vars or {}
    found = set()
    for value in secret_values_of(list(task_vars), lambda name: templar.template(task_vars[name])):
        for part in [value] + secret.url_secrets(value):
            found.update(secret.forms(part))
    return sorted(found)


def record(result, task, task_vars, items, keep_existing=False, secrets=()):
    """Merge ``items`` into the host's facts through ``result`` (the action's return value)."""
    run = run_id(task)
    if secrets:
        items = redact_data(items, list(secrets))
    merged = recorded(task_vars, run)
    for check_id, item in items.items():
        if keep_existing and check_id in merged:
            continue
        merged[check_id] = item
    result["ansible_facts"] = {CHECKS_FACT: merged, RUN_FACT: run}
    result["checks"] = items
    result["recorded"] = merged
    return result


class CheckModuleAction(ActionBase):
    """Runs the module of the same name, then records an item for every ID the task owns."""

    _supports_check_mode = True
    _supports_async = False

    def checklist_ids(self, args):
        """IDs this task must report; modules whose IDs depend on their arguments override it."""
        return list(MODULE_IDS[self._task.action.split(".")[-1]])

    def unselected_ids(self, args):
        """{ID: reason} for IDs the task owns but its arguments leave out: recorded as skip."""
        return {}

    def outcome_on_controller(self, args):
        """The module's result when the controller can tell it without the host (a run that observes
        nothing there), else None: the module runs on the host."""
        return None

    def run_module(self, args, task_vars):
        try:
            return self._execute_module(module_name=self._task.resolved_action or self._task.action,
                                        module_args=args, task_vars=task_vars)
        except AnsibleConnectionFailure as err:
            return {"unreachable": True, "msg": to_text(err)}
        except AnsibleError as err:
            return {"failed": True, "msg": to_text(err.message if hasattr(err, "message") else err)}
        finally:
            try:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            except AnsibleError:
                pass  # the connection is gone; the items say so

    def run(self, tmp=None, task_vars=None):
        result = super(CheckModuleAction, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        try:
            ids = self.checklist_ids(args)
            unselected = self.unselected_ids(args)
        except Exception as err:  # a malformed argument the ID list depends on: the module says more
            ids = list(MODULE_IDS.get(self._task.action.split(".")[-1], ()))
            unselected = {}
            self._display.vvv("hunter.ops: cannot tell the IDs from the arguments: %s" % to_text(err))
        outcome = self.outcome_on_controller(args)
        if outcome is None:
            outcome = self.run_module(args, task_vars)
        items = items_of(outcome, ids)
        for check_id, reason in unselected.items():
            items.setdefault(check_id, {"status": SKIP, "message": one_line(reason), "evidence": {"reason": one_line(reason)}})
        # A crash's raw output and traceback stay out of the result (they may quote arguments);
        # the items carry the reason in one line.
        result.update(dict((k, v) for k, v in outcome.items()
                           if k not in ("failed", "unreachable", "skipped", "ansible_facts", "exception",
                                        "module_stdout", "module_stderr")))
        if outcome.get("failed") or outcome.get("unreachable"):
            # The failure lives on in the items; the role goes on with its next check.
            result["check_task_failed"] = True
        if outcome.get("unreachable"):
            # Ansible's own key is dropped (the play goes on); tasks that decide on the controller
            # what a host needs read this one.
            result["host_unreachable"] = True
        result["failed"] = False
        return record(result, self._task, task_vars, items, secrets=host_secrets(self._templar, task_vars))
