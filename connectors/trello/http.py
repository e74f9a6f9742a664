"""The Trello connector's HTTP transport: a ``requests.Session`` that points py-trello at any base URL.

py-trello hard-codes ``https://api.trello.com/1`` (and ``https://trello.com/1`` for webhook creation) and sends
requests without a timeout. ``TrelloClient(..., http_service=BaseUrlSession(url))`` rewrites both prefixes to
``<url>/1`` and applies a default timeout, so the same client talks to Trello or to the sandbox emulator.
"""

from __future__ import annotations

from typing import Any

import requests

TRELLO_PREFIXES = ("https://api.trello.com/1", "https://trello.com/1")
"""The API roots py-trello builds its URLs from."""


class BaseUrlSession(requests.Session):
    """A session that sends Trello API calls to ``<base_url>/1/...`` with a default timeout."""

    def __init__(self, base_url: str = "https://api.trello.com", timeout_s: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def rewrite(self, url: str) -> str:
        """Return the URL a py-trello URL really goes to."""
        for prefix in TRELLO_PREFIXES:
            if url == prefix or url.startswith(prefix + "/"):
                return f"{self.base_url}/1{url[len(prefix) :]}"
        return url

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        *args: Any,  # noqa: ANN401 - forwarded unchanged to requests.Session.request
        **kwargs: Any,  # noqa: ANN401 - forwarded unchanged to requests.Session.request
    ) -> requests.Response:
        """Send with the rewritten URL and, unless the caller chose one, the default timeout."""
        kwargs.setdefault("timeout", self.timeout_s)
        target = url.decode() if isinstance(url, bytes) else url
        return super().request(method, self.rewrite(target), *args, **kwargs)
