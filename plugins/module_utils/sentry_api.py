# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read events and alert rules back from the error-tracking server, through its API.

Two backends with one small interface:

  - ``SentryApi``: Sentry's web API (sentry.io and self-hosted), ``/api/0/...``;
  - ``BugsinkApi``: Bugsink's REST API, ``/api/canonical/0/...``.

``get_event(event_id)`` and ``find_event(tags, bound, probe_id, accept_time)`` return a
``Lookup`` (``found`` with an ``EventView``, ``pending`` while the event is not there yet,
``auth`` or ``error`` when waiting longer cannot help); ``alert_rules()`` returns an
``AlertAnswer``. All HTTP goes through module_utils/http.py with the bearer token redacted
from every evidence.

Whose event it is: ``find_event`` takes only events the server received at or after ``bound``
(the probe's send time on the server's clock, see ``server_time``), and of those only one that
carries the probe's id (``EventView.marker``: a tag, the exception message, the request's URL or
headers, a context) unless ``accept_time`` says the time bound alone will do. Every answer's
``Date`` header measures the server's clock against this host's (``clock_offset``, a lower
bound accurate to a second and the round trip), so a clock skew cannot let an older event in.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

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
        self.matched_by = None    # why the event is this probe's (find_event)


class AlertAnswer(object):
    """Alert rules: status (pass/warn/skip/fail), one-line message, evidence."""

    def __init__(self, status, message, evidence=None):
        self.status = status
        self.message = message
        self.evidence = evidence or {}


class EventView(object):
    """What the checks need from an event, whichever server returned it."""

    def __init__(self, event_id, environment, exceptions, contexts, tags, received_at=None, created_at=None,
                 request=None, messages=None, extra=None):
        self.event_id = event_id
        self.environment = environment
        self.exceptions = exceptions        # [{"type", "frames"}]
        self.contexts = contexts or {}
        self.tags = tags or {}
        self.received_at = received_at      # the server's clock
        self.created_at = created_at        # the sender's clock
        self.request = request or {}        # {"url", "query", "headers": {name: value}} as the SDK recorded it
        self.messages = messages or []      # exception values and the message
        self.extra = extra or {}

    @property
    def frame_count(self):
        return sum(e["frames"] for e in self.exceptions)

    def marker(self, probe_id):
        """Where this event carries ``probe_id`` (a phrase for the evidence), or None."""
        if not probe_id:
            return None
        for key, value in sorted(self.tags.items()):
            if value == probe_id:
                return "tag %s" % key
        for name, value in sorted((self.request.get("headers") or {}).items()):
            if str(value) == probe_id:
                return "request header %s" % name
        if probe_id in "%s?%s" % (self.request.get("url") or "", self.request.get("query") or ""):
            return "the request URL"
        if any(probe_id in str(text) for text in self.messages):
            return "the exception message"
        for name, context in sorted(self.contexts.items()):
            if probe_id in json.dumps(context, default=str):
                return "context %s" % name
        if probe_id in json.dumps(self.extra, default=str):
            return "extra data"
        return None

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


def _pairs(raw):
    """Headers or a query as {name: value}: dicts, [[k, v]] pairs, or a query string."""
    if isinstance(raw, dict):
        return dict((str(k), v) for k, v in raw.items())
    out = {}
    for item in raw or []:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            out[str(item[0])] = item[1]
    return out


def _query_text(raw):
    if isinstance(raw, str):
        return raw
    return "&".join("%s=%s" % (k, v) for k, v in _pairs(raw).items())


