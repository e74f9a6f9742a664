"""Hints between replicas travel by NOTIFY on a channel of the store's own: two deployments kept in two schemas of
one PostgreSQL database never hear each other's."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from syncd.daemon.sharing import CHANNEL
from syncd.store import Store
from tests.store.conftest import schema_store


def test_each_schema_hears_only_its_own_hints() -> None:
    with schema_store() as mine, schema_store() as theirs:
        assert mine.channel(CHANNEL) != theirs.channel(CHANNEL)
        again = Store(mine.url, connect_args=_options(mine))  # another replica of the same deployment
        try:
            assert again.channel(CHANNEL) == mine.channel(CHANNEL)
        finally:
            again.close()
        heard: list[str] = []
        stop = threading.Event()
        listener = threading.Thread(target=mine.listen, args=(mine.channel(CHANNEL), heard.append, stop), daemon=True)
        listener.start()
        try:
            deadline = time.monotonic() + 10
            while not heard and time.monotonic() < deadline:  # until the LISTEN is in place
                theirs.notify(theirs.channel(CHANNEL), "theirs")
                mine.notify(mine.channel(CHANNEL), "mine")
                time.sleep(0.2)
        finally:
            stop.set()
            listener.join(timeout=5)
        assert heard
        assert set(heard) == {"mine"}


def _options(store: Store) -> dict[str, str]:
    """The search path a store was opened with (its schema), to open another view of it."""
    with store.engine.begin() as connection:
        schema = str(connection.execute(text("SELECT current_schema()")).scalar_one())
    return {"options": f"-csearch_path={schema}"}
