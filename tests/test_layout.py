"""The package layout as a rule: shared packages below, one package per paper above, no paper importing another.

Read from the source (every ``import`` and ``from ... import`` statement, relative ones resolved), so a violation is
caught before anything runs.
"""

import ast
import re
import sys
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
    """Imports of module ``name`` that break the rule: the engine (the training loop and its machinery) stands below
    everything and imports only itself; the other shared packages import shared packages; a paper imports shared
    packages and itself, never another paper; only the course modules see everything."""
    own = top_package(name)
    if own in COURSE or own == "":
        return []
    bad = []
    for module in sorted(imported_modules(source, name, is_package)):
        other = top_package(module)
        allowed = other == "engine" if own == "engine" else other in SHARED or (own in PAPERS and other == own)
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
    assert violations(cross, "minimodels.mvgpt.model") == [
        "minimodels.minigpt4video.qa", "minimodels.videoprism.stage1", "minimodels.videoprism.stage1.run"]
    assert violations("from ..mvgpt.model import MVGPTModel\n", "minimodels.eval.loop")
    assert violations("from .. import catalog\n", "minimodels.engine.sweep")
    for below in ("from ..nn.attention import Transformer\n", "from ..data.dataset import as_float\n",
                  "from ..eval.loop import batched\n", "from ..videoprism.stage2 import run\n"):
        assert violations(below, "minimodels.engine.train"), below  # the engine reaches up into nothing
    assert violations("from ..engine.train import train\n", "minimodels.nn.attention") == []
    assert violations("from .model import X\nfrom ..engine.rng import rng\n", "minimodels.mvgpt.captioning") == []


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_names_say_where_they_live(name):
    """Experiment <paper>-<name> is run by minimodels/<paper>/<name with underscores>.py."""
    paper = next(p for p in PAPERS if name.startswith(p + "-"))
    module = f"minimodels.{paper}.{name[len(paper) + 1:].replace('-', '_')}"
    assert EXPERIMENTS[name].run.__module__ == module


def test_no_module_level_context_variable_carries_run_state():
    """What a run depends on (its folder, whether it resumes, its log, a step's share of the batch) is passed in
    calls, never set from afar in a ContextVar that changes what a distant function does."""
    found = [str(p.relative_to(PACKAGE)) for p in SOURCES if "ContextVar" in p.read_text()]
    assert not found, f"context variables in {found}"


def test_the_code_passes_the_linter():
    """ruff with the repository's ruff.toml (pyflakes, pycodestyle with a line limit of 120, sorted imports)."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "--no-cache", "minimodels", "tests", "scripts", "conftest.py"],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    sloppy = subprocess.run([ruff, "check", "--no-cache", "--isolated", "--line-length", "120", "-"],
                            input="import os\nx = undefined_name\n", capture_output=True, text=True)
    assert sloppy.returncode == 1 and "F821" in sloppy.stdout and "F401" in sloppy.stdout  # it can fail


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


def test_the_training_loop_reads_top_down_with_its_dependencies_in_its_signature():
    """engine/train.py holds the loop and little else; what it depends on is passed in the call."""
    import inspect

    from minimodels.engine import train as train_module

    assert len((PACKAGE / "engine" / "train.py").read_text().splitlines()) <= 250
    params = inspect.signature(train_module.train).parameters
    assert {"checkpoints", "resume", "log", "seed", "eval_fn"} <= set(params)


def test_the_suite_hands_out_its_files_longest_first(pytestconfig):
    tree = ast.parse((REPO_ROOT / "conftest.py").read_text())  # read, not imported: importing it sets the suite up
    order = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LONGEST_FIRST")
    missing = [path for path in order if not (REPO_ROOT / path).is_file()]
    assert not missing, f"LONGEST_FIRST names files that are not there (renamed?): {missing}"
    # xdist sorts files by their number of tests unless told not to, which would undo the order above
    addopts = pytestconfig.getini("addopts")
    assert "--dist" in addopts and "--no-loadscope-reorder" in addopts, addopts