def _messages(values, *more):
    out = [value.get("value") for value in values or [] if isinstance(value, dict) and value.get("value")]
    return out + [m for m in more if isinstance(m, str) and m]


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
        self.clock_offset = None      # server clock minus ours, a lower bound (seconds)
        self.project_id = None        # the numeric id the API gives the project (check_project)

    def _get(self, path, query=None):
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        headers = {"Authorization": "Bearer %s" % self.token, "Accept": "application/json"}
        self.requests += 1
        resp = http.request(url, headers=headers, **self.http_options)
        self._measure_clock(resp, datetime.now(timezone.utc))
        return resp

    def _measure_clock(self, resp, received):
        """The Date header was written before we got the answer, and is truncated to the second: so
        Date - (our time on receipt) <= the true offset. The largest of these is the tightest bound."""
        try:
            date = parsedate_to_datetime(resp.headers.get("date"))
        except (TypeError, ValueError, IndexError):
            return
        if date is None:
            return
        if date.tzinfo is None:
            date = date.replace(tzinfo=timezone.utc)
        offset = (date - received).total_seconds()
        if self.clock_offset is None or offset > self.clock_offset:
            self.clock_offset = offset

    def server_time(self, local):
        """The earliest the server's clock can have read at our time ``local``; None before any Date header."""
        if self.clock_offset is None:
            return None
        return local + timedelta(seconds=self.clock_offset)

    def _accept(self, event, received, bound, probe_id, accept_time):
        """Why ``event`` is this probe's, or None."""
        where = event.marker(probe_id)
        if where:
            return "carries this probe's id (%s)" % where
        if accept_time and bound is not None and received is not None and received >= bound:
            return "received %s, after this probe's error (server clock, time bound)" % received.isoformat()
        return None

    @staticmethod
    def _pending_message(query, stale, unmarked):
        words = ["no event tagged %s from this probe yet" % query]
        if stale:
            words.append("%d earlier event%s ignored (received before this probe's error)" % (
                stale, "" if stale == 1 else "s"))
        if unmarked:
            words.append("%d recent event%s without this probe's id ignored" % (unmarked, "" if unmarked == 1 else "s"))
        return "; ".join(words)

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
        if resp.ok and resp.status == 200:
            body = resp.json()
            if isinstance(body, dict) and body.get("id") is not None:
                self.project_id = str(body["id"])
            return None
        if self.transient(resp):
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

    def find_event(self, tags, bound, probe_id, accept_time=False):
        """The newest event of this probe carrying every tag (issues, then their events), received at or
        after ``bound`` (None: not known) and carrying ``probe_id`` unless ``accept_time``."""
        query = " ".join("%s:%s" % (k, _quote_value(v)) for k, v in sorted(tags.items()))
        resp = self._get(self.PREFIX + "/issues/", {"project": self.project, "q": query})
        if not (resp.ok and resp.status == 200):
            if self.transient(resp):
                return Lookup(PENDING, message=resp.error or "HTTP %d" % resp.status, evidence=self._evidence(resp))
            return self._failure(resp, "the issue search")
        candidates, stale = [], 0
        for issue in (resp.json() or {}).get("results", [])[:10]:
            events = self._get(self.PREFIX + "/events/", {"issue": issue.get("id"), "q": query})
            if not (events.ok and events.status == 200):
                continue
            for event in (events.json() or {}).get("results", [])[:25]:  # newest first
                received = parse_time(event.get("ingested_at"))
                if bound is not None and received is not None and received < bound:
                    stale += 1
                    continue
                candidates.append((received or datetime.min.replace(tzinfo=timezone.utc), event.get("event_id")))
        unmarked = 0
        for received, event_id in sorted(candidates, key=lambda c: c[0], reverse=True)[:5]:
            lookup = self.get_event(str(event_id or "").replace("-", ""))
            if lookup.state != FOUND:
                continue
            lookup.matched_by = self._accept(lookup.event, parse_time(lookup.event.received_at), bound, probe_id,
                                             accept_time)
            if lookup.matched_by:
                return lookup
            unmarked += 1
        evidence = dict(self._evidence(resp), stale_events=stale, unmarked_events=unmarked)
        return Lookup(PENDING, message=self._pending_message(query, stale, unmarked), evidence=evidence)

    @staticmethod
    def view(body):
        data = body.get("data") or {}
        exception = data.get("exception") or {}
        values = exception.get("values") if isinstance(exception, dict) else exception
        tags = _tags_dict(data.get("tags"))
        request = data.get("request") if isinstance(data.get("request"), dict) else {}
        logentry = data.get("logentry") if isinstance(data.get("logentry"), dict) else {}
        message = data.get("message") or logentry.get("formatted") or logentry.get("message")
        return EventView(
            event_id=str(body.get("event_id") or data.get("event_id") or "").replace("-", ""),
            environment=data.get("environment") or tags.get("environment"),
            exceptions=_exceptions(values),
            contexts=data.get("contexts") or {},
            tags=tags,
            received_at=body.get("ingested_at"),
            created_at=body.get("timestamp") or data.get("timestamp"),
            request={"url": request.get("url"), "query": _query_text(request.get("query_string")),
                     "headers": _pairs(request.get("headers"))},
            messages=_messages(values, message),
            extra=data.get("extra") or {},
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

    def find_event(self, tags, bound, probe_id, accept_time=False):
        """As BugsinkApi.find_event, through the project's issues and each issue's events (full)."""
        query = " ".join("%s:%s" % (k, _quote_value(v)) for k, v in sorted(tags.items()))
        resp = self._get(self._project_path() + "/issues/", {"query": query, "statsPeriod": "24h"})
        if not (resp.ok and resp.status == 200):
            if self.transient(resp):
                return Lookup(PENDING, message=resp.error or "HTTP %d" % resp.status, evidence=self._evidence(resp))
            return self._failure(resp, "the issue search")
        issues = resp.json() if isinstance(resp.json(), list) else []
        now = datetime.now(timezone.utc)
        # start/end filter on the sender's timestamps: generous, the server's receive time decides below
        start = ((bound or now) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
        end = (now + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
        candidates, stale = [], 0
        for issue in issues[:10]:
            events = self._get("/api/0/organizations/%s/issues/%s/events/" % (
                quote(self.organization, safe=""), quote(str(issue.get("id")), safe="")),
                {"query": query, "full": "true", "start": start, "end": end})
            if not (events.ok and events.status == 200 and isinstance(events.json(), list)):
                continue
            for event in events.json()[:25]:
                received = parse_time(event.get("dateReceived") or event.get("dateCreated"))
                if bound is not None and received is not None and received < bound:
                    stale += 1
                    continue
                candidates.append((received or datetime.min.replace(tzinfo=timezone.utc), event))
        unmarked = 0
        for received, event in sorted(candidates, key=lambda c: c[0], reverse=True)[:5]:
            view = self.view(event)
            matched_by = self._accept(view, parse_time(view.received_at or view.created_at), bound, probe_id,
                                      accept_time)
            if matched_by:
                lookup = self.get_event(view.event_id)
                if lookup.state == FOUND:
                    lookup.matched_by = matched_by
                    return lookup
                continue
            unmarked += 1
        evidence = dict(self._evidence(resp), stale_events=stale, unmarked_events=unmarked)
        return Lookup(PENDING, message=self._pending_message(query, stale, unmarked), evidence=evidence)

    @staticmethod
    def view(body):
        tags = _tags_dict(body.get("tags"))
        values, request = [], {}
        for entry in body.get("entries") or []:
            if isinstance(entry, dict) and entry.get("type") == "exception":
                values.extend((entry.get("data") or {}).get("values") or [])
            elif isinstance(entry, dict) and entry.get("type") == "request":
                request = entry.get("data") or {}
        return EventView(
            event_id=str(body.get("eventID") or body.get("id") or ""),
            environment=tags.get("environment") or body.get("environment"),
            exceptions=_exceptions(values),
            contexts=body.get("contexts") or {},
            tags=tags,
            received_at=body.get("dateReceived"),
            created_at=body.get("dateCreated"),
            request={"url": request.get("url"), "query": _query_text(request.get("query")),
                     "headers": _pairs(request.get("headers"))},
            messages=_messages(values, body.get("message"), body.get("title")),
            extra=body.get("context") or {},
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
