"""Trello's batch route: up to 10 GET routes in one call, each answered as if it had been requested on its own.

``GET /1/batch?urls=/cards/A,/cards/B`` answers a list in the order of ``urls``: ``{"200": <body>}`` for a
route that succeeded, and for one that failed an object with ``statusCode``, ``name`` and ``message`` and no
status key (the shape py-trello's ``fetch_batch`` reads, whose live test expects ``message == "invalid id"``
for a bad board id; the spec documents no answer body, and ``name`` is not verified).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from werkzeug.routing import Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from sandbox.core import ACT_AS_HEADER, JSON, ApiError, Principal
from sandbox.trello.routes_activity import ActivityRoutes

MAX_URLS = 10
"""The spec: "A list of API routes. Maximum of 10 routes allowed.\""""
_CARRIED_HEADERS = ("Authorization", ACT_AS_HEADER)
_CREDENTIAL_PARAMS = ("key", "token")


class BatchRoutes(ActivityRoutes):
    """The batch route, over every other route of the emulator."""

    def batch_rules(self) -> list[Rule]:
        """Return the routes of this group."""
        return [Rule("/1/batch", endpoint="get_batch", methods=["GET"])]

    def get_batch(self, request: Request, principal: Principal) -> Response:
        """GET /1/batch?urls=...: each url is run as its own GET, with the batch's credentials.

        Rate limits: the spec says only "Make up to 10 GET requests in a single, batched API call", and
        Trello's older guide that batching helps "stay within your API rate limit". The unfavourable reading is
        emulated: the batch call spends one request of the token's and the key's budgets, and each url spends one
        more (so a full batch costs 11); a url over budget gets its own 429 item. Each url is also counted under
        its own route in the counters. ``urls`` is split on every comma (the outer query string is decoded once),
        so a comma inside one url must arrive encoded twice; more than 10 urls is a 400 (message not verified).
        """
        raw = request.args.get("urls") or ""
        urls = raw.split(",")
        if not raw or len(urls) > MAX_URLS:
            raise ApiError(400, "invalid value for urls")
        return self.json([self._batch_item(request, url) for url in urls])

    def _batch_item(self, batch: Request, url: str) -> JSON:
        parts = urlsplit(url)
        if not url.startswith("/") or parts.path.rstrip("/") == "/batch":
            # Routes must begin with "/" and leave out the version; the batch route cannot be batched.
            return {"statusCode": 400, "name": "Error", "message": "invalid value for urls"}
        query = parse_qsl(parts.query, keep_blank_values=True)
        named = {name for name, _ in query}
        query += [(name, batch.args[name]) for name in _CREDENTIAL_PARAMS if name in batch.args and name not in named]
        headers = [(name, batch.headers[name]) for name in _CARRIED_HEADERS if name in batch.headers]
        builder = EnvironBuilder(path=f"/1{parts.path}", method="GET", query_string=urlencode(query), headers=headers)
        try:
            answer = self._route(Request(builder.get_environ()), admin=False)
        finally:
            builder.close()
        return _item(answer)


def _item(answer: Response) -> JSON:
    """One entry of the batch answer: the body under ``"200"``, or the error's status and message."""
    text = answer.get_data(as_text=True)
    if answer.status_code == 200:
        return {"200": json.loads(text)}
    message: Any = text
    if answer.mimetype == "application/json":
        message = json.loads(text).get("message", text)
    return {"statusCode": answer.status_code, "name": "Error", "message": message}
