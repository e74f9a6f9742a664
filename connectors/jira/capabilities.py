"""What the core needs to know of Jira (:class:`~syncd.connector.Capabilities`), declared by its connector."""

from __future__ import annotations

from syncd.connector import GREGORIAN, Capabilities, StatusMechanism, TextFormat, ToolLimits, WebhookKind

CAPABILITIES = Capabilities(
    name="Jira",
    workspace="project",
    status_noun="status",
    status=StatusMechanism.WORKFLOW,
    single_assignee=True,
    text=TextFormat.JIRA_WIKI,
    webhook=WebhookKind.SHARED_SECRET,
    restore_needs_status=True,
    own_fields=frozenset({"priority"}),  # the priority (JiraConnector reads and writes it)
    assignable="assignable in {workspace}",
    # The messages are Jira's answers, which the sandbox gives too: "You must specify a summary of the issue." for
    # a blank summary; "Summary must be less than 255 characters." for 256 and more (255 is taken); "The summary is
    # invalid because it contains newline characters."; "The label 'x y' contains spaces which is invalid."; "The
    # label '...' exceeds the maximum length for a single label of 255 characters." (Jira's own web test
    # TestCreateAndEditLabels); duedate: see GREGORIAN. Jira counts a Java String's length: UTF-16 code units.
    limits=ToolLimits(
        title_max=255,
        title_required=True,
        title_one_line=True,
        label_max=255,
        label_spaces=False,
        due_range=GREGORIAN,
    ),
    browse="{site}/browse/{ref}",  # where a person opens the item
)
