"""Local, faithful emulators of the Jira, Trello and Asana APIs, serving one seeded organisation.

No test machine can reach the real services, so everything that talks to them (connectors, engine, daemon,
benchmarks, ``syncd demo``) runs against these emulators through the real SDKs. Each emulator speaks its
service's paths, shapes, errors, rate limits, quirks and webhook signatures; all three share one clock so
that "now" means the same thing in every tool, as it does for real.

The emulators live in ``jira``, ``trello`` and ``asana``, their shared machinery in ``core``, the seeded
organisation in ``seed``, and ``org.Sandbox`` runs all three together.
"""
