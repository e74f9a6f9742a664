"""One package per tool (Jira, Trello, Asana), each behind the same Protocol; imports syncd's model, never the reverse."""
