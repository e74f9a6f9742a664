"""Routes of the workspace's structure: users, workspaces, projects, sections, tags, custom fields.

Custom fields (spec paths ``/custom_fields/{custom_field_gid}``, ``/workspaces/{workspace_gid}/custom_fields``,
``/projects/{project_gid}/custom_field_settings``) are read-only here: the seed defines them, tasks hold values.
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.asana.base import API_PREFIX, AsanaBase
from sandbox.asana.model import Project
from sandbox.core import ApiError, Principal

TAG_COLORS = frozenset(
    f"{shade}-{hue}"
    for shade in ("dark", "light")
    for hue in ("pink", "green", "blue", "red", "teal", "brown", "orange", "purple", "warm-gray")
)
"""The spec's TagBase ``color`` enum (or null); the spec documents no rule on a tag's name beyond being given."""


def workspace_rules() -> list[Rule]:
    """Return the rules of this module's handlers."""
    p = API_PREFIX
    return [
        Rule(f"{p}/users", endpoint="list_users", methods=["GET"]),
        Rule(f"{p}/users/<user_gid>", endpoint="get_user", methods=["GET"]),
        Rule(f"{p}/workspaces", endpoint="list_workspaces", methods=["GET"]),
        Rule(f"{p}/workspaces/<workspace_gid>", endpoint="get_workspace", methods=["GET"]),
        Rule(f"{p}/workspaces/<workspace_gid>/users", endpoint="list_workspace_users", methods=["GET"]),
        Rule(f"{p}/workspaces/<workspace_gid>/projects", endpoint="list_workspace_projects", methods=["GET"]),
        Rule(f"{p}/workspaces/<workspace_gid>/tags", endpoint="list_workspace_tags", methods=["GET"]),
        Rule(f"{p}/workspaces/<workspace_gid>/tags", endpoint="create_workspace_tag", methods=["POST"]),
        Rule(f"{p}/projects", endpoint="list_projects", methods=["GET"]),
        Rule(f"{p}/projects/<project_gid>", endpoint="get_project", methods=["GET"]),
        Rule(f"{p}/projects/<project_gid>/sections", endpoint="list_sections", methods=["GET"]),
        Rule(f"{p}/projects/<project_gid>/sections", endpoint="create_section", methods=["POST"]),
        Rule(
            f"{p}/projects/<project_gid>/custom_field_settings", endpoint="list_custom_field_settings", methods=["GET"]
        ),
        Rule(f"{p}/sections/<section_gid>", endpoint="get_section", methods=["GET"]),
        Rule(f"{p}/tags", endpoint="list_tags", methods=["GET"]),
        Rule(f"{p}/tags", endpoint="create_tag", methods=["POST"]),
        Rule(f"{p}/tags/<tag_gid>", endpoint="get_tag", methods=["GET"]),
        Rule(f"{p}/workspaces/<workspace_gid>/custom_fields", endpoint="list_workspace_custom_fields", methods=["GET"]),
        Rule(f"{p}/custom_fields/<custom_field_gid>", endpoint="get_custom_field", methods=["GET"]),
    ]


