# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read events and alert rules back from the error-tracking server, through its API.

Two backends with one small interface:

  - ``SentryApi``: Sentry's web API (sentry.io and self-hosted), ``/api/0/...``;
  - ``BugsinkApi``: Bugsink's REST API, ``/api/canonical/0/...``.

``get_event(event_id)`` and ``find_event(tags, since)`` return a ``Lookup``
(``found`` with an ``EventView``, ``pending`` while the event is not there yet,
``auth`` or ``error`` when waiting longer cannot help); ``alert_rules()`` returns
an ``AlertAnswer``. All HTTP goes through module_utils/http.py with the bearer
token redacted from every evidence.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timedelta, timezone

from ansible.module_utils.six.moves.urllib.parse import quote, urlencode

from ansible_collections.hunter.ops.plugins.module_utils import http
from ansible_collections.hunter.ops.plugins.module_utils.redact import redact_text
from ansible_collections.hunter.ops.plugins.module_utils.results import trim

BACKENDS = ("bugsink", "sentry")

FOUND, PENDING, AUTH, ERROR = "found", "pending", "auth", "error"


class Lookup(object):
    """One attempt to read the event: state, the event when found, and why not otherwise."""

    def __init__(self, state, event=None, message=None, evidence=None):
        self.state = state
        self.event = event
        self.message = message
        self.evidence = evidence or {}


class AlertAnswer(object):
    """Alert rules: status (pass/warn/skip/fail), one-line message, evidence."""

    def __init__(self, status, message, evidence=None):
        self.status = status
        self.message = message
        self.evidence = evidence or {}


class EventView(object):
    """What the checks need from an event, whichever server returned it."""

    def __init__(self, event_id, environment, exceptions, contexts, tags, received_at=None, created_at=None):
        self.event_id = event_id
        self.environment = environment
        self.exceptions = exceptions        # [{"type", "frames"}]
        self.contexts = contexts or {}
        self.tags = tags or {}
        self.received_at = received_at
        self.created_at = created_at

    @property
    def frame_count(self):
        return sum(e["frames"] for e in self.exceptions)

    def summary(self):
        return {
            "event_id": self.event_id,
            "environment": self.environment,
            "exceptions": self.exceptions,
            "frames": self.frame_count,
            "tags": dict((k, v) for k, v in sorted(self.tags.items())[:30]),
            "contexts": sorted(self.contexts)[:30],
            "received_at": self.received_at,
            "created_at": self.created_at,
        }


def _tags_dict(raw):
    """Tags as {key: value}: Sentry sends [{"key", "value"}], SDK payloads [[k, v]] or {k: v}."""
    if isinstance(raw, dict):
        return dict((str(k), str(v)) for k, v in raw.items())
    tags = {}
    for item in raw or []:
        if isinstance(item, dict) and "key" in item:
            tags[str(item["key"])] = str(item.get("value"))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            tags[str(item[0])] = str(item[1])
    return tags


def _exceptions(values):
    out = []
    for value in values or []:
        if not isinstance(value, dict):
            continue
        frames = ((value.get("stacktrace") or {}).get("frames")) or []
        out.append({"type": value.get("type"), "frames": len(frames)})
    return out


