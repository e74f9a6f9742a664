"""The options several commands share, spelled once so ``--config`` means the same everywhere.

Also who an operator is (``--by``), for the commands that record a person's decision in the audit log.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

from syncd.errors import CommandRefused

ConfigOption = Annotated[Path, typer.Option("--config", help="The configuration directory.")]
MappingsOption = Annotated[Path, typer.Option("--mappings", help="The sync-group mappings directory.")]
ByOption = Annotated[
    str | None,
    typer.Option(
        "--by", metavar="PERSON", help="Who acts, for the audit log (default: $SYNCD_OPERATOR, else your login)."
    ),
]


def operator(by: str | None) -> str:
    """Who acts, so every decision in the audit log names a person; refused rather than record nobody."""
    for candidate in (by, os.environ.get("SYNCD_OPERATOR")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (e.g. a container user without a passwd entry)
        raise CommandRefused("cannot tell who you are: pass --by PERSON or set SYNCD_OPERATOR") from None
