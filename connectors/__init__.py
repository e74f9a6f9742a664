"""One package per tool (Jira, Trello, Asana), each behind the same Protocol.

Connectors import syncd's model, never the reverse: the engine stays free of any tool SDK.
"""
