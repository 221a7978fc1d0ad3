"""The packaging files agree: environment.yml defers to pyproject.toml, the one source of dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def test_environment_installs_the_package_with_every_extra_it_needs() -> None:
    deps = _environment()["dependencies"]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip section"
    (editable,) = pip_sections[0]
    match = re.fullmatch(r"-e \.\[(.+)\]", editable)
    assert match, f"pip section must be '-e .[extras]', got {editable!r}"
    extras = set(match.group(1).split(","))
    declared = set(_pyproject()["project"]["optional-dependencies"])
    assert extras <= declared, f"extras {extras - declared} are not declared in pyproject.toml"
    assert {"book", "dev"} <= extras


def test_environment_names_no_dependency_of_its_own() -> None:
    conda_deps = [d for d in _environment()["dependencies"] if isinstance(d, str)]
    names = {re.split(r"[=<>! ]", d, maxsplit=1)[0] for d in conda_deps}
    assert names == {"python", "pip"}, f"declare these in pyproject.toml instead: {names - {'python', 'pip'}}"


def test_python_versions_agree() -> None:
    conda_python = next(d for d in _environment()["dependencies"] if isinstance(d, str) and d.startswith("python"))
    version = conda_python.split("=", 1)[1]
    required = _pyproject()["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", required)
    assert minimum, f"unexpected requires-python {required!r}"
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.groups()))


def test_every_runtime_dependency_is_imported_by_the_package() -> None:
    """A declared dependency nothing imports is weight on every install (seaborn was, until 2026-12-03: the
    figures are matplotlib's, chapter 1's KDE scipy's with a bandwidth it sets itself)."""
    module_of = {"scikit-learn": "sklearn", "pillow": "PIL"}
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "ogc_lab").rglob("*.py"))
    for requirement in _pyproject()["project"]["dependencies"]:
        name = re.split(r"[=<>!~ \[]", requirement, maxsplit=1)[0].lower()
        module = module_of.get(name, name)
        assert re.search(rf"^\s*(import|from) {module}\b", source, re.MULTILINE), f"nothing imports {name}"


def test_the_pages_build_fetches_cifar_before_the_book_and_goes_on_without_it() -> None:
    from ogc_lab.download import REMOTE_FILES

    steps = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())["jobs"]["build"]["steps"]
    runs = [step.get("run") for step in steps]
    assert runs.index("make data") < runs.index("make book")
    assert steps[runs.index("make data")].get("continue-on-error") is True  # no network: the book still builds
    fetched = re.search(r"^DATA \?= (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert fetched and set(fetched.group(1).split()) == {"cifar10", "cifar10n"} <= set(REMOTE_FILES)
