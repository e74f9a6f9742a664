"""Routes of tasks and their stories: listing by container, CRUD, section moves, projects, tags, comments."""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.asana import edits
from sandbox.asana.base import API_PREFIX, AsanaBase
from sandbox.asana.model import Task
from sandbox.asana.state import parse_datetime
from sandbox.core import ApiError, Principal


def task_rules() -> list[Rule]:
    """Return the rules of this module's handlers."""
    p = API_PREFIX
    rules = [
        ("/tasks", "list_tasks", "GET"),
        ("/tasks", "create_task", "POST"),
        ("/tasks/<task_gid>", "get_task", "GET"),
        ("/tasks/<task_gid>", "update_task", "PUT"),
        ("/tasks/<task_gid>", "delete_task", "DELETE"),
        ("/tasks/<task_gid>/addProject", "add_project", "POST"),
        ("/tasks/<task_gid>/removeProject", "remove_project", "POST"),
        ("/tasks/<task_gid>/addTag", "add_tag", "POST"),
        ("/tasks/<task_gid>/removeTag", "remove_tag", "POST"),
        ("/tasks/<task_gid>/tags", "list_task_tags", "GET"),
        ("/tasks/<task_gid>/stories", "list_stories", "GET"),
        ("/tasks/<task_gid>/stories", "create_story", "POST"),
        ("/stories/<story_gid>", "get_story", "GET"),
        ("/stories/<story_gid>", "update_story", "PUT"),
        ("/stories/<story_gid>", "delete_story", "DELETE"),
        ("/projects/<project_gid>/tasks", "list_project_tasks", "GET"),
        ("/sections/<section_gid>/tasks", "list_section_tasks", "GET"),
        ("/sections/<section_gid>/addTask", "add_task_to_section", "POST"),
        ("/tags/<tag_gid>/tasks", "list_tag_tasks", "GET"),
    ]
    return [Rule(p + path, endpoint=endpoint, methods=[method]) for path, endpoint, method in rules]


