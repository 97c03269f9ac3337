"""The README is valid reStructuredText and gives the commands that CI runs."""

from __future__ import annotations

from pathlib import Path

import docutils.core
import docutils.utils

REPO = Path(__file__).resolve().parents[2]


def test_readme_is_valid_restructuredtext() -> None:
    text = (REPO / "README.rst").read_text()
    settings = {"report_level": docutils.utils.Reporter.WARNING_LEVEL, "halt_level": 2}
    docutils.core.publish_doctree(text, settings_overrides=settings)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.rst").read_text()
    assert "./scripts/run-tests.sh" in readme
    assert "./scripts/run-orthanc.sh" in readme
    assert "scripts/run-tests.sh" in (REPO / ".ci" / "run").read_text()
