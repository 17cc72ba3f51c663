"""Linear and few-shot probes on synthetic features whose answer is known: separable classes are learnt
(near 100%), random labels stay near chance, and few-shot heads see exactly `shots` images per class."""

import numpy as np
import pytest
import torch

from evaluation.linear_probe import few_shot_probe, holdout_split, linear_probe

CLASSES, DIM = 5, 16


@pytest.fixture(autouse=True)
def one_thread():
    """Heads this small train fastest on one thread (and a shared CI machine stays usable)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def clusters(n: int, seed: int, spread: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """n points, classes in turn, around well-separated centres (the same centres for every seed)."""
    centres = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(0)) * spread
    labels = torch.arange(n) % CLASSES
    noise = torch.randn(n, DIM, generator=torch.Generator().manual_seed(seed))
    return centres[labels] + noise, labels


def few_shot(train, test, shots, **overrides):
    options = {"lr": 1e-2, "features": slice(None), "steps": 150, "batch_size": 64, "weight_decay": 1e-6, "seed": 0}
    return few_shot_probe(*train, *test, CLASSES, shots, 3, **{**options, **overrides})


def test_linear_probe_learns_separable_classes_and_reports_its_choice():
    train, test = clusters(400, seed=1), clusters(200, seed=2)
    result = linear_probe(*train, *test, CLASSES, lrs=(1e-3, 1e-2), choices={"all": slice(None), "half": slice(0, 8)},
                          epochs=10, batch_size=64, weight_decay=1e-6, holdout_fraction=0.1, seed=0)
    assert result.top1 >= 0.97 and result.holdout_top1 >= 0.97
    assert result.lr in (1e-3, 1e-2) and result.features in ("all", "half")
    assert result.top5 is None  # top-5 only where there are more than 10 classes


def test_linear_probe_stays_at_chance_on_random_labels():
    features, _ = clusters(400, seed=1)
    labels = torch.randint(0, CLASSES, (400,), generator=torch.Generator().manual_seed(3))
    test_features, _ = clusters(400, seed=2)
    test_labels = torch.randint(0, CLASSES, (400,), generator=torch.Generator().manual_seed(4))
    result = linear_probe(features, labels, test_features, test_labels, CLASSES, lrs=(1e-2,),
                          choices={"all": slice(None)}, epochs=5, batch_size=64, weight_decay=1e-6,
                          holdout_fraction=0.1, seed=0)
    assert abs(result.top1 - 1 / CLASSES) < 0.1


@pytest.mark.parametrize("shots", [1, 10])
def test_few_shot_probe_learns_separable_classes_from_a_few_images(shots):
    result = few_shot(clusters(500, seed=1), clusters(200, seed=2), shots)
    assert len(result["draws"]) == 3
    assert result["mean"] >= 0.95 and min(result["draws"]) >= 0.9
    assert result["std"] == pytest.approx(np.std(result["draws"]))


def test_few_shot_probe_gets_the_full_probes_step_count_not_its_epochs():
    """A 1-shot draw is one mini-batch: counted in epochs, 20 epochs would be 20 steps, too few at a
    full-data lr of 1e-3 to leave chance; the step budget makes it learn."""
    train, test = clusters(500, seed=1), clusters(200, seed=2)
    assert few_shot(train, test, 1, lr=1e-3, steps=20)["mean"] < 0.5
    assert few_shot(train, test, 1, lr=1e-3, steps=400)["mean"] >= 0.95


def test_few_shot_draws_use_exactly_the_shots_asked_for(monkeypatch):
    """Each draw trains on `shots` images of every class (all of a class that has fewer), and the
    draws pick different images."""
    import evaluation.linear_probe as probe_module

    seen = []
    real_train_heads = probe_module.train_heads

    def recording_train_heads(features, labels, *args, **kwargs):
        seen.append((features.sum(1).tolist(), np.bincount(labels.numpy(), minlength=CLASSES).tolist()))
        return real_train_heads(features, labels, *args, **kwargs)

    monkeypatch.setattr(probe_module, "train_heads", recording_train_heads)
    features, labels = clusters(500, seed=1)
    keep = torch.ones(500, dtype=torch.bool)
    keep[(labels == 4).nonzero()[3:, 0]] = False  # class 4 keeps three images
    few_shot((features[keep], labels[keep]), clusters(200, seed=2), 10, steps=5)
    assert [counts for _, counts in seen] == [[10, 10, 10, 10, 3]] * 3
    assert len({tuple(sorted(rows)) for rows, _ in seen}) == 3


def test_few_shot_probe_is_deterministic_per_seed_and_differs_across_draws():
    train, test = clusters(500, seed=1, spread=0.6), clusters(300, seed=2, spread=0.6)  # overlapping: not 100%
    first, again = few_shot(train, test, 1), few_shot(train, test, 1)
    assert first == again
    assert len(set(first["draws"])) > 1  # each draw picks other images
    assert 1 / CLASSES < first["mean"] < 0.95


def test_holdout_split_is_stratified_and_disjoint():
    labels = torch.arange(100) % CLASSES
    fit, holdout = holdout_split(labels, 0.2, seed=0)
    assert len(np.intersect1d(fit, holdout)) == 0 and len(fit) + len(holdout) == 100
    assert np.bincount(labels[holdout].numpy()).tolist() == [4] * CLASSES
