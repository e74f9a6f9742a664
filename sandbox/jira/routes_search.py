"""Search and admin-webhook routes.

Cloud: ``/search`` is gone (410 with Atlassian's migration message) and ``/search/jql`` pages by an opaque
``nextPageToken`` with ``isLast`` and no total; it is eventually consistent (``search_lag_s``), unless the caller
names the issue in ``reconcileIssues``. Server/Data Center: ``/search`` pages by startAt/maxResults with a total.
"""

from __future__ import annotations

import base64
import binascii
import json
from zoneinfo import ZoneInfo

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import JSON, ApiError, Principal
from sandbox.jira.base import JiraBase
from sandbox.jira.jql import JqlError, parse
from sandbox.jira.jqleval import Context, compile_query
from sandbox.jira.model import Issue
from sandbox.jira.render import SEARCH_CHANGELOG, Renderer, select_fields

SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)
UNBOUNDED = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
WEBHOOKS = "/rest/webhooks/1.0/webhook"
MAX_PROPERTIES = 5


def _strings(value: JSON) -> list[str]:
    """A list-or-comma-string parameter from a JSON body."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [part for item in items for part in str(item).split(",") if part]


class SearchRoutes(JiraBase):
    """Handlers for JQL search and admin webhooks."""

    def search_rules(self) -> list[Rule]:
        """The search and webhook routes."""
        rules = [
            self.api_rule("/search", "search", ["GET", "POST"]),
            Rule(WEBHOOKS, endpoint="register_webhook", methods=["POST"]),
            Rule(WEBHOOKS, endpoint="list_webhooks", methods=["GET"]),
            Rule(f"{WEBHOOKS}/<int:webhook_id>", endpoint="get_webhook", methods=["GET"]),
            Rule(f"{WEBHOOKS}/<int:webhook_id>", endpoint="delete_webhook", methods=["DELETE"]),
        ]
        if self.cloud:
            rules.append(self.api_rule("/search/jql", "search_jql", ["GET", "POST"]))
        return rules

    def _params(self, request: Request) -> dict[str, JSON]:
        """Search parameters from the query string (GET) or the JSON body (POST)."""
        if request.method == "POST":
            body = self.body_json(request)
            return body if isinstance(body, dict) else {}
        params: dict[str, JSON] = {key: request.args.get(key) for key in request.args}
        for key in ("fields", "expand", "properties", "reconcileIssues"):
            params[key] = request.args.getlist(key) or None
        return params

    def _matches(self, principal: Principal, jql: str, *, bounded: bool) -> list[Issue]:
        viewer = self.viewer(principal)
        try:
            query = parse(jql)
            if bounded and query.where is None:
                raise JqlError([UNBOUNDED])
            zone = ZoneInfo(self.state.users[viewer].timezone)
            indexed = frozenset(self.indexed_properties)
            context = Context(self.state, self.clock.now(), zone, viewer, self.cloud, indexed)
            predicate, sort = compile_query(query, context)
        except JqlError as error:
            raise ApiError(400, error.messages[0], detail={"errors": {}, "messages": error.messages}) from None
        return sort([issue for issue in self.state.issues.values() if predicate(issue)])

    @staticmethod
    def _int(params: dict[str, JSON], name: str, default: int) -> int:
        value = params.get(name)
        if value is None or value == "":
            return default
        try:
            return int(str(value))
        except ValueError:
            raise ApiError(400, f"The '{name}' parameter must be a number.") from None

    @staticmethod
    def _wanted_properties(params: dict[str, JSON]) -> list[str]:
        """The ``properties`` parameter: at most 5 keys, per the spec ("A list of up to 5 issue properties").

        The spec says no more; refusing a sixth with 400 is the unfavourable reading (message not verified).
        ``*all`` is not documented for searches, so it is read as a plain key, which no issue has.
        """
        wanted = _strings(params.get("properties"))
        if len(wanted) > MAX_PROPERTIES:
            raise ApiError(400, f"The maximum number of issue properties to return is {MAX_PROPERTIES}.")
        return wanted

    @classmethod
    def _render(
        cls, renderer: Renderer, issues: list[Issue], params: dict[str, JSON], default_fields: str
    ) -> list[JSON]:
        fields = select_fields(_strings(params.get("fields")), default_fields, renderer.state.custom_fields)
        expand = _strings(params.get("expand"))
        wanted = cls._wanted_properties(params)
        rendered = []
        for issue in issues:
            body = renderer.issue(issue, fields, expand, changelog_limit=SEARCH_CHANGELOG)
            if wanted:
                body["properties"] = {k: issue.properties[k] for k in wanted if k in issue.properties}
            rendered.append(body)
        return rendered

    def search(self, request: Request, principal: Principal, version: str) -> Response:
        """GET/POST search: 410 Gone on Cloud; startAt/maxResults/total paging on Server."""
        if self.cloud:
            raise ApiError(410, SEARCH_REMOVED)
        params = self._params(request)
        issues = self._matches(principal, str(params.get("jql") or ""), bounded=False)
        start = max(0, self._int(params, "startAt", 0))
        limit = min(max(0, self._int(params, "maxResults", 50)), 1000)
        renderer = self.renderer(principal, version)
        page = self._render(renderer, issues[start : start + limit], params, "*navigable")
        return self.json(
            {"expand": "schema,names", "startAt": start, "maxResults": limit, "total": len(issues), "issues": page}
        )

    def search_jql(self, request: Request, principal: Principal, version: str) -> Response:
        """GET/POST search/jql (Cloud): nextPageToken paging, isLast, no total; recent issues may lag."""
        params = self._params(request)
        jql = str(params.get("jql") or "")
        issues = self._matches(principal, jql, bounded=True)
        reconcile = {str(i) for i in _strings(params.get("reconcileIssues"))}
        if self.search_lag_s > 0:
            now = self.clock.now()
            issues = [i for i in issues if (now - i.created).total_seconds() >= self.search_lag_s or i.id in reconcile]
        start = self._decode_token(params.get("nextPageToken"), jql)
        limit = min(max(1, self._int(params, "maxResults", 50)), 5000)
        renderer = self.renderer(principal, version)
        body: dict[str, JSON] = {"issues": self._render(renderer, issues[start : start + limit], params, "id")}
        is_last = start + limit >= len(issues)
        if not is_last:
            body["nextPageToken"] = self._encode_token(start + limit, jql)
        body["isLast"] = is_last
        return self.json(body)

    @staticmethod
    def _encode_token(offset: int, jql: str) -> str:
        raw = json.dumps({"o": offset, "q": jql}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_token(token: JSON, jql: str) -> int:
        if not token:
            return 0
        try:
            text = str(token)
            decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if decoded["q"] == jql:
                return int(decoded["o"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            pass
        raise ApiError(400, "The provided next page token is invalid or expired.")

    # ----- admin webhooks ---------------------------------------------------------------------------

    def register_webhook(self, request: Request, principal: Principal) -> Response:
        """POST webhook: 201 with the registration."""
        webhook = self.hub.register(self.body_json(request), self.viewer(principal))
        return self.json(self.hub.describe(webhook), status=201)

    def list_webhooks(self, request: Request, principal: Principal) -> Response:
        """GET webhooks."""
        self.viewer(principal)
        return self.json([self.hub.describe(w) for w in self.state.webhooks.values()])

    def get_webhook(self, request: Request, principal: Principal, webhook_id: int) -> Response:
        """GET one webhook."""
        self.viewer(principal)
        if webhook_id not in self.state.webhooks:
            raise ApiError(404, f"Webhook with id {webhook_id} does not exist.")
        return self.json(self.hub.describe(self.state.webhooks[webhook_id]))

    def delete_webhook(self, request: Request, principal: Principal, webhook_id: int) -> Response:
        """DELETE one webhook: 204."""
        self.viewer(principal)
        if self.state.webhooks.pop(webhook_id, None) is None:
            raise ApiError(404, f"Webhook with id {webhook_id} does not exist.")
        return self.empty()
