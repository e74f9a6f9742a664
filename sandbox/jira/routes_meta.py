"""Site metadata routes: serverInfo, myself, users, statuses, priorities, fields, resolutions, types, projects."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import JSON, ApiError, Principal
from sandbox.jira import custom
from sandbox.jira.base import JiraBase
from sandbox.jira.model import RESOLUTIONS, CustomField, Project, User
from sandbox.jira.render import ALL_FIELDS, FIELD_NAMES, NOT_NAVIGABLE, jira_time

CLOUD_VERSION = ("1001.0.0-SNAPSHOT", [1001, 0, 0], 100287)
SERVER_VERSION = ("9.12.2", [9, 12, 2], 9120002)
FIELD_TYPES = {
    "summary": "string",
    "description": "string",
    "status": "status",
    "assignee": "user",
    "reporter": "user",
    "creator": "user",
    "priority": "priority",
    "duedate": "date",
    "labels": "array",
    "created": "datetime",
    "updated": "datetime",
    "issuetype": "issuetype",
    "project": "project",
    "resolution": "resolution",
    "resolutiondate": "datetime",
    "comment": "comments-page",
}
CLAUSES = {
    "issuetype": ["issuetype", "type"],
    "resolutiondate": ["resolutiondate", "resolved"],
    "duedate": ["due", "duedate"],
}


class MetaRoutes(JiraBase):
    """Handlers for the read-only metadata of the site."""

    def meta_rules(self) -> list[Rule]:
        """The metadata routes."""
        return [
            self.api_rule("/serverInfo", "server_info", ["GET"]),
            self.api_rule("/myself", "myself", ["GET"]),
            self.api_rule("/user/search", "user_search", ["GET"]),
            self.api_rule("/user/assignable/search", "assignable_search", ["GET"]),
            self.api_rule("/user", "get_user", ["GET"]),
            self.api_rule("/status", "list_statuses", ["GET"]),
            self.api_rule("/project/<project_id>/statuses", "project_statuses", ["GET"]),
            self.api_rule("/priority", "list_priorities", ["GET"]),
            self.api_rule("/field", "list_fields", ["GET"]),
            self.api_rule("/field/<field_id>/context", "list_field_contexts", ["GET"]),
            self.api_rule("/field/<field_id>/context/<context_id>/option", "list_field_options", ["GET"]),
            self.api_rule("/resolution", "list_resolutions", ["GET"]),
            self.api_rule("/issuetype", "list_issuetypes", ["GET"]),
            self.api_rule("/project", "list_projects", ["GET"]),
            self.api_rule("/project/<project_id>", "get_project", ["GET"]),
        ]

    def server_info(self, request: Request, principal: Principal, version: str) -> Response:
        """GET serverInfo (anonymous callers allowed, as in Jira)."""
        name, numbers, build = CLOUD_VERSION if self.cloud else SERVER_VERSION
        renderer = self.renderer(principal, version)
        return self.json(
            {
                "baseUrl": self.url,
                "version": name,
                "versionNumbers": numbers,
                "deploymentType": "Cloud" if self.cloud else "Server",
                "buildNumber": build,
                "buildDate": "2026-11-02T00:00:00.000+0000",
                "serverTime": jira_time(self.clock.now(), renderer.zone),
                "scmInfo": "5f1c0b0e5a8d5c3c2f9d7c4a1b2e3f4a5b6c7d8e",
                "serverTitle": "Jira",
            }
        )

    def myself(self, request: Request, principal: Principal, version: str) -> Response:
        """GET myself."""
        body = self.renderer(principal, version).user(self.viewer(principal), full=True)
        body.update({"groups": {"size": 1, "items": []}, "applicationRoles": {"size": 1, "items": []}})
        body["expand"] = "groups,applicationRoles"
        return self.json(body)

    def user_search(self, request: Request, principal: Principal, version: str) -> Response:
        """GET user/search: ``query`` on Cloud, ``username`` on Server; prefix match on names and e-mails."""
        self.viewer(principal)
        parameter = "query" if self.cloud else "username"
        text = (request.args.get(parameter) or "").strip().lower()
        if not text:
            message = (
                "One of 'query' or 'accountId' query parameters must be provided."
                if self.cloud
                else "The username query parameter was not provided"
            )
            raise ApiError(400, message)
        start = self.int_arg(request, "startAt", 0)
        limit = self.int_arg(request, "maxResults", 50)
        found = [user for user in self.state.users.values() if self._user_matches(user, text)]
        renderer = self.renderer(principal, version)
        return self.json([renderer.user(user.email) for user in found[start : start + limit]])

    def assignable_search(self, request: Request, principal: Principal, version: str) -> Response:
        """GET user/assignable/search: people who can be assigned in ``project`` (or ``issueKey``'s project)."""
        self.viewer(principal)
        project_ref = request.args.get("project")
        issue_ref = request.args.get("issueKey")
        if not project_ref and not issue_ref:
            raise ApiError(400, "A project or issue key must be specified.")
        if project_ref and self.state.find_project(project_ref) is None:
            raise ApiError(404, f"Project '{project_ref}' not found.")
        if issue_ref and self.state.find_issue(issue_ref) is None:
            raise ApiError(404, "Issue does not exist or you do not have permission to see it.")
        parameter = "query" if self.cloud else "username"
        text = (request.args.get(parameter) or "").strip().lower()
        start = self.int_arg(request, "startAt", 0)
        limit = self.int_arg(request, "maxResults", 50)
        # Every seeded person belongs to every project of the sandbox, so all may be assigned.
        found = [user for user in self.state.users.values() if not text or self._user_matches(user, text)]
        renderer = self.renderer(principal, version)
        return self.json([renderer.user(user.email) for user in found[start : start + limit]])

    def _user_matches(self, user: User, text: str) -> bool:
        words = [user.display_name.lower(), *user.display_name.lower().split()]
        if not self.cloud:
            words.append(user.username.lower())
        if self.cloud and user.email in self.hidden_emails:
            return any(w.startswith(text) for w in words) or user.email.lower() == text
        return any(w.startswith(text) for w in words) or user.email.lower().startswith(text)

    def get_user(self, request: Request, principal: Principal, version: str) -> Response:
        """GET user by ``accountId`` (Cloud) or ``username``/``key`` (Server)."""
        self.viewer(principal)
        if self.cloud:
            ident = request.args.get("accountId")
            if not ident:
                raise ApiError(400, "The accountId query parameter needs to be provided.")
            user = self.state.user_by_account_id(ident)
            missing = "Specified user does not exist or you do not have required permissions"
        else:
            ident = request.args.get("username") or request.args.get("key")
            if not ident:
                raise ApiError(400, "Either the 'username' or the 'key' query parameters need to be provided")
            user = self.state.user_by_name(ident)
            missing = f"The user named '{ident}' does not exist"
        if user is None:
            raise ApiError(404, missing)
        return self.json(self.renderer(principal, version).user(user.email, full=True))

    def list_statuses(self, request: Request, principal: Principal, version: str) -> Response:
        """GET status: every status of the site."""
        renderer = self.renderer(principal, version)
        return self.json([renderer.status(name) for name in self.state.statuses])

    def project_statuses(self, request: Request, principal: Principal, version: str, project_id: str) -> Response:
        """GET project/{key}/statuses: the statuses per issue type."""
        project = self._project(project_id)
        renderer = self.renderer(principal, version)
        return self.json(
            [
                {
                    "self": f"{renderer.api}/issuetype/{tid}",
                    "id": tid,
                    "name": name,
                    "subtask": False,
                    "statuses": [renderer.status(status) for status in project.statuses],
                }
                for tid, name in self.state.issuetypes
            ]
        )

    def list_priorities(self, request: Request, principal: Principal, version: str) -> Response:
        """GET priority."""
        renderer = self.renderer(principal, version)
        colors = ["#d04437", "#f15C75", "#f79232", "#707070", "#999999"]
        return self.json(
            [
                {**renderer.priority(name), "statusColor": colors[index % len(colors)], "description": name}
                for index, (_, name) in enumerate(self.state.priorities)
            ]
        )

    def list_fields(self, request: Request, principal: Principal, version: str) -> Response:
        """GET field: the system fields the site has."""
        return self.json(
            [
                {
                    "id": name,
                    "key": name,
                    "name": FIELD_NAMES[name],
                    "custom": False,
                    "orderable": name not in ("created", "updated", "creator", "resolutiondate", "status"),
                    "navigable": name not in NOT_NAVIGABLE,
                    "searchable": True,
                    "clauseNames": CLAUSES.get(name, [name]),
                    "schema": {"type": FIELD_TYPES[name], "system": name},
                }
                for name in ALL_FIELDS
            ]
            + [custom.field_details(definition) for definition in self.state.custom_fields.values()]
        )

    def _custom_field(self, field_id: str) -> CustomField:
        definition = self.state.custom_fields.get(field_id)
        if definition is None:
            raise ApiError(404, "The custom field was not found.")
        return definition

    def list_field_contexts(self, request: Request, principal: Principal, version: str, field_id: str) -> Response:
        """GET field/{fieldId}/context (Cloud): the field's one global context, for every issue type.

        Spec: Get custom field contexts (``PageBeanCustomFieldContext``). Jira Server has no such resource (404).
        """
        self.viewer(principal)
        if not self.cloud:
            raise ApiError(404, "null for uri: " + request.url)
        definition = self._custom_field(field_id)
        context = {
            "id": definition.context_id, "name": f"Default Configuration Scheme for {definition.name}",
            "description": "Default configuration scheme generated by Jira", "isGlobalContext": True,
            "isAnyIssueType": True,
        }  # fmt: skip
        return self.json(self._page(request, [context]))

    def list_field_options(
        self, request: Request, principal: Principal, version: str, field_id: str, context_id: str
    ) -> Response:
        """GET field/{fieldId}/context/{contextId}/option (Cloud): the options, disabled ones included.

        Spec: Get custom field options (context) (``PageBeanCustomFieldContextOption``); a field without options
        answers 400 as Jira does for a field type that does not support them.
        """
        self.viewer(principal)
        if not self.cloud:
            raise ApiError(404, "null for uri: " + request.url)
        definition = self._custom_field(field_id)
        if context_id != definition.context_id:
            raise ApiError(404, "The context was not found.")
        if definition.kind not in ("select", "multiselect"):
            raise ApiError(400, "Options are not supported for this custom field type.")
        options = [{"id": o.id, "value": o.value, "disabled": o.disabled} for o in definition.options]
        return self.json(self._page(request, options))

    def _page(self, request: Request, values: list[dict[str, JSON]]) -> dict[str, JSON]:
        start = self.int_arg(request, "startAt", 0)
        limit = self.int_arg(request, "maxResults", 100)
        chosen = values[start : start + limit]
        return {
            "maxResults": limit, "startAt": start, "total": len(values), "isLast": start + limit >= len(values),
            "values": list(chosen),
        }  # fmt: skip

    def list_resolutions(self, request: Request, principal: Principal, version: str) -> Response:
        """GET resolution."""
        renderer = self.renderer(principal, version)
        return self.json([renderer.resolution(name) for _, name, _ in RESOLUTIONS])

    def list_issuetypes(self, request: Request, principal: Principal, version: str) -> Response:
        """GET issuetype."""
        renderer = self.renderer(principal, version)
        return self.json([renderer.issuetype(name) for _, name in self.state.issuetypes])

    def list_projects(self, request: Request, principal: Principal, version: str) -> Response:
        """GET project: every project, in full."""
        self.viewer(principal)
        renderer = self.renderer(principal, version)
        return self.json([renderer.project(key, full=True) for key in self.state.projects])

    def get_project(self, request: Request, principal: Principal, version: str, project_id: str) -> Response:
        """GET project/{projectIdOrKey}."""
        self.viewer(principal)
        project = self._project(project_id)
        return self.json(self.renderer(principal, version).project(project.key, full=True))

    def _project(self, project_id: str) -> Project:
        project = self.state.find_project(project_id)
        if project is None:
            raise ApiError(404, f"No project could be found with key '{project_id}'.")
        return project
