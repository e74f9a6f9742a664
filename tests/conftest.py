"""Test-wide settings: in CI, Hypothesis searches the same examples every run (no flaky red builds)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The live-sandbox fixtures (`sandbox`, `environment`) for tests that run `syncd` as a subprocess.
pytest_plugins = ["tests.syncd_env"]
