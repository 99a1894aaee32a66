"""The package layout as a rule: shared packages below, one package per paper above, no paper importing another.

Read from the source (every ``import`` and ``from ... import`` statement, relative ones resolved), so a violation is
caught before anything runs.
"""

import ast
import re
from pathlib import Path

import pytest

from minimodels.catalog import EXPERIMENTS, PAPERS
from minimodels.engine.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "minimodels"
SHARED = ("engine", "nn", "data", "eval")
COURSE = ("catalog", "cli", "assignments", "exercise_checks", "__main__", "__init__")  # may see every paper


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool = False) -> set[str]:
    """Every minimodels module that module ``name`` imports (``from .x import y`` gives both .x and .x.y)."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                target = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "minimodels" or m.startswith("minimodels.")}


def top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(source: str, name: str, is_package: bool = False) -> list[str]:
    """Imports of module ``name`` that break the rule: shared packages import only shared packages; a paper imports
    shared packages and itself, never another paper; only the course modules see everything."""
    own = top_package(name)
    if own in COURSE or own == "":
        return []
    bad = []
    for module in sorted(imported_modules(source, name, is_package)):
        other = top_package(module)
        allowed = other in SHARED or (own in PAPERS and other == own)
        if not allowed:
            bad.append(module)
    return bad


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_laid_out_by_paper_over_shared_packages():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(SHARED) | set(PAPERS)
    assert {p.stem for p in PACKAGE.glob("*.py")} == set(COURSE)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    bad = violations(path.read_text(), module_name(path), path.name == "__init__.py")
    assert not bad, f"{path.relative_to(REPO_ROOT)} imports {bad}"


def test_the_rule_catches_what_it_forbids():
    """Negative controls: a paper importing another paper (relatively or not), a shared package importing a paper or
    the catalog; and what is allowed passes."""
    cross = "from ..videoprism.stage1 import run\nimport minimodels.minigpt4video.qa\nfrom ..nn.text import IGNORE\n"
    assert violations(cross, "minimodels.mvgpt.model") == ["minimodels.minigpt4video.qa", "minimodels.videoprism.stage1",
                                                            "minimodels.videoprism.stage1.run"]
    assert violations("from ..mvgpt.model import MVGPTModel\n", "minimodels.eval.loop")
    assert violations("from .. import catalog\n", "minimodels.engine.sweep")
    assert violations("from .model import X\nfrom ..engine.rng import rng\n", "minimodels.mvgpt.captioning") == []


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_names_say_where_they_live(name):
    """Experiment <paper>-<name> is run by minimodels/<paper>/<name with underscores>.py."""
    paper = next(p for p in PAPERS if name.startswith(p + "-"))
    module = f"minimodels.{paper}.{name[len(paper) + 1:].replace('-', '_')}"
    assert EXPERIMENTS[name].run.__module__ == module


CITES_OUTSIDE = re.compile(r"PAPERS\.md|\.\./shared|STYLE\.md")


@pytest.mark.parametrize("path", [*SOURCES, *sorted((REPO_ROOT / "notebooks").glob("*.ipynb")),
                                  REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_references_stay_inside_the_repository(path):
    """The course cites the papers themselves (docs/papers.md), never notes that are not in the repository."""
    found = CITES_OUTSIDE.findall(path.read_text())
    assert not found, f"{path.relative_to(REPO_ROOT)} cites {len(found)} times a file outside the repository"


def test_the_license_the_package_declares_is_in_the_repository():
    assert "MIT License" in (REPO_ROOT / "LICENSE").read_text()
    assert 'license = { text = "MIT" }' in (REPO_ROOT / "pyproject.toml").read_text()
