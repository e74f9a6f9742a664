"""Act as a named person in the emulated Asana from Python, for tests that simulate people editing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.asana import edits
from sandbox.asana.model import Section, User
from sandbox.core import ApiError

if TYPE_CHECKING:
    from sandbox.asana.emulator import AsanaEmulator


class AsanaActor:
    """Edits tasks as one person; stories, events and webhooks show that person as the author."""

    def __init__(self, emulator: AsanaEmulator, user: User) -> None:
        self.emulator = emulator
        self.user = user

    def _section(self, name: str, project_gid: str | None) -> Section:
        state = self.emulator.state
        for project in state.projects.values():
            if project_gid not in (None, project.gid):
                continue
            for section in project.sections:
                if section.name == name:
                    return section
        raise ApiError(404, f"section: no section called {name!r}")

    def create_task(self, name: str, section: str | None = None, project: str | None = None, **fields: object) -> str:
        """Create a task (in the named section, else the first project's first section); return its gid."""
        with self.emulator.lock:
            state = self.emulator.state
            data: dict[str, Any] = {"name": name, **fields}
            if section is not None:
                target = self._section(section, project)
                data["memberships"] = [{"project": target.project.gid, "section": target.gid}]
            elif "projects" not in fields and "memberships" not in fields:
                data["projects"] = [project or next(iter(state.projects))]
            return edits.create_task(state, self.user, data).gid

    def update_task(self, gid: str, **fields: object) -> None:
        """Change fields of a task, as PUT /tasks/{gid} would."""
        with self.emulator.lock:
            state = self.emulator.state
            edits.update_task(state, self.user, state.task(gid), fields)

    def set_field(self, gid: str, name: str, value: object) -> None:
        """Set the custom field called ``name`` as a person picks it in Asana's web app.

        ``value``: an option name (a list of them for multi_enum), text, number, ``YYYY-MM-DD``, or e-mails for
        people; None clears it.
        """
        with self.emulator.lock:
            state = self.emulator.state
            task = state.task(gid)
            custom_field = next((f for f in task.custom_fields() if f.name == name), None)
            if custom_field is None:
                raise ApiError(400, f"custom_fields: no custom field called {name!r} on task {gid}")
            raw: object = value
            options = {option.name: option.gid for option in custom_field.enum_options}
            if value is not None and custom_field.resource_subtype == "enum":
                raw = options.get(str(value), str(value))
            elif value is not None and custom_field.resource_subtype == "multi_enum":
                raw = [options.get(str(item), str(item)) for item in value] if isinstance(value, list) else value
            elif value is not None and custom_field.resource_subtype == "people":
                people = value if isinstance(value, list) else [value]
                raw = [state.user(str(email), self.user).gid for email in people]
            elif value is not None and custom_field.resource_subtype == "date":
                raw = {"date": str(value)}
            edits.update_task(state, self.user, task, {"custom_fields": {custom_field.gid: raw}})

    def move(self, gid: str, section_name: str) -> None:
        """Move a task to the named section of one of its projects (its status there)."""
        with self.emulator.lock:
            state = self.emulator.state
            task = state.task(gid)
            projects = [p.gid for p in task.projects]
            section = next(
                (s for p in task.projects for s in p.sections if s.name == section_name),
                None,
            ) or self._section(section_name, projects[0] if projects else None)
            edits.move_to_section(state, self.user, task, section, {})

    def remove_from_project(self, gid: str, project: str | None = None) -> None:
        """Take a task out of a project (its first one by default), as POST /tasks/{gid}/removeProject would."""
        with self.emulator.lock:
            state = self.emulator.state
            task = state.task(gid)
            target = state.projects[project] if project is not None else task.projects[0]
            edits.remove_project(state, self.user, task, target)

    def comment(self, gid: str, text: str) -> str:
        """Comment on a task; return the story gid."""
        with self.emulator.lock:
            state = self.emulator.state
            return edits.comment(state, self.user, state.task(gid), {"text": text}).gid

    def complete(self, gid: str, done: bool = True) -> None:
        """Mark a task complete (or incomplete)."""
        with self.emulator.lock:
            state = self.emulator.state
            edits.complete(state, self.user, state.task(gid), done=done)

    def delete(self, gid: str) -> None:
        """Delete a task."""
        with self.emulator.lock:
            state = self.emulator.state
            edits.delete_task(state, self.user, state.task(gid))