class TaskRoutes(AsanaBase):
    """Handlers of tasks and stories."""

    def _filtered(self, request: Request, tasks: Iterable[Task]) -> list[Task]:
        """Apply ``modified_since`` and ``completed_since`` ("now": incomplete tasks only)."""
        chosen = list(tasks)
        modified = request.args.get("modified_since")
        if modified:
            since = parse_datetime(modified, "modified_since")
            chosen = [t for t in chosen if since is None or t.modified_at >= since]
        completed = request.args.get("completed_since")
        if completed:
            cutoff = None if completed == "now" else parse_datetime(completed, "completed_since")
            chosen = [
                t
                for t in chosen
                if not t.completed or (cutoff is not None and t.completed_at is not None and t.completed_at >= cutoff)
            ]
        return chosen

    def list_tasks(self, request: Request, principal: Principal) -> Response:
        """GET /tasks: by project, section, tag, or assignee + workspace."""
        args = request.args
        if args.get("project"):
            tasks: Iterable[Task] = self.state.project(args["project"]).task_order
        elif args.get("section"):
            section = self.state.section(args["section"])
            project = section.project
            tasks = [t for t in project.task_order if (m := t.membership(project)) is not None and m.section is section]
        elif args.get("tag"):
            tag = self.state.tag(args["tag"])
            tasks = [t for t in self.state.tasks.values() if tag in t.tags]
        elif args.get("assignee") and args.get("workspace"):
            self.state.workspace_ref(args["workspace"])
            assignee = self.state.user(args["assignee"], self.user_of(principal), "assignee")
            tasks = [t for t in self.state.tasks.values() if t.assignee is assignee]
        else:
            raise ApiError(
                400, "Must specify exactly one of project, tag, section, user task list, or assignee + workspace"
            )
        return self.page(request, principal, self._filtered(request, tasks))

    def list_project_tasks(self, request: Request, principal: Principal, project_gid: str) -> Response:
        """GET /projects/{gid}/tasks."""
        return self.page(request, principal, self._filtered(request, self.state.project(project_gid).task_order))

    def list_section_tasks(self, request: Request, principal: Principal, section_gid: str) -> Response:
        """GET /sections/{gid}/tasks, in the project's order."""
        section = self.state.section(section_gid)
        project = section.project
        tasks = [t for t in project.task_order if (m := t.membership(project)) is not None and m.section is section]
        return self.page(request, principal, self._filtered(request, tasks))

    def list_tag_tasks(self, request: Request, principal: Principal, tag_gid: str) -> Response:
        """GET /tags/{gid}/tasks (spec getTasksForTag): the tasks carrying the tag."""
        tag = self.state.tag(tag_gid)
        return self.page(
            request, principal, self._filtered(request, [t for t in self.state.tasks.values() if tag in t.tags])
        )

    def create_task(self, request: Request, principal: Principal) -> Response:
        """POST /tasks."""
        task = edits.create_task(self.state, self.user_of(principal), self.data(request), app=principal.key)
        return self.one(request, principal, task, 201)

    def get_task(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """GET /tasks/{gid} (or ``external:<gid>``, for the OAuth app that set it)."""
        return self.one(request, principal, self.task_of(principal, task_gid))

    def update_task(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """PUT /tasks/{gid}."""
        task = self.task_of(principal, task_gid)
        edits.update_task(self.state, self.user_of(principal), task, self.data(request), app=principal.key)
        return self.one(request, principal, task)

    def delete_task(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """DELETE /tasks/{gid}: answers an empty data object."""
        edits.delete_task(self.state, self.user_of(principal), self.task_of(principal, task_gid))
        return self.respond(request, {"data": {}})

    def add_task_to_section(self, request: Request, principal: Principal, section_gid: str) -> Response:
        """POST /sections/{gid}/addTask: how a task changes status in Asana."""
        section = self.state.section(section_gid)
        data = self.data(request)
        task = self.task_of(principal, self.require(data, "task"))
        edits.move_to_section(self.state, self.user_of(principal), task, section, data, app=principal.key)
        return self.respond(request, {"data": {}})

    def add_project(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """POST /tasks/{gid}/addProject."""
        task = self.task_of(principal, task_gid)
        data = self.data(request)
        project = self.state.project(self.require(data, "project"))
        edits.add_project(self.state, self.user_of(principal), task, project, data, app=principal.key)
        return self.respond(request, {"data": {}})

    def remove_project(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """POST /tasks/{gid}/removeProject."""
        task = self.task_of(principal, task_gid)
        project = self.state.project(self.require(self.data(request), "project"))
        edits.remove_project(self.state, self.user_of(principal), task, project)
        return self.respond(request, {"data": {}})

    def add_tag(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """POST /tasks/{gid}/addTag."""
        task = self.task_of(principal, task_gid)
        edits.add_tag(
            self.state, self.user_of(principal), task, self.state.tag(self.require(self.data(request), "tag"))
        )
        return self.respond(request, {"data": {}})

    def remove_tag(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """POST /tasks/{gid}/removeTag."""
        task = self.task_of(principal, task_gid)
        tag = self.state.tag(self.require(self.data(request), "tag"))
        edits.remove_tag(self.state, self.user_of(principal), task, tag)
        return self.respond(request, {"data": {}})

    def list_task_tags(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """GET /tasks/{gid}/tags."""
        return self.page(request, principal, list(self.task_of(principal, task_gid).tags))

    def list_stories(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """GET /tasks/{gid}/stories: comments and system stories, oldest first."""
        task = self.task_of(principal, task_gid)
        return self.page(request, principal, [s for s in self.state.stories.values() if s.task is task])

    def create_story(self, request: Request, principal: Principal, task_gid: str) -> Response:
        """POST /tasks/{gid}/stories: add a comment."""
        task = self.task_of(principal, task_gid)
        story = edits.comment(self.state, self.user_of(principal), task, self.data(request))
        return self.one(request, principal, story, 201)

    def get_story(self, request: Request, principal: Principal, story_gid: str) -> Response:
        """GET /stories/{gid}."""
        return self.one(request, principal, self.state.story(story_gid))

    def update_story(self, request: Request, principal: Principal, story_gid: str) -> Response:
        """PUT /stories/{gid}: only comments are editable."""
        story = self.state.story(story_gid)
        edits.edit_comment(self.state, self.user_of(principal), story, self.data(request))
        return self.one(request, principal, story)

    def delete_story(self, request: Request, principal: Principal, story_gid: str) -> Response:
        """DELETE /stories/{gid}."""
        edits.delete_comment(self.state, self.user_of(principal), self.state.story(story_gid))
        return self.respond(request, {"data": {}})
