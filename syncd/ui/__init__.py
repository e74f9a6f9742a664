"""The web page: audit review and people's decisions in the browser (issue 19).

==============  =============================================================================================
module          owns
==============  =============================================================================================
``app``         the WSGI application: routes, sign-in, CSRF, security headers; mounted under ``/ui/``
``identity``    who is signed in (:class:`~syncd.ui.identity.Identity`), whatever the method, and what they may do
``auth``        sign-in with operator tokens, sessions (and the OIDC sign-in in progress), CSRF tokens
``oidc``        sign-in through an OpenID Connect provider: the authorization-code flow with PKCE
``review``      what the pages show, read from the store, and which department an event or a queue concerns
``templates/``  the Jinja2 pages (autoescaped); ``static/ui.css`` the one stylesheet
==============  =============================================================================================

Served by ``syncd run`` beside health, metrics and webhooks, and by ``syncd web`` for a store alone.
"""

from syncd.ui.app import Mounted, Ui, mount
from syncd.ui.identity import Identity

__all__ = ["Identity", "Mounted", "Ui", "mount"]
