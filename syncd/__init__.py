"""syncd mirrors cross-department work items between Jira, Trello and Asana.

Vocabulary (the words the code and its docs use, from DESIGN.md):

DEPARTMENT
    An organisational unit and its tool: ``config/departments/<name>.yaml`` (tool kind, connection, workspace,
    people directory).
SYNC GROUP
    A cross-department team of items mirrored together: ``mappings/<group>.yaml`` (members, scope, field
    mappings, conflict rules).
ENDPOINT
    One department's place inside one group; a department can sit in several groups.
ITEM
    One piece of work mirrored across a group, with a stable ``sync_id`` (a ULID).
REF
    An item's id in one tool: ``ENG-12``, a Trello card id, an Asana gid.
RECORD
    What a connector reads: ref, version, url, and the tool's fields as plain Python values.
CANONICAL VALUE
    A field's tool-neutral value (status ``doing``, assignee ``ana@corp.example``, description as Markdown).
BASE
    The canonical values all endpoints last agreed on, per item: the common ancestor of every 3-way merge.
PLAN
    The pure result of merging one item: writes per endpoint, conflicts, audit entries.
CURSOR
    Per endpoint, where the change feed was last read up to.
"""

__version__ = "0.1.0"
