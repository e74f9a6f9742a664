"""Routes of attachments: links attached to tasks, listed, read and deleted (``/attachments``)."""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.asana import edits
from sandbox.asana.base import API_PREFIX, AsanaBase
from sandbox.asana.model import Attachment, Task
from sandbox.core import ApiError, Principal


def attachment_rules() -> list[Rule]:
    """Return the rules of this module's handlers."""
    p = API_PREFIX
    return [
        Rule(f"{p}/attachments", endpoint="list_attachments", methods=["GET"]),
        Rule(f"{p}/attachments", endpoint="create_attachment", methods=["POST"]),
        Rule(f"{p}/attachments/<attachment_gid>", endpoint="get_attachment", methods=["GET"]),
        Rule(f"{p}/attachments/<attachment_gid>", endpoint="delete_attachment", methods=["DELETE"]),
    ]


class AttachmentRoutes(AsanaBase):
    """Handlers of attachments."""

    def _parent(self, principal: Principal, ref: str) -> Task | None:
        """The parent task; None for a project, whose attachments ("Key resources") the sandbox has none of."""
        if ref in self.state.projects:
            return None
        return self.task_of(principal, ref, "parent")

    def create_attachment(self, request: Request, principal: Principal) -> Response:
        """POST /attachments: the spec's body is multipart/form-data only, so other bodies are refused."""
        if request.mimetype != "multipart/form-data":
            raise ApiError(400, "Request body must be multipart/form-data")
        form = {key: str(request.form.get(key, "")) for key in request.form}
        for key, upload in request.files.items():
            if key == "file":
                form["file"] = upload.filename or "file"
            upload.close()  # the content is never kept: uploads are refused (see edits.attach)
        parent = self._parent(principal, self.require(form, "parent"))
        if parent is None:
            raise ApiError(400, "parent: Attachments on projects are not emulated by the sandbox")
        attachment = edits.attach(self.state, self.user_of(principal), parent, form)
        return self.one(request, principal, attachment)

    def list_attachments(self, request: Request, principal: Principal) -> Response:
        """GET /attachments?parent=: a task's attachments, oldest first."""
        parent = self._parent(principal, self.require(request.args, "parent"))
        found: list[Attachment] = [a for a in self.state.attachments.values() if a.parent is parent]
        return self.page(request, principal, found)

    def get_attachment(self, request: Request, principal: Principal, attachment_gid: str) -> Response:
        """GET /attachments/{gid}."""
        return self.one(request, principal, self.state.attachment(attachment_gid))

    def delete_attachment(self, request: Request, principal: Principal, attachment_gid: str) -> Response:
        """DELETE /attachments/{gid}: answers an empty data object."""
        edits.delete_attachment(self.state, self.state.attachment(attachment_gid))
        return self.respond(request, {"data": {}})
