"""Issue routes: create, read, edit, delete, transitions, comments, changelog and entity properties."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.core import JSON, ApiError, Principal
from sandbox.jira import custom
from sandbox.jira.base import JiraBase
from sandbox.jira.fields import EDITABLE, FieldReader, validation_error
from sandbox.jira.model import Issue
from sandbox.jira.render import Renderer, available, select_fields

COMMENT_EMPTY = "Comment body can not be empty!"


class IssueRoutes(JiraBase):
    """Handlers for issues and what hangs off them."""

    def issue_rules(self) -> list[Rule]:
        """The issue routes (the paged changelog resource exists on Cloud only)."""
        rules = [
            self.api_rule("/issue", "create_issue", ["POST"]),
            self.api_rule("/issue/<issue_id>", "get_issue", ["GET"]),
            self.api_rule("/issue/<issue_id>", "edit_issue", ["PUT"]),
            self.api_rule("/issue/<issue_id>", "delete_issue", ["DELETE"]),
            self.api_rule("/issue/<issue_id>/editmeta", "get_editmeta", ["GET"]),
            self.api_rule("/issue/<issue_id>/transitions", "get_transitions", ["GET"]),
            self.api_rule("/issue/<issue_id>/transitions", "do_transition", ["POST"]),
            self.api_rule("/issue/<issue_id>/comment", "list_comments", ["GET"]),
            self.api_rule("/issue/<issue_id>/comment", "add_comment", ["POST"]),
            self.api_rule("/issue/<issue_id>/comment/<comment_id>", "get_comment", ["GET"]),
            self.api_rule("/issue/<issue_id>/comment/<comment_id>", "edit_comment", ["PUT"]),
            self.api_rule("/issue/<issue_id>/comment/<comment_id>", "delete_comment", ["DELETE"]),
            self.api_rule("/issue/<issue_id>/properties", "list_properties", ["GET"]),
            self.api_rule("/issue/<issue_id>/properties/<property_key>", "get_property", ["GET"]),
            self.api_rule("/issue/<issue_id>/properties/<property_key>", "put_property", ["PUT"]),
            self.api_rule("/issue/<issue_id>/properties/<property_key>", "delete_property", ["DELETE"]),
        ]
        if self.cloud:
            rules.append(self.api_rule("/issue/<issue_id>/changelog", "get_changelog", ["GET"]))
        return rules

    # ----- issues -----------------------------------------------------------------------------------

    def create_issue(self, request: Request, principal: Principal, version: str) -> Response:
        """POST issue: 201 {id, key, self}, or 400 with every invalid field."""
        actor = self.viewer(principal)
        body = self.body_json(request)
        fields = dict(body.get("fields") or {}) if isinstance(body, dict) else {}
        errors: dict[str, str] = {}
        project_ref = fields.pop("project", None)
        project = None
        if not isinstance(project_ref, dict) or not (project_ref.get("key") or project_ref.get("id")):
            errors["project"] = "Specify a valid project ID or key"
        else:
            project = self.state.find_project(str(project_ref.get("key") or project_ref.get("id")))
            if project is None:
                errors["project"] = "valid project is required"
        if "issuetype" not in fields:
            errors["issuetype"] = "Specify an issue type"
        if "summary" not in fields:
            errors["summary"] = "You must specify a summary of the issue."
        if "status" in fields:
            errors["status"] = "Field 'status' cannot be set. It is not on the appropriate screen, or unknown."
            del fields["status"]
        reader = self.reader(version)
        changes = reader.read(fields, reader.editable(), errors)
        updates, raw_comments = reader.read_update(dict(body.get("update") or {}), changes, reader.editable(), errors)
        changes.update(updates)
        comments = [self._comment_body(reader, raw, errors) for raw in raw_comments]
        properties = self._create_properties(body.get("properties") if isinstance(body, dict) else None, errors)
        if errors or project is None:
            raise validation_error(errors)
        issue = self.service.create(actor, project.key, changes, properties)
        for comment in comments:
            self.service.add_comment(actor, issue, comment)
        api = self.renderer(principal, version).api
        return self.json({"id": issue.id, "key": issue.key, "self": f"{api}/issue/{issue.id}"}, status=201)

    @staticmethod
    def _create_properties(raw: JSON, errors: dict[str, str]) -> dict[str, JSON]:
        """Entity properties set in the create request (``properties: [{key, value}]``), as Jira allows."""
        if raw is None:
            return {}
        if not isinstance(raw, list) or not all(isinstance(p, dict) and isinstance(p.get("key"), str) for p in raw):
            errors["properties"] = "Properties must be a list of objects with a key and a value."
            return {}
        return {str(p["key"]): p.get("value") for p in raw}

    def get_issue(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """GET issue with ``fields``, ``expand`` and ``properties``."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        return self.json(self.issue_json(issue, self.renderer(principal, version), request, "*all"))

    def issue_json(self, issue: Issue, renderer: Renderer, request: Request, default_fields: str) -> JSON:
        """An issue as requested by ``fields``/``expand``/``properties`` query parameters."""
        body = renderer.issue(
            issue,
            select_fields(self.listed(request, "fields"), default_fields, self.state.custom_fields),
            self.listed(request, "expand"),
        )
        wanted = self.listed(request, "properties")
        if wanted:
            keys = issue.properties if "*all" in wanted else [k for k in wanted if k in issue.properties]
            body["properties"] = {key: issue.properties[key] for key in keys}
        return body

    def edit_issue(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """PUT issue: ``fields`` and ``update`` operations; a ``status`` field is ignored (204, unchanged)."""
        actor = self.viewer(principal)
        issue = self.service.issue(issue_id)
        body = self.body_json(request)
        body = body if isinstance(body, dict) else {}
        reader = self.reader(version)
        errors: dict[str, str] = {}
        changes = reader.read(dict(body.get("fields") or {}), reader.editable(), errors)
        current: dict[str, Any] = {name: getattr(issue, name) for name in EDITABLE}
        current |= {fid: issue.custom.get(fid, custom.empty(f)) for fid, f in self.state.custom_fields.items()}
        updates, raw_comments = reader.read_update(dict(body.get("update") or {}), current, reader.editable(), errors)
        changes.update(updates)
        comments = [self._comment_body(reader, raw, errors) for raw in raw_comments]
        if errors:
            raise validation_error(errors)
        self.service.update(actor, issue, changes, comments)
        if request.args.get("returnIssue") == "true":
            return self.json(self.issue_json(issue, self.renderer(principal, version), request, "*all"))
        return self.empty()

    def get_editmeta(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """GET issue/{key}/editmeta: the editable fields with schema, operations and ``allowedValues``.

        Spec: Get edit issue metadata (``IssueUpdateMetadata`` of ``FieldMetadata``). Select fields list their
        enabled options (``{self, value, id}``), ``priority`` and ``issuetype`` their values; where syncd reads a
        custom field's options on Server (no context API there).
        """
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        renderer = self.renderer(principal, version)
        fields: dict[str, JSON] = {}
        system = {
            "summary": ({"type": "string", "system": "summary"}, ["set"], None),
            "priority": (
                {"type": "priority", "system": "priority"}, ["set"],
                [renderer.priority(name) for _, name in self.state.priorities],
            ),
            "labels": ({"type": "array", "items": "string", "system": "labels"}, ["add", "set", "remove"], None),
            "duedate": ({"type": "date", "system": "duedate"}, ["set"], None),
            "assignee": ({"type": "user", "system": "assignee"}, ["set"], None),
        }  # fmt: skip
        for name, (field_schema, operations, allowed) in system.items():
            fields[name] = {"required": name == "summary", "schema": field_schema, "name": renderer.field_name(name)}
            fields[name] |= {"key": name, "operations": operations}
            if allowed is not None:
                fields[name]["allowedValues"] = allowed
        for fid, definition in self.state.custom_fields.items():
            entry: dict[str, JSON] = {
                "required": False, "schema": custom.schema(definition), "name": definition.name, "key": fid,
                "operations": ["add", "set", "remove"] if definition.kind == "labels" else ["set"],
            }  # fmt: skip
            if definition.kind in ("select", "multiselect"):
                entry["allowedValues"] = [
                    custom.option_json(renderer.api, o) for o in definition.options if not o.disabled
                ]
            fields[fid] = entry
        del issue
        return self.json({"fields": fields})

    def delete_issue(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """DELETE issue: 204, then 404; an issue with subtasks only with ``deleteSubtasks=true`` (else 400)."""
        issue = self.service.issue(issue_id)
        # The spec's enum is "true"/"false", but python-jira's Issue.delete sends Python's "False"/"True" and Jira
        # takes them: read as a Java boolean parameter is ("true" in any case), anything else is false.
        subtasks = request.args.get("deleteSubtasks", "false").lower() == "true"
        self.service.delete(self.viewer(principal), issue, subtasks=subtasks)
        return self.empty()

    # ----- transitions ------------------------------------------------------------------------------

    def get_transitions(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """GET transitions available from the issue's status (``expand=transitions.fields`` adds screens)."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        renderer = self.renderer(principal, version)
        with_fields = "transitions.fields" in self.listed(request, "expand")
        wanted = request.args.get("transitionId")
        transitions = [t for t in available(self.state, issue) if wanted in (None, t.id)]
        return self.json(
            {
                "expand": "transitions",
                "transitions": [renderer.transition(t, with_fields=with_fields) for t in transitions],
            }
        )

    def do_transition(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """POST transitions: 204; 400 when not available from the status or a screen field is missing."""
        actor = self.viewer(principal)
        issue = self.service.issue(issue_id)
        body = self.body_json(request)
        body = body if isinstance(body, dict) else {}
        ident = (body.get("transition") or {}).get("id") if isinstance(body.get("transition"), dict) else None
        if ident is None:
            raise ApiError(400, "Missing 'transition' identifier")
        transition = self.service.find_transition(issue, str(ident))
        reader = self.reader(version)
        errors: dict[str, str] = {}
        changes = reader.read(dict(body.get("fields") or {}), transition.requires, errors)
        current: dict[str, Any] = {name: getattr(issue, name) for name in transition.requires}
        updates, raw_comments = reader.read_update(dict(body.get("update") or {}), current, transition.requires, errors)
        changes.update(updates)
        comments = [self._comment_body(reader, raw, errors) for raw in raw_comments]
        if errors:
            raise validation_error(errors)
        self.service.transition(actor, issue, transition, changes)
        for comment in comments:
            self.service.add_comment(actor, issue, comment)
        return self.empty()

    # ----- comments ---------------------------------------------------------------------------------

    @staticmethod
    def _comment_body(reader: FieldReader, raw: JSON, errors: dict[str, str] | None = None) -> JSON:
        collected: dict[str, str] = {} if errors is None else errors
        body = reader.rich("comment", raw, collected)
        if body is None and "comment" not in collected:
            collected["comment"] = COMMENT_EMPTY
        if errors is None and collected:
            raise validation_error(collected)
        return body

    def list_comments(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """GET comments, paged with startAt/maxResults, oldest first unless ``orderBy=-created``."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        start = self.int_arg(request, "startAt", 0)
        limit = self.int_arg(request, "maxResults", 5000)
        page = self.renderer(principal, version).comment_page(issue, 0, len(issue.comments))
        if request.args.get("orderBy", "created") == "-created":
            page["comments"].reverse()
        page["comments"] = page["comments"][start : start + limit]
        page.update({"startAt": start, "maxResults": limit})
        return self.json(page)

    def add_comment(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """POST comment: 201 with the comment."""
        actor = self.viewer(principal)
        issue = self.service.issue(issue_id)
        body = self.body_json(request)
        raw = body.get("body") if isinstance(body, dict) else None
        comment = self.service.add_comment(actor, issue, self._comment_body(self.reader(version), raw))
        return self.json(self.renderer(principal, version).comment(issue, comment), status=201)

    def get_comment(
        self, request: Request, principal: Principal, version: str, issue_id: str, comment_id: str
    ) -> Response:
        """GET one comment."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        comment = self.service.find_comment(issue, comment_id)
        return self.json(self.renderer(principal, version).comment(issue, comment))

    def edit_comment(
        self, request: Request, principal: Principal, version: str, issue_id: str, comment_id: str
    ) -> Response:
        """PUT one comment's body: 200 with the comment."""
        actor = self.viewer(principal)
        issue = self.service.issue(issue_id)
        comment = self.service.find_comment(issue, comment_id)
        body = self.body_json(request)
        raw = body.get("body") if isinstance(body, dict) else None
        self.service.edit_comment(actor, issue, comment, self._comment_body(self.reader(version), raw))
        return self.json(self.renderer(principal, version).comment(issue, comment))

    def delete_comment(
        self, request: Request, principal: Principal, version: str, issue_id: str, comment_id: str
    ) -> Response:
        """DELETE one comment: 204."""
        actor = self.viewer(principal)
        issue = self.service.issue(issue_id)
        self.service.delete_comment(actor, issue, self.service.find_comment(issue, comment_id))
        return self.empty()

    # ----- changelog --------------------------------------------------------------------------------

    def get_changelog(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """GET changelog (Cloud): oldest first, paged with startAt/maxResults."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        start = self.int_arg(request, "startAt", 0)
        # The spec gives maxResults a default of 100 and no maximum: 100 a page at most is the strict reading.
        limit = min(self.int_arg(request, "maxResults", 100), 100)
        renderer = self.renderer(principal, version)
        values = issue.histories[start : start + limit]
        url = f"{renderer.api}/issue/{issue.key}/changelog"
        is_last = start + limit >= len(issue.histories)
        body: dict[str, JSON] = {
            "self": f"{url}?maxResults={limit}&startAt={start}",
            "maxResults": limit,
            "startAt": start,
            "total": len(issue.histories),
            "isLast": is_last,
            "values": [renderer.history(h) for h in values],
        }
        if not is_last:
            body["nextPage"] = f"{url}?maxResults={limit}&startAt={start + limit}"
        return self.json(body)

    # ----- entity properties ------------------------------------------------------------------------

    def list_properties(self, request: Request, principal: Principal, version: str, issue_id: str) -> Response:
        """GET properties: the keys."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        api = self.renderer(principal, version).api
        keys = [{"self": f"{api}/issue/{issue.id}/properties/{key}", "key": key} for key in issue.properties]
        return self.json({"keys": keys})

    def get_property(
        self, request: Request, principal: Principal, version: str, issue_id: str, property_key: str
    ) -> Response:
        """GET one property: {key, value}."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        if property_key not in issue.properties:
            raise ApiError(404, f"The property with key '{property_key}' does not exist.")
        return self.json({"key": property_key, "value": issue.properties[property_key]})

    def put_property(
        self, request: Request, principal: Principal, version: str, issue_id: str, property_key: str
    ) -> Response:
        """PUT one property: 201 when new, 200 when replaced."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        if not request.data.strip():
            raise ApiError(400, "The property value cannot be empty.")
        if len(property_key) > 255:
            raise ApiError(400, "The property key cannot be longer than 255 characters.")
        created = self.service.set_property(issue, property_key, self.body_json(request))
        return self.empty(201 if created else 200)

    def delete_property(
        self, request: Request, principal: Principal, version: str, issue_id: str, property_key: str
    ) -> Response:
        """DELETE one property: 204, or 404 when absent."""
        self.viewer(principal)
        issue = self.service.issue(issue_id)
        if property_key not in issue.properties:
            raise ApiError(404, f"The property with key '{property_key}' does not exist.")
        del issue.properties[property_key]
        return self.empty()