class WorkspaceRoutes(AsanaBase):
    """Handlers of the workspace's structure."""

    def list_users(self, request: Request, principal: Principal) -> Response:
        """GET /users?workspace=."""
        self.state.workspace_ref(self.require(request.args, "workspace"))
        return self.page(request, principal, list(self.state.users.values()))

    def get_user(self, request: Request, principal: Principal, user_gid: str) -> Response:
        """GET /users/{gid} (also ``me`` and an e-mail)."""
        return self.one(request, principal, self.state.user(user_gid, self.user_of(principal), "user"))

    def list_workspaces(self, request: Request, principal: Principal) -> Response:
        """GET /workspaces."""
        return self.page(request, principal, [self.state.workspace])

    def get_workspace(self, request: Request, principal: Principal, workspace_gid: str) -> Response:
        """GET /workspaces/{gid}."""
        return self.one(request, principal, self.state.workspace_ref(workspace_gid))

    def list_workspace_users(self, request: Request, principal: Principal, workspace_gid: str) -> Response:
        """GET /workspaces/{gid}/users."""
        self.state.workspace_ref(workspace_gid)
        return self.page(request, principal, list(self.state.users.values()))

    def _projects(self, request: Request, workspace_gid: str) -> list[Project]:
        self.state.workspace_ref(workspace_gid)
        archived = request.args.get("archived")
        if archived == "true":
            return []
        return list(self.state.projects.values())

    def list_workspace_projects(self, request: Request, principal: Principal, workspace_gid: str) -> Response:
        """GET /workspaces/{gid}/projects."""
        return self.page(request, principal, self._projects(request, workspace_gid))

    def list_projects(self, request: Request, principal: Principal) -> Response:
        """GET /projects?workspace=."""
        return self.page(request, principal, self._projects(request, self.require(request.args, "workspace")))

    def get_project(self, request: Request, principal: Principal, project_gid: str) -> Response:
        """GET /projects/{gid}."""
        return self.one(request, principal, self.state.project(project_gid))

    def list_sections(self, request: Request, principal: Principal, project_gid: str) -> Response:
        """GET /projects/{gid}/sections, in board order."""
        return self.page(request, principal, list(self.state.project(project_gid).sections))

    def create_section(self, request: Request, principal: Principal, project_gid: str) -> Response:
        """POST /projects/{gid}/sections (optionally before/after another section)."""
        project = self.state.project(project_gid)
        data = self.data(request)
        section = self.state.add_section(project, self.require(data, "name"))
        for key, shift in (("insert_before", 0), ("insert_after", 1)):
            if data.get(key) is not None:
                anchor = self.state.section(str(data[key]), key)
                if anchor.project is not project:
                    raise ApiError(400, f"{key}: Section is not in the given project")
                project.sections.remove(section)
                project.sections.insert(project.sections.index(anchor) + shift, section)
        project.modified_at = self.state.now()
        return self.one(request, principal, section, 201)

    def list_custom_field_settings(self, request: Request, principal: Principal, project_gid: str) -> Response:
        """GET /projects/{gid}/custom_field_settings: the fields added to the project, each with its definition."""
        return self.page(request, principal, list(self.state.project(project_gid).custom_field_settings))

    def list_workspace_custom_fields(self, request: Request, principal: Principal, workspace_gid: str) -> Response:
        """GET /workspaces/{gid}/custom_fields: every custom field definition of the workspace (compact)."""
        self.state.workspace_ref(workspace_gid)
        return self.page(request, principal, list(self.state.custom_fields.values()))

    def get_custom_field(self, request: Request, principal: Principal, custom_field_gid: str) -> Response:
        """GET /custom_fields/{gid}: the definition (``description`` is opt-in, as the spec's CustomFieldBase says)."""
        return self.one(request, principal, self.state.custom_field(custom_field_gid))

    def get_section(self, request: Request, principal: Principal, section_gid: str) -> Response:
        """GET /sections/{gid}."""
        return self.one(request, principal, self.state.section(section_gid))

    def list_tags(self, request: Request, principal: Principal) -> Response:
        """GET /tags?workspace=."""
        self.state.workspace_ref(self.require(request.args, "workspace"))
        return self.page(request, principal, list(self.state.tags.values()))

    def list_workspace_tags(self, request: Request, principal: Principal, workspace_gid: str) -> Response:
        """GET /workspaces/{gid}/tags."""
        self.state.workspace_ref(workspace_gid)
        return self.page(request, principal, list(self.state.tags.values()))

    def _create_tag(self, request: Request, principal: Principal, workspace_gid: str) -> Response:
        data = self.data(request)
        self.state.workspace_ref(workspace_gid)
        color = data.get("color")
        if color is not None and (not isinstance(color, str) or color not in TAG_COLORS):
            raise ApiError(400, f"color: Invalid value: {color}; use one of {', '.join(sorted(TAG_COLORS))} or null")
        tag = self.state.add_tag(self.require(data, "name"), str(color) if color else None, str(data.get("notes", "")))
        return self.one(request, principal, tag, 201)

    def create_tag(self, request: Request, principal: Principal) -> Response:
        """POST /tags ({"data": {"name", "workspace"}})."""
        return self._create_tag(request, principal, self.require(self.data(request), "workspace"))

    def create_workspace_tag(self, request: Request, principal: Principal, workspace_gid: str) -> Response:
        """POST /workspaces/{gid}/tags."""
        return self._create_tag(request, principal, workspace_gid)

    def get_tag(self, request: Request, principal: Principal, tag_gid: str) -> Response:
        """GET /tags/{gid}."""
        return self.one(request, principal, self.state.tag(tag_gid))
