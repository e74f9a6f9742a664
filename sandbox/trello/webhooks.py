"""Trello webhooks: the HEAD check at creation, which actions reach which webhook, and the signed delivery.

Trello signs a delivery with ``X-Trello-Webhook: base64(HMAC-SHA1(application secret, body + callbackURL))``,
the callback URL being exactly the one registered. A webhook watches one model: a board, list or card sees
the actions on it, a member the actions that member takes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import requests

from sandbox.core import ApiError
from sandbox.trello.model import Action, Webhook

SIGNATURE_HEADER = "X-Trello-Webhook"
HEAD_TIMEOUT_S = 5.0


def signature(secret: str, body: bytes, callback_url: str) -> str:
    """Return Trello's webhook signature of one delivery."""
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def check_callback(url: str) -> None:
    """Run Trello's creation check: the callback must answer a HEAD with 200, else the webhook is refused."""
    if not url.startswith(("http://", "https://")):
        raise ApiError(400, "invalid value for callbackURL")
    try:
        status = requests.head(url, timeout=HEAD_TIMEOUT_S, allow_redirects=False).status_code
    except requests.RequestException:
        raise ApiError(400, f"URL ({url}) did not return 200 status code, got no response") from None
    if status != 200:
        raise ApiError(400, f"URL ({url}) did not return 200 status code, got {status}")


def watches(webhook: Webhook, action: Action) -> bool:
    """Return whether an action reaches a webhook's model."""
    if not webhook.active:
        return False
    models = {action.id_board, action.id_card, action.id_list, action.id_member_creator}
    models.add(action.data.get("listBefore", {}).get("id"))
    return webhook.id_model in models


def delivery_body(action: object, model: object, webhook: Webhook) -> bytes:
    """Return the JSON body Trello POSTs: the action, the watched model and the webhook."""
    body = {
        "action": action,
        "model": model,
        "webhook": {
            "id": webhook.id,
            "description": webhook.description,
            "idModel": webhook.id_model,
            "callbackURL": webhook.callback_url,
            "active": webhook.active,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()
