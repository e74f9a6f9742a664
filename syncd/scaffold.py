"""``syncd init``: skeleton files for a new department or sync group, valid as written and commented for editing.

The skeletons name credentials by environment variable only (``SYNCD_<DEPARTMENT>_TOKEN``...), never hold one,
and leave out what only the tool can tell (status names, people): ``syncd check --online`` then says what is
missing. Nothing existing is overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from syncd.errors import ScaffoldError as ScaffoldError  # noqa: PLC0414 - re-exported: its callers import it from here

Tool = Literal["jira", "trello", "asana"]

INSTANCE = """\
# The syncd instance. Any setting can be overridden from the environment: SYNCD_STORE, SYNCD_POLL_INTERVAL_S, ...
store: sqlite:///var/syncd.db
poll_interval_s: 30
listen: 127.0.0.1:8787
# public_url: https://syncd.example.com   # where the tools deliver webhooks (unset: polling only)
"""

_CONNECTIONS: dict[str, str] = {
    "jira": """\
connection:
  tool: jira
  base_url: https://yourcompany.atlassian.net   # Jira Cloud, or your Server / Data Center URL
  user: syncd-bot@yourcompany.example            # the service account (e-mail on Cloud, user name on Server)
  token: {{env: {prefix}_TOKEN}}
  project: KEY                                   # the project key, e.g. ENG
  # Fields a workflow transition's screen requires, per target status:
  # transition_fields:
  #   Done: {{resolution: {{name: Done}}}}
  # webhook_secret: {{env: {prefix}_WEBHOOK_SECRET}}   # the secret the admin webhook signs with
""",
    "trello": """\
connection:
  tool: trello
  base_url: https://api.trello.com
  key: {{env: {prefix}_KEY}}
  token: {{env: {prefix}_TOKEN}}
  board: BOARD_ID                                # the board id (open the board's URL + .json)
  # secret: {{env: {prefix}_SECRET}}               # the application secret, to verify webhook signatures
""",
    "asana": """\
connection:
  tool: asana
  base_url: https://app.asana.com
  token: {{env: {prefix}_TOKEN}}
  project: "PROJECT_GID"                         # the project gid (in the project's URL)
""",
}

_PEOPLE = """\
# Who is who, by e-mail, where the tool hides e-mails (Trello always; Jira Cloud by privacy setting):
# people:
#   ana@yourcompany.example: ana
"""

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise ScaffoldError(f"{kind} name {name!r}: use lower-case letters, digits and dashes, starting with a letter")


def department(config_dir: Path, name: str, tool: Tool) -> list[Path]:
    """Write ``departments/<name>.yaml`` (and ``syncd.yaml`` if there is none yet); the files written."""
    _check_name("department", name)
    path = config_dir / "departments" / f"{name}.yaml"
    if path.exists():
        raise ScaffoldError(f"{path} exists: syncd init never overwrites; edit it, or remove it first")
    prefix = "SYNCD_" + name.upper().replace("-", "_")
    text = (
        f"# The {name} department works in {tool.capitalize()}. Credentials are named here, never written.\n"
        + _CONNECTIONS[tool].format(prefix=prefix)
        + _PEOPLE
    )
    written = []
    instance = config_dir / "syncd.yaml"
    if not instance.exists():
        instance.parent.mkdir(parents=True, exist_ok=True)
        instance.write_text(INSTANCE)
        written.append(instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    written.append(path)
    return written


def group(mappings_dir: Path, name: str, members: Sequence[str]) -> Path:
    """Write ``<name>.yaml``: every member both ways, items created everywhere, a rule per field to start from."""
    _check_name("group", name)
    if len(set(members)) < 2:
        raise ScaffoldError("a sync group needs at least two different members (departments)")
    for member in members:
        _check_name("member", member)
    path = mappings_dir / f"{name}.yaml"
    if path.exists():
        raise ScaffoldError(f"{path} exists: syncd init never overwrites; edit it, or remove it first")
    member_lines = "".join(f"  {member}: {{}}\n" for member in members)
    first = members[0]
    text = f"""\
# The {name} group: items mirrored between {", ".join(members)}.
members:
{member_lines}  # To limit a member to some items: {{scope: {{labels: [launch]}}}} or {{scope: {{statuses: [Doing]}}}}
create_in: [{", ".join(members)}]   # where an item new in one member is mirrored
on_delete: archive                  # a deletion archives the mirrors (or: unlink)
comments: true                      # comments are copied, attributed, once
fields:
  title: {{rule: latest}}
  description: {{rule: merge-text}}
  labels: {{rule: union}}
  assignees: {{rule: {{prefer: [{", ".join(members)}]}}}}
  due: {{rule: {{owner: {first}}}}}
  # status: map each member's statuses (Jira status, Trello list, Asana section) to shared values:
  # status:
  #   rule: {{owner: {first}}}
  #   map:
{"".join(f"  #     {member}: {{To Do: todo, In Progress: doing, Done: done}}{chr(10)}" for member in members)}"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
