"""The README and docs/ are valid reStructuredText, give the commands that CI runs, document every
configuration option, and name modules and files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import docutils.core
import docutils.utils
import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.rst"
DOCS = sorted((REPO / "docs").glob("*.rst"))
DOCUMENTS = [README, *DOCS]


def _publish(path: Path) -> None:
    settings = {
        "report_level": docutils.utils.Reporter.WARNING_LEVEL,
        "halt_level": docutils.utils.Reporter.WARNING_LEVEL,
        "source_path": str(path),
    }
    docutils.core.publish_doctree(path.read_text(), settings_overrides=settings)


def test_readme_is_valid_restructuredtext() -> None:
    _publish(README)


@pytest.mark.parametrize("path", DOCS, ids=[path.name for path in DOCS])
def test_docs_are_valid_restructuredtext(path: Path) -> None:
    _publish(path)


def test_readme_links_every_docs_file() -> None:
    names = {path.name for path in DOCS}
    assert {"architecture.rst", "benchmarks.rst", "cluster.rst", "development.rst"} <= names
    readme = README.read_text()
    for name in names:
        assert f"<docs/{name}>`_" in readme, f"README.rst does not link docs/{name}"


def test_links_between_documents_name_existing_files() -> None:
    for path in DOCUMENTS:
        for target in re.findall(r"`[^`<]*<([^>`]+)>`_", path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.name} links {target}, which is missing"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = README.read_text()
    assert "./scripts/run-tests.sh" in readme
    assert "./scripts/run-orthanc.sh" in readme
    assert "scripts/run-tests.sh" in (REPO / ".ci" / "run").read_text()


def _configuration_section(readme: str) -> str:
    start = readme.index("\nConfiguration reference\n")
    end = readme.index("\nQIDO-RS: Search for Studies, Series and Instances\n", start)
    return readme[start:end]


def _dicom_web_options(source: str) -> set[str]:
    """Options of the DicomWeb section read in config.py's source."""
    section = set(re.findall(r'\bsection\.\w+\(\s*"(\w+)"', source))
    return section | set(re.findall(r'get\("DicomWeb", \{\}\)\.get\("(\w+)"', source))


def _options_read_by_the_plugin() -> set[str]:
    """Option names read in config.py: the DicomWeb section, global options, Cors, servers."""
    source = (REPO / "orthanc_dicomweb" / "config.py").read_text()
    section = _dicom_web_options(source)
    top = set(re.findall(r'\btop\.\w+\(\s*"(\w+)"', source))
    # Cors and server entries: reader.string("Url"...), _lenient_boolean(reader, "HasDelete"...)
    nested = set(re.findall(r'\breader(?:\.\w+\(|,)\s*"(\w+)"', source))
    # Parsing still finds the options: a refactor of config.py must keep this test meaningful.
    assert {"Root", "EnableWado", "StowServerMaxInstances", "Servers", "Cors"} <= section
    assert {"DefaultEncoding", "ReadOnly", "ConcurrentJobs"} <= top
    assert {"AllowedOrigins", "Url", "HasDelete"} <= nested
    return section | top | nested


def test_every_configuration_option_is_documented() -> None:
    readme = README.read_text()
    table = _configuration_section(readme)
    section = _dicom_web_options((REPO / "orthanc_dicomweb" / "config.py").read_text())
    shipped = set(json.loads((REPO / "orthanc.json").read_text()).get("DicomWeb", {}))
    for option in section | shipped:
        assert f"``{option}``" in table, f"DicomWeb.{option} is not in the configuration reference"
    for option in _options_read_by_the_plugin():
        # named as a literal, or as a key of a configuration example
        documented = f"``{option}``" in readme or f'"{option}"' in readme
        assert documented, f"option {option} is not documented in README.rst"


def test_module_paths_in_the_documents_exist() -> None:
    for path in DOCUMENTS:
        text = path.read_text()
        for module in re.findall(r"``(orthanc_dicomweb/[\w/]+(?:\.py|/))``", text):
            assert (REPO / module).exists(), f"{path.name} names {module}, which is missing"
        for dotted in re.findall(r"``(orthanc_dicomweb\.[\w.]+)``", text):
            parts = dotted.split(".")
            for length in range(len(parts), 0, -1):
                base = REPO.joinpath(*parts[:length])
                module = base.with_suffix(".py") if not base.is_dir() else base / "__init__.py"
                if module.exists():
                    break
            else:
                pytest.fail(f"{path.name} names {dotted}: no such module")
            rest = parts[length:]
            if rest:
                name = re.escape(rest[0])
                defined = rf"^\s*(?:def|class)\s+{name}\b|^{name}\s*[:=]"
                assert re.search(defined, module.read_text(), re.MULTILINE), (
                    f"{path.name} names {dotted}: {rest[0]} is not defined in {module.name}"
                )
