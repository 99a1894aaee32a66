"""Every notebook whose experiment has full presets switches to one from its `parameters` cell, as papermill
(`papermill NB out.ipynb -p preset NAME`) does it: the injected preset reaches the notebook's config."""

import ast
from pathlib import Path

import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from minimodels.catalog import PRESETS, get_preset
from minimodels.engine.errors import ConfigError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FAMILIES = {"01": "videoprism", "02": "videoprism-lvt", "03": "videoprism-lvt", "04": "mvgpt", "05": "minigpt4video"}


def full_presets(family: str) -> list[str]:
    tiny = get_preset(f"{family}-tiny")
    return [name for name, cfg in PRESETS.items() if type(cfg) is type(tiny) and not name.endswith("-tiny")]


def notebook(number: str):
    (path,) = NOTEBOOKS.glob(f"{number}_*.ipynb")
    return load_notebook_node(str(path))  # as papermill reads it


def config_after(nb, preset: str):
    """Run the parameterized notebook's cells up to the one that makes ``cfg``; return that ``cfg``."""
    nb = parameterize_notebook(nb, {"preset": preset}, report_mode=False)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "<cell>", "exec"), namespace)
            if "cfg" in namespace:
                return namespace["cfg"]
    raise AssertionError("no cell of the notebook makes cfg")


@pytest.mark.parametrize("number", sorted(FAMILIES))
def test_the_parameters_cell_holds_the_tiny_preset(number):
    cells = [c for c in notebook(number).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cells[0].source).body}
    assert values["preset"] == f"{FAMILIES[number]}-tiny"


@pytest.mark.parametrize("number, preset", [(n, p) for n, family in sorted(FAMILIES.items()) if n != "05"
                                            for p in full_presets(family)])
def test_papermill_switches_the_notebook_to_a_full_preset(number, preset, monkeypatch):
    monkeypatch.setattr("builtins.print", lambda *args, **kwargs: None)
    cfg = config_after(notebook(number), preset)
    assert (cfg if number == "01" else cfg.model) == get_preset(preset)


@pytest.mark.parametrize("preset", full_presets("minigpt4video"))
def test_notebook_05_names_what_its_full_presets_still_need(preset, monkeypatch):
    monkeypatch.setattr("builtins.print", lambda *args, **kwargs: None)
    with pytest.raises(ConfigError, match="these sizes need pretrained EVA-CLIP and LLM weights"):
        config_after(notebook("05"), preset)
