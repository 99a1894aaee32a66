"""The grade cells' referee (minimodels/exercise_checks.py) on its own: what an answer cell may reassign is put back,
a forbidden function is caught under any name, and comparisons ask for the type and shape the text asked for."""

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minimodels.exercise_checks import NotAllowed, Referee, close, same
from minimodels.nn import video_vit


@pytest.fixture
def notebook():
    """A namespace as a set-up cell leaves it, with its referee; whatever a test tampers with is put back after."""
    namespace = {"torch": torch, "np": np, "patchify": video_vit.patchify, "clips": [1, 2]}
    namespace["_check"] = referee = Referee(namespace)
    yield namespace
    referee.restore()


def test_what_an_answer_reassigns_is_put_back(notebook):
    real_equal, real_patchify = torch.equal, video_vit.patchify
    exec("torch.equal = lambda *a, **k: True\n"
         "import minimodels.nn.video_vit as v\nv.patchify = None\n"
         "patchify = print\nnp = None\nrange = lambda *a: []\nclips = 'mine'\nmine = 1", notebook)
    notebook["_check"].restore()
    assert torch.equal is real_equal and video_vit.patchify is real_patchify
    assert notebook["patchify"] is real_patchify and notebook["np"] is np  # the set-up's imports
    assert "range" not in notebook, "a name an answer gave a builtin is dropped: the checks read Python's range"
    assert notebook["clips"] == "mine" and notebook["mine"] == 1, "the answers' own names and data stay"


def test_a_forbidden_function_is_caught_under_any_name_and_a_package_by_its_files(notebook):
    notebook["F"] = F
    exec("alias = patchify\ndef answer(x):\n    return alias(x, 2)\n"
         "def by_c(x):\n    return F.scaled_dot_product_attention(x, x, x)\n"
         "from einops import rearrange\ndef by_einops(x):\n    return rearrange(x, 'a b -> b a')\n"
         "def fine(x):\n    return x.transpose(0, 1)", notebook)
    check = notebook["_check"]
    with pytest.raises(NotAllowed, match="answer calls minimodels.nn.video_vit.patchify"):
        check.answer(notebook["answer"], forbid=["minimodels.nn.video_vit.patchify"])(torch.ones(1, 1, 4, 4, 3))
    with pytest.raises(NotAllowed, match="by_c calls torch.nn.functional.scaled_dot_product_attention"):
        check.answer(notebook["by_c"], forbid=["torch.nn.functional.scaled_dot_product_attention"])(torch.ones(1, 2, 4))
    with pytest.raises(NotAllowed, match="by_einops calls einops"):
        check.answer(notebook["by_einops"], forbid=["einops"])(torch.ones(2, 3))
    assert check.answer(notebook["fine"], forbid=["einops"])(torch.ones(2, 3)).shape == (3, 2)


def test_an_answer_that_turns_the_watch_off_is_not_allowed_and_calls_are_counted(notebook):
    def blind(x):
        sys.setprofile(None)
        return x

    with pytest.raises(NotAllowed, match="turned off the grader's watch"):
        notebook["_check"].answer(blind)(1)
    twice = notebook["_check"].answer(lambda x: video_vit.patchify(video_vit.patchify(x, 1)[:, :, None], 1),
                                      count={"patchify": video_vit.patchify})
    twice(torch.ones(1, 1, 2, 2, 3))
    assert twice.calls["patchify"] == 2


def test_comparisons_ask_for_the_type_and_shape_the_text_asks_for():
    class Anything(float):
        __eq__ = lambda self, other: True  # noqa: E731
        __hash__ = float.__hash__

    assert same(np.array([1, 2]), np.array([1, 2])) and not same([1, 2], np.array([1, 2])), "a list is no array"
    assert not same(np.array([1.0, 2.0]), np.array([1, 2])), "floats where integers are asked"
    assert not close(torch.tensor([1.0]), torch.tensor(1.0)), "a (1,) tensor is no scalar, whatever allclose says"
    assert close(torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.0 + 1e-7)), "any float dtype, within tolerance"
    assert not close(torch.tensor(100.0), 100.0) and not same(Anything(1.0), 2.0), "a tensor, or an object, no float"
    assert same({"b": (1, None), "a": "x"}, {"a": "x", "b": (1, None)}), "dicts key by key, in any order"
    assert not same((torch.ones(2), 1), (torch.ones(2), 1.0)), "an int is no float"
