"""The one redaction layer (:mod:`syncd.redact`): what it masks, and what it leaves for a person to read."""

from __future__ import annotations

import json
from urllib.parse import quote

from syncd.redact import MASK, redact, remember


class TestRegisteredValues:
    def test_a_registered_value_is_masked_wherever_it_appears(self) -> None:
        """A credential syncd resolved is masked in any text, also URL-encoded or JSON-escaped."""
        value = 'unit-s3cr"et/+value'
        remember(value)
        assert redact(f"refused {value} twice") == f"refused {MASK} twice"
        assert redact("GET /x?q=" + quote(value, safe="")) == f"GET /x?q={MASK}"
        assert MASK in redact(json.dumps({"v": value}))

    def test_a_short_value_is_not_registered(self) -> None:
        """Masking every "abc" would hide more than it protects: values under six characters are left."""
        remember("abc")
        assert redact("abc def") == "abc def"


class TestShapes:
    def test_url_userinfo_keeps_the_user_and_masks_the_password(self) -> None:
        """A store URL names its user (useful) and its password (never shown)."""
        assert (
            redact("postgresql+psycopg://syncd:hunter22@db:5432/syncd")
            == "postgresql+psycopg://syncd:***@db:5432/syncd"
        )

    def test_credential_named_query_values_are_masked_and_the_rest_kept(self) -> None:
        """Trello's key and token ride in the query string; other parameters still say what was asked."""
        url = "https://api.trello.com/1/boards/b1?fields=name&key=k123456&token=t123456&client_secret=s&page=2"
        assert redact(url) == (
            "https://api.trello.com/1/boards/b1?fields=name&key=***&token=***&client_secret=***&page=2"
        )

    def test_words_that_merely_contain_a_credential_name_are_kept(self) -> None:
        """``assignees=`` holds "sig", ``monkey=`` holds "key": neither is a credential name."""
        assert redact("assignees=a@b.example monkey=1") == "assignees=a@b.example monkey=1"

    def test_credential_header_lines_are_masked(self) -> None:
        """An echoed request's Authorization and API-key headers keep their names and lose their values."""
        echoed = "GET /rest/api/2/myself\nAuthorization: Basic dXNlcjp0b2tlbg==\nX-Api-Key: abcdef123\nHost: x"
        assert redact(echoed) == "GET /rest/api/2/myself\nAuthorization: ***\nX-Api-Key: ***\nHost: x"

    def test_quoted_credential_fields_are_masked(self) -> None:
        """A headers dict or a JSON body quoted by a library keeps its shape."""
        assert (
            redact("{'Authorization': 'Bearer abcdefgh', 'Accept': '*/*'}")
            == "{'Authorization': '***', 'Accept': '*/*'}"
        )
        assert redact('{"api_key": "abcdef", "name": "x"}') == '{"api_key": "***", "name": "x"}'

    def test_an_authorization_scheme_value_is_masked_anywhere(self) -> None:
        """``Bearer <token>`` inside a sentence, not on a header line of its own."""
        assert redact("sent Bearer sbxat_0123456789 and failed") == "sent Bearer *** and failed"

    def test_ordinary_messages_are_unchanged(self) -> None:
        """What a person needs to act is left alone: refs, statuses, fields, hosts."""
        message = "ENG-12: status 'Done' is not a transition from 'To Do' at https://jira.example/rest/api/2"
        assert redact(message) == message