def parse_time(text):
    """ISO-8601 (with Z or offset) or epoch seconds -> aware datetime, or None."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return datetime.fromtimestamp(text, timezone.utc)
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class _Api(object):
    name = None
    needs_organization = False

    def __init__(self, base_url, token, project, organization=None, http_options=None):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.project = str(project)
        self.organization = organization
        self.http_options = dict(http_options or {})
        self.requests = 0

    def _get(self, path, query=None):
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        headers = {"Authorization": "Bearer %s" % self.token, "Accept": "application/json"}
        self.requests += 1
        return http.request(url, headers=headers, **self.http_options)

    def _evidence(self, resp):
        return resp.evidence(secrets=[self.token], max_chars=300)

    def _failure(self, resp, what):
        """A Lookup for an answer that is neither the event nor 'not yet'."""
        evidence = self._evidence(resp)
        if resp.error:
            return Lookup(ERROR, message="%s API unreachable (%s): %s" % (self.name, resp.describe_request(),
                                                                          resp.error), evidence=evidence)
        if resp.status in (401, 403):
            return Lookup(AUTH, message="%s API refused the token (HTTP %d%s) on %s" % (
                self.name, resp.status, self._detail(resp), what), evidence=evidence)
        return Lookup(ERROR, message="%s API answered HTTP %d%s on %s" % (
            self.name, resp.status, self._detail(resp), what), evidence=evidence)

    def _detail(self, resp):
        body = resp.json()
        detail = body.get("detail") if isinstance(body, dict) else None
        return ": %s" % trim(redact_text(detail, [self.token]), 120) if detail else ""

    def check_project(self):
        """None when the project is readable with the token; else a Lookup (AUTH/ERROR) that waiting cannot fix.

        Asked once before polling, so a wrong project or organization fails at once instead of
        looking like an event that is "not yet" there (both answer 404 on the event lookup).
        """
        resp = self._get(self._project_url())
        if (resp.ok and resp.status == 200) or self.transient(resp):
            return None  # network trouble and 5xx are the polling's business (api_error_limit)
        if resp.status == 404:
            return Lookup(ERROR, message="%s API: project %s not found (HTTP 404%s): check the project%s" % (
                self.name, self._project_label(), self._detail(resp), " and organization" if self.organization else ""),
                evidence=self._evidence(resp))
        return self._failure(resp, "the project")

    def _project_label(self):
        return "%s/%s" % (self.organization, self.project) if self.organization else self.project

    @staticmethod
    def transient(resp):
        """Worth asking again: network trouble, 5xx, 429."""
        return bool(resp.error) or resp.status >= 500 or resp.status == 429


class BugsinkApi(_Api):
    """Bugsink: /api/canonical/0/, bearer token, numeric project id."""

    name = "Bugsink"
    PREFIX = "/api/canonical/0"

    def get_event(self, event_id):
        resp = self._get(self.PREFIX + "/events/lookup/", {"project": self.project, "event_id": event_id})
        if resp.ok and resp.status == 200 and isinstance(resp.json(), dict):
            return Lookup(FOUND, event=self.view(resp.json()), evidence=self._evidence_found(resp))
        if resp.ok and resp.status == 404 and not self._project_missing(resp):
            return Lookup(PENDING, message="not yet visible (404)", evidence=self._evidence(resp))
        if self.transient(resp):
            return Lookup(PENDING, message=resp.error or "HTTP %d" % resp.status, evidence=self._evidence(resp))
        return self._failure(resp, "the event lookup")

    def _project_url(self):
        return self.PREFIX + "/projects/%s/" % quote(self.project, safe="")

    def _project_missing(self, resp):
        body = resp.json()
        # DRF answers {"detail": "No Project matches the given query."} when the project itself is unknown.
        return isinstance(body, dict) and "project" in str(body.get("detail", "")).lower()

    def _evidence_found(self, resp):
        ev = {"request": resp.describe_request(), "status": resp.status}
        if resp.duration_ms is not None:
            ev["duration_ms"] = round(resp.duration_ms, 1)
        return ev

    def find_event(self, tags, since):
        """Newest event carrying every tag, timestamped at or after `since` (through issues)."""
        query = " ".join("%s:%s" % (k, _quote_value(v)) for k, v in sorted(tags.items()))
        resp = self._get(self.PREFIX + "/issues/", {"project": self.project, "q": query})
        if not (resp.ok and resp.status == 200):
            if self.transient(resp):
                return Lookup(PENDING, message=resp.error or "HTTP %d" % resp.status, evidence=self._evidence(resp))
            return self._failure(resp, "the issue search")
        best = None
        for issue in (resp.json() or {}).get("results", [])[:10]:
            events = self._get(self.PREFIX + "/events/", {"issue": issue.get("id"), "q": query})
            if not (events.ok and events.status == 200):
                continue
            for event in (events.json() or {}).get("results", []):
                stamp = parse_time(event.get("timestamp"))
                if stamp is not None and stamp >= since and (best is None or stamp > best[0]):
                    best = (stamp, event.get("event_id"))
        if best is None:
            return Lookup(PENDING, message="no event tagged %s yet" % query, evidence=self._evidence(resp))
        return self.get_event(best[1])

    @staticmethod
    def view(body):
        data = body.get("data") or {}
        exception = data.get("exception") or {}
        values = exception.get("values") if isinstance(exception, dict) else exception
        tags = _tags_dict(data.get("tags"))
        return EventView(
            event_id=str(body.get("event_id") or data.get("event_id") or "").replace("-", ""),
            environment=data.get("environment") or tags.get("environment"),
            exceptions=_exceptions(values),
            contexts=data.get("contexts") or {},
            tags=tags,
            received_at=body.get("ingested_at"),
            created_at=body.get("timestamp") or data.get("timestamp"),
        )

    def alert_rules(self):
        # Bugsink alerts on new issues / regressions / unmutes per project, to channels its API does not expose.
        resp = self._get(self._project_url())
        body = resp.json() if resp.ok else None
        if not (resp.ok and resp.status == 200 and isinstance(body, dict)):
            failure = self._failure(resp, "the project")
            return AlertAnswer("fail", "cannot read the project's alert settings: %s" % failure.message,
                               failure.evidence)
        flags = dict((k, bool(body.get(k))) for k in ("alert_on_new_issue", "alert_on_regression", "alert_on_unmute"))
        evidence = dict(self._evidence_found(resp), alert_settings=flags)
        if not any(flags.values()):
            return AlertAnswer("warn", "every alert condition of the Bugsink project is off (new issue, regression, "
                                       "unmute): nobody is notified", evidence)
        on = ", ".join(k[len("alert_on_"):].replace("_", " ") for k, v in flags.items() if v)
        return AlertAnswer("skip", "Bugsink's API has no alert rules (alerting on: %s; the notification "
                                   "channels are not visible through the API)" % on, evidence)


class SentryApi(_Api):
    """Sentry's web API: /api/0/, bearer token, organization and project slugs."""

    name = "Sentry"
    needs_organization = True

    def _project_path(self):
        return "/api/0/projects/%s/%s" % (quote(self.organization, safe=""), quote(self.project, safe=""))

    def _project_url(self):
        return self._project_path() + "/"

    def get_event(self, event_id):
        resp = self._get(self._project_path() + "/events/%s/" % quote(event_id, safe=""))
        if resp.ok and resp.status == 200 and isinstance(resp.json(), dict):
            return Lookup(FOUND, event=self.view(resp.json()),
                          evidence={"request": resp.describe_request(), "status": 200,
                                    "duration_ms": round(resp.duration_ms or 0, 1)})
        if resp.ok and resp.status == 404:
            return Lookup(PENDING, message="not yet visible (404)", evidence=self._evidence(resp))
        if self.transient(resp):
            return Lookup(PENDING, message=resp.error or "HTTP %d" % resp.status, evidence=self._evidence(resp))
        return self._failure(resp, "the event lookup")

    def find_event(self, tags, since):
        query = " ".join("%s:%s" % (k, _quote_value(v)) for k, v in sorted(tags.items()))
        resp = self._get(self._project_path() + "/issues/", {"query": query, "statsPeriod": "24h"})
        if not (resp.ok and resp.status == 200):
            if self.transient(resp):
                return Lookup(PENDING, message=resp.error or "HTTP %d" % resp.status, evidence=self._evidence(resp))
            return self._failure(resp, "the issue search")
        best = None
        issues = resp.json() if isinstance(resp.json(), list) else []
        start = (since - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
        for issue in issues[:10]:
            events = self._get("/api/0/organizations/%s/issues/%s/events/" % (
                quote(self.organization, safe=""), quote(str(issue.get("id")), safe="")),
                {"query": query, "full": "true", "start": start,
                 "end": (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")})
            if not (events.ok and events.status == 200 and isinstance(events.json(), list)):
                continue
            for event in events.json():
                stamp = parse_time(event.get("dateCreated"))
                if stamp is not None and stamp >= since and (best is None or stamp > best[0]):
                    best = (stamp, event)
        if best is None:
            return Lookup(PENDING, message="no event tagged %s yet" % query, evidence=self._evidence(resp))
        return self.get_event(str(best[1].get("eventID") or best[1].get("id")))

    @staticmethod
    def view(body):
        tags = _tags_dict(body.get("tags"))
        values = []
        for entry in body.get("entries") or []:
            if isinstance(entry, dict) and entry.get("type") == "exception":
                values.extend((entry.get("data") or {}).get("values") or [])
        return EventView(
            event_id=str(body.get("eventID") or body.get("id") or ""),
            environment=tags.get("environment") or body.get("environment"),
            exceptions=_exceptions(values),
            contexts=body.get("contexts") or {},
            tags=tags,
            received_at=body.get("dateReceived"),
            created_at=body.get("dateCreated"),
        )

    def alert_rules(self):
        resp = self._get(self._project_path() + "/rules/")
        body = resp.json() if resp.ok else None
        if not (resp.ok and resp.status == 200 and isinstance(body, list)):
            failure = self._failure(resp, "the project's alert rules")
            return AlertAnswer("fail", "cannot read alert rules: %s" % failure.message, failure.evidence)
        names = [str(rule.get("name")) for rule in body if isinstance(rule, dict)]
        evidence = {"request": resp.describe_request(), "status": 200, "rules": names[:20],
                    "duration_ms": round(resp.duration_ms or 0, 1)}
        if not names:
            return AlertAnswer("warn", "the project has no alert rules: nobody is notified of new errors", evidence)
        return AlertAnswer("pass", "%d alert rule%s: %s" % (len(names), "" if len(names) == 1 else "s",
                                                            trim(", ".join(names), 120)), evidence)


def _quote_value(value):
    text = str(value)
    return '"%s"' % text.replace('"', '\\"') if any(c.isspace() or c == '"' for c in text) else text


def make_api(backend, base_url, token, project, organization=None, http_options=None):
    cls = {"bugsink": BugsinkApi, "sentry": SentryApi}[backend]
    return cls(base_url, token, project, organization=organization, http_options=http_options)
