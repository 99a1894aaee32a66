"""The one source of randomness: ``rng(seed, step, stream)`` never gives two keys the same stream."""

import itertools
import random

import pytest
import torch

from minimodels.engine.rng import STREAMS, py_rng, rng, seed_everything, stream_seed


def test_no_two_keys_share_a_seed():
    """Every (seed, step, stream) of 10 seeds x 2,000 steps x every stream gets its own generator seed."""
    keys = list(itertools.product(range(10), range(2000), STREAMS))
    seeds = {stream_seed(seed, step, stream) for seed, step, stream in keys}
    assert len(seeds) == len(keys)
    assert all(0 <= s < 2**63 for s in seeds)


def test_the_old_arithmetic_collisions_are_gone():
    """``seed + step`` made seed 1 at step 0 replay seed 0 at step 1; one seed for batches and token dropping made
    the two move in lock-step."""
    draw = lambda *key: torch.rand(8, generator=rng(*key))
    assert not torch.equal(draw(1, 0, "mlm-mask"), draw(0, 1, "mlm-mask"))
    assert not torch.equal(draw(0, 5, "batches"), draw(0, 5, "token-drop"))


def test_a_key_always_gives_the_same_draws_whatever_the_global_state():
    torch.manual_seed(0)
    random.seed(0)
    first = (torch.rand(4, generator=rng(3, 7, "stage2-mask")), py_rng(3, 7, "question-format").random())
    torch.manual_seed(1)
    random.seed(1)
    again = (torch.rand(4, generator=rng(3, 7, "stage2-mask")), py_rng(3, 7, "question-format").random())
    assert torch.equal(first[0], again[0]) and first[1] == again[1]


def test_seed_everything_seeds_the_global_generators_from_its_own_stream():
    seed_everything(4)
    a = (torch.rand(3), random.random())
    seed_everything(4)
    assert torch.equal(a[0], torch.rand(3)) and a[1] == random.random()
    seed_everything(5)
    assert not torch.equal(a[0], torch.rand(3))
    assert not torch.equal(torch.rand(3, generator=rng(4, 0, "global")), torch.rand(3, generator=rng(4, 0, "batches")))


@pytest.mark.parametrize("args, words", [((0, 0, "bathces"), "unknown random stream 'bathces'"),
                                         ((-1, 0, "batches"), "non-negative"), ((0, 1.5, "batches"), "non-negative"),
                                         ((True, 0, "batches"), "non-negative")])
def test_bad_keys_are_refused(args, words):
    with pytest.raises(ValueError, match=words):
        stream_seed(*args)


def test_the_library_draws_only_from_rng():
    """No generator is seeded by hand anywhere in the package: every stream goes through engine/rng.py."""
    from minimodels.engine.paths import REPO_ROOT

    by_hand = ("manual_seed(", "random.Random(", "np.random.seed(", "default_rng(")
    for path in sorted((REPO_ROOT / "minimodels").rglob("*.py")):
        if path.name == "rng.py":
            continue
        text = path.read_text()
        assert not any(call in text for call in by_hand), f"{path.name} seeds a generator by hand"
