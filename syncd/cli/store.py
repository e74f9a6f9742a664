"""How every command that needs only the state store opens it: from the configuration, migrated, closed after.

``syncd audit``, ``conflicts``, ``quarantine`` and ``status`` contact no tool and need no credential; they share
this one way in, so a broken configuration or an unreadable store reads the same from each of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncd.store import Store


@contextmanager
def open_store(config_dir: Path, *, keyed: bool = True) -> Iterator[Store]:
    """The configured store, migrated; raises ConfigError or StoreUnavailable (the handler says it, exits 2).

    ``keyed``: with the audit key (a configured key that cannot be read is an error), for commands that append
    audit events or verify them; a read-only listing needs no secret.
    """
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - keeps `syncd --help` fast

    from syncd.config import load_config  # noqa: PLC0415 - keeps `syncd --help` fast
    from syncd.store import Store, StoreUnavailable  # noqa: PLC0415 - keeps `syncd --help` fast

    config = load_config(config_dir)
    try:
        store = Store(config.instance.store, audit_key=config.instance.audit_secret() if keyed else None)
        try:
            store.migrate()
            yield store
        finally:
            store.close()
    except SQLAlchemyError as error:
        # The driver's own message (what failed and where), not SQLAlchemy's statement dump.
        reason = getattr(error, "orig", None) or error
        raise StoreUnavailable(f"cannot read the store: {reason}") from error
