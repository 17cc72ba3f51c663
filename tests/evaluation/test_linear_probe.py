"""Linear and few-shot probes on synthetic features whose answer is known: separable classes are learnt
(near 100%), random labels stay near chance, few-shot heads see exactly `shots` images per class, and on
features of three kinds (isotropic, strongly anisotropic like a random-init backbone's, raw pixels) the
probe reaches a converged logistic regression whose C is chosen on the same held-out split."""

import math

import numpy as np
import pytest
import torch

import evaluation.linear_probe as probe_module
from evaluation.linear_probe import (
    DEFAULT_LRS,
    few_shot_probe,
    head_name,
    holdout_split,
    linear_probe,
    lr_scale,
    train_heads,
)
from evaluation.probe_normalization import NORMS, fit_normalization
from lejepa import threads
from lejepa.spec import EvalSpec

CLASSES, DIM = 5, 16


@pytest.fixture(autouse=True)
def one_thread():
    """Heads this small train fastest on one thread (and a shared CI machine stays usable)."""
    with threads.one_thread():
        yield


def clusters(n: int, seed: int, spread: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """n points, classes in turn, around well-separated centres (the same centres for every seed)."""
    centres = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(0)) * spread
    labels = torch.arange(n) % CLASSES
    noise = torch.randn(n, DIM, generator=torch.Generator().manual_seed(seed))
    return centres[labels] + noise, labels


def few_shot(train, test, shots, **overrides):
    options = {"lr": 1e-2, "features": slice(None), "steps": 150, "batch_size": 64, "weight_decay": 1e-6, "seed": 0}
    return few_shot_probe(*train, *test, CLASSES, shots, 3, **{**options, **overrides})


def test_linear_probe_learns_separable_classes_and_names_the_head_it_chose():
    train, test = clusters(400, seed=1), clusters(200, seed=2)
    lrs, choices = (1e-3, 1e-2), {"all": slice(None), "half": slice(0, 8)}
    result = linear_probe(*train, *test, CLASSES, lrs=lrs, choices=choices, epochs=10, batch_size=64,
                          weight_decay=1e-6, holdout_fraction=0.1, seed=0)
    assert result.top1 >= 0.97 and result.holdout_top1 >= 0.97
    assert result.lr in lrs and result.features in choices and result.norm in NORMS
    assert result.name == head_name(result.norm, result.lr, result.features)
    assert sorted(result.holdout_by_head) == sorted(head_name(n, lr, c) for n in NORMS for lr in lrs for c in choices)
    chosen = result.holdout_by_head[result.name]
    assert result.holdout_cross_entropy == chosen["cross_entropy"] and result.holdout_top1 == chosen["top1"]
    assert chosen["cross_entropy"] == min(head["cross_entropy"] for head in result.holdout_by_head.values())
    assert result.top5 is None  # top-5 only where there are more than 10 classes


def test_head_names_are_stable():
    assert head_name("standardize", 0.003, "all") == "standardize_lr0.003_all"
    assert head_name("layernorm", 1e-5, "last_block") == "layernorm_lr1e-05_last_block"
    assert len(DEFAULT_LRS) == 13 and DEFAULT_LRS[0] == 1e-5 and DEFAULT_LRS[-1] == 0.1


def test_linear_probe_stays_at_chance_on_random_labels():
    features, _ = clusters(400, seed=1)
    labels = torch.randint(0, CLASSES, (400,), generator=torch.Generator().manual_seed(3))
    test_features, _ = clusters(400, seed=2)
    test_labels = torch.randint(0, CLASSES, (400,), generator=torch.Generator().manual_seed(4))
    result = linear_probe(features, labels, test_features, test_labels, CLASSES, lrs=(1e-2,),
                          choices={"all": slice(None)}, epochs=5, batch_size=64, weight_decay=1e-6,
                          holdout_fraction=0.1, seed=0)
    assert abs(result.top1 - 1 / CLASSES) < 0.1


def test_stacked_heads_train_as_torch_adamw_trains_each_head_alone():
    """The stacked weight, written-out gradient and per-column AdamW are the same arithmetic as one
    nn.Linear per (normalisation, choice, lr) trained by torch.optim.AdamW on the same mini-batches."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(300, 12, generator=generator) * torch.logspace(-3, 1, 12)
    labels = torch.randint(0, 4, (300,), generator=generator)
    lrs, choices, epochs, batch, decay = (1e-3, 3e-2), {"all": slice(None), "half": slice(0, 6)}, 3, 64, 1e-2
    groups = train_heads(features, labels, 4, lrs, choices, epochs, batch, decay, seed=0)
    assert [(g.norm, g.features) for g in groups] == [(n, c) for n in NORMS for c in choices]
    steps_per_epoch = math.ceil(300 / batch)
    warmup = round(0.1 * epochs * steps_per_epoch)
    for group in groups:
        x = group.normalize(features[:, group.columns])
        for i, lr in enumerate(lrs):
            head = torch.nn.Linear(x.shape[1], 4)
            torch.nn.init.zeros_(head.weight), torch.nn.init.zeros_(head.bias)
            optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=decay)
            order_generator, step = torch.Generator().manual_seed(0), 0
            for _ in range(epochs):
                order = torch.randperm(300, generator=order_generator)
                for start in range(0, 300, batch):
                    rows = order[start : start + batch]
                    optimizer.param_groups[0]["lr"] = lr * lr_scale(step, warmup, epochs * steps_per_epoch)
                    optimizer.zero_grad()
                    torch.nn.functional.cross_entropy(head(x[rows]), labels[rows]).backward()
                    optimizer.step()
                    step += 1
            expected = head(x).detach()
            assert expected.abs().max() > 0.01  # it moved
            torch.testing.assert_close(group.head_logits(features, i), expected, atol=2e-6, rtol=1e-4)


def test_normalised_fit_copy_and_per_batch_normalisation_train_the_same_heads(monkeypatch):
    train = clusters(300, seed=1, spread=0.5)
    args = (CLASSES, (1e-3, 1e-1), {"all": slice(None)}, 4, 64, 1e-6, 0)
    copied = train_heads(*train, *args)
    monkeypatch.setattr(probe_module, "FIT_COPY_BYTES", 0)
    per_batch = train_heads(*train, *args)
    for a, b in zip(copied, per_batch):
        torch.testing.assert_close(a.weight, b.weight, atol=1e-5, rtol=1e-4)


def test_normalisations_take_their_statistics_from_the_fit_split_only(monkeypatch):
    seen = []

    def recording(norm, features):
        seen.append((norm, len(features)))
        return fit_normalization(norm, features)

    monkeypatch.setattr(probe_module, "fit_normalization", recording)
    train, test = clusters(400, seed=1), clusters(200, seed=2)
    linear_probe(*train, *test, CLASSES, lrs=(1e-2,), choices={"all": slice(None)}, epochs=1, batch_size=64,
                 weight_decay=1e-6, holdout_fraction=0.25, seed=0, min_steps=0)
    fit, _ = holdout_split(train[1], 0.25, seed=0)
    assert seen == [(norm, len(fit)) for norm in NORMS] and len(fit) == 300


def test_standardize_and_whiten_give_unit_variance_and_leave_constant_features_at_zero():
    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(6, 6, generator=generator) * torch.logspace(-1, 0.5, 6)
    features = torch.cat([torch.randn(500, 6, generator=generator) @ mixing + 7, torch.full((500, 1), 3.0)], 1)
    standardized = fit_normalization("standardize", features)(features).double()
    torch.testing.assert_close(standardized[:, :6].std(0, correction=0), torch.ones(6, dtype=torch.float64),
                               atol=1e-4, rtol=0)
    assert standardized[:, 6].abs().max() == 0
    whitened = fit_normalization("whiten", features)(features).double()
    covariance = whitened.T @ whitened / len(whitened)
    torch.testing.assert_close(covariance[:6, :6], torch.eye(6, dtype=torch.float64), atol=1e-3, rtol=0)
    assert whitened[:, 6].abs().max() < 1e-3  # the constant feature (eigenvalue 0) stays at 0
    layer_normed = fit_normalization("layernorm", features)(features)
    torch.testing.assert_close(layer_normed.mean(1), torch.zeros(500), atol=1e-5, rtol=0)


def test_an_unknown_normalisation_is_refused_by_name():
    train, test = clusters(100, seed=1), clusters(50, seed=2)
    with pytest.raises(ValueError, match="unknown probe normalisation 'batchnorm'.*layernorm"):
        linear_probe(*train, *test, CLASSES, choices={"all": slice(None)}, epochs=1, batch_size=64,
                     weight_decay=1e-6, holdout_fraction=0.1, seed=0, norms=("batchnorm",))


def test_whitening_is_left_out_where_there_are_too_few_samples_per_dimension():
    """300 fit images: whiten the 16 features (18.75 per dimension), not 32 (9.4 per dimension)."""
    train, test = clusters(400, seed=1), clusters(100, seed=2)
    wide_train = (torch.cat([train[0], train[0].flip(0)], 1), train[1])
    wide_test = (torch.cat([test[0], test[0].flip(0)], 1), test[1])
    options = {"lrs": (1e-2,), "epochs": 1, "batch_size": 64, "weight_decay": 1e-6, "holdout_fraction": 0.25,
               "seed": 0, "min_steps": 0}
    narrow = linear_probe(*train, *test, CLASSES, choices={"all": slice(None)}, **options)
    assert sorted(narrow.holdout_by_head) == sorted(f"{norm}_lr0.01_all" for norm in NORMS)
    wide = linear_probe(*wide_train, *wide_test, CLASSES, choices={"all": slice(None), "half": slice(0, 16)}, **options)
    assert sorted(wide.holdout_by_head) == sorted(["layernorm_lr0.01_all", "standardize_lr0.01_all", "layernorm_lr0.01_half",
                                                   "standardize_lr0.01_half", "whiten_lr0.01_half"])
    with pytest.raises(ValueError, match="no head to train.*whiten needs 10 samples per feature dimension"):
        linear_probe(*wide_train, *wide_test, CLASSES, choices={"all": slice(None)}, norms=("whiten",), **options)


def test_small_training_sets_get_the_minimum_step_count():
    """200 fit images in batches of 64 are 4 steps an epoch: 2 epochs would be 8 steps."""
    train, test = clusters(250, seed=1), clusters(50, seed=2)
    options = {"lrs": (1e-2,), "choices": {"all": slice(None)}, "batch_size": 64, "weight_decay": 1e-6,
               "holdout_fraction": 0.2, "seed": 0, "norms": ("layernorm",)}
    assert linear_probe(*train, *test, CLASSES, epochs=2, min_steps=100, **options).steps == 25 * 4
    assert linear_probe(*train, *test, CLASSES, epochs=2, min_steps=0, **options).steps == 2 * 4


# Probe convergence: features of three kinds, the suite's probe (its default grid, EvalSpec's epochs,
# batch and weight decay) against scikit-learn's multinomial logistic regression on standardised
# features, C chosen on the same held-out split. "Within 1 point" is on test sets of 2,000 or more.

def logistic_regression_top1(train, test, fraction: float, seed: int) -> float:
    """Test top-1 of the C (17 from 1e-4 to 1e4) with the best held-out top-1, fit split only. Newton's
    method (scikit-learn's newton-cholesky) converges in a few iterations however ill-conditioned the
    features; on one BLAS thread, as the probe runs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    (train_x, train_y), (test_x, test_y) = train, test
    fit, holdout = holdout_split(train_y, fraction, seed)
    scaler = StandardScaler().fit(train_x[fit].numpy())
    fit_x, holdout_x, test_np = (scaler.transform(a.numpy()) for a in (train_x[fit], train_x[holdout], test_x))
    best = (-1.0, 0.0)
    with threadpool_limits(1):
        for c in np.logspace(-4, 4, 17):
            model = LogisticRegression(C=c, solver="newton-cholesky", max_iter=1000).fit(fit_x, train_y[fit].numpy())
            assert model.n_iter_[0] < 1000  # converged
            holdout_top1 = model.score(holdout_x, train_y[holdout].numpy())
            if holdout_top1 > best[0]:
                best = (holdout_top1, model.score(test_np, test_y.numpy()))
    return best[1]


def isotropic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """10 overlapping Gaussian classes, unit covariance, in 32 dimensions (about 80% separable)."""
    centres = torch.randn(10, 32, generator=torch.Generator().manual_seed(0)) * 0.5
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return centres[labels] + torch.randn(n, 32, generator=generator), labels


def anisotropic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A random-init backbone's shape: 3 directions, not along the feature axes, carry about 10^4 times
    the variance of the other 29, which carry the class signal (10 classes, about 80% separable)."""
    fixed = torch.Generator().manual_seed(0)
    centres = torch.randn(10, 32, generator=fixed) * 0.5
    nuisance = torch.linalg.qr(torch.randn(32, 32, generator=fixed))[0][:, :3]
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=generator)
    signal = centres[labels] + torch.randn(n, 32, generator=generator)
    return 0.01 * signal + torch.randn(n, 3, generator=generator) @ nuisance.T, labels


def digits_pixels() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's 8x8 digits as raw pixel features (0-16), 1,100 train and 697 test, a fixed split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = torch.tensor(digits.data, dtype=torch.float32), torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return (x[order[:1100]], y[order[:1100]]), (x[order[1100:]], y[order[1100:]])


KINDS = {
    "isotropic": lambda: (isotropic(3000, seed=1), isotropic(3000, seed=2)),
    "anisotropic": lambda: (anisotropic(3000, seed=1), anisotropic(3000, seed=2)),
    "digits_pixels": digits_pixels,
}


def suite_probe(train, test, **overrides):
    spec = EvalSpec()
    options = {"choices": {"all": slice(None)}, "epochs": spec.linear_epochs, "batch_size": spec.linear_batch_size,
               "weight_decay": spec.linear_weight_decay, "holdout_fraction": spec.holdout_fraction, "seed": 0}
    return linear_probe(*train, *test, 10, **{**options, **overrides})


# digits' always-blank border pixels make the Hessian singular at large C: scikit-learn says so and
# finishes with lbfgs (still converged: the n_iter_ check).
@pytest.mark.filterwarnings("ignore:The inner solver of NewtonCholeskySolver")
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_probe_reaches_a_converged_logistic_regression(kind):
    train, test = KINDS[kind]()
    reference = logistic_regression_top1(train, test, EvalSpec().holdout_fraction, seed=0)
    result = suite_probe(train, test)
    print(f"{kind}: probe {result.top1:.4f} ({result.name}), logistic regression {reference:.4f}")
    assert result.top1 >= reference - 0.01, (kind, result.name, result.top1, reference)
    assert reference > 0.75  # the kinds are not trivial, nor hopeless


@pytest.mark.filterwarnings("ignore:The inner solver of NewtonCholeskySolver")
def test_the_old_grid_falls_short_on_anisotropic_features():
    """What the convergence test guards against: LayerNorm heads with the lrs {1e-3, 3e-3, 1e-2} stop far
    short of logistic regression when the class signal lies in low-variance directions."""
    train, test = KINDS["anisotropic"]()
    reference = logistic_regression_top1(train, test, EvalSpec().holdout_fraction, seed=0)
    assert suite_probe(train, test, lrs=(1e-3, 3e-3, 1e-2), norms=("layernorm",)).top1 < reference - 0.2


@pytest.mark.parametrize("shots", [1, 10])
def test_few_shot_probe_learns_separable_classes_from_a_few_images(shots):
    result = few_shot(clusters(500, seed=1), clusters(200, seed=2), shots)
    assert len(result["draws"]) == 3
    assert result["mean"] >= 0.95 and min(result["draws"]) >= 0.9
    assert result["std"] == pytest.approx(np.std(result["draws"]))


@pytest.mark.parametrize("norm", ["standardize", "whiten"])
def test_few_shot_probe_uses_the_normalisation_it_is_given(norm, monkeypatch):
    chosen = []
    real_fit_normalization = probe_module.fit_normalization
    monkeypatch.setattr(probe_module, "fit_normalization",
                        lambda name, features: chosen.append((name, len(features))) or real_fit_normalization(name, features))
    result = few_shot(clusters(500, seed=1), clusters(200, seed=2), 10, norm=norm)
    assert chosen == [(norm, 500)] * 3  # statistics of all of train's images, none of their labels
    assert result["mean"] >= 0.95


@pytest.mark.parametrize(("shots", "steps", "batch", "epochs"), [(1, 20, 5, 20), (10, 400, 50, 400), (40, 150, 64, 38)])
def test_few_shot_probe_gets_the_full_probes_step_count_not_its_epochs(shots, steps, batch, epochs, monkeypatch):
    """Each draw trains for `steps` optimiser steps (rounded up to whole epochs) in batches of at most 64,
    whatever its image count: 1 shot x 5 classes is one batch of 5 an epoch, 20 epochs for 20 steps;
    10 shots, one batch of 50, 400 epochs; 40 shots, 200 images in 4 batches of 64, 38 epochs (152 steps)."""
    seen = []
    real_train_heads = probe_module.train_heads

    def recording_train_heads(features, labels, num_classes, lrs, choices, epochs, batch_size, *args, **kwargs):
        seen.append((len(features), batch_size, epochs))
        return real_train_heads(features, labels, num_classes, lrs, choices, epochs, batch_size, *args, **kwargs)

    monkeypatch.setattr(probe_module, "train_heads", recording_train_heads)
    result = few_shot(clusters(500, seed=1), clusters(200, seed=2), shots, lr=1e-3, steps=steps)
    assert seen == [(shots * CLASSES, batch, epochs)] * 3
    assert result["mean"] >= 0.95


def test_few_shot_draws_use_exactly_the_shots_asked_for(monkeypatch):
    """Each draw trains on `shots` images of every class (all of a class that has fewer), and the
    draws pick different images."""
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


def test_heads_train_on_the_device_asked_for_and_fall_back_to_the_cpu_if_it_fails(caplog):
    """A GPU run's heads train on its device (no GPU here: the CPU named explicitly gives the same numbers);
    a device on which the probe fails (the meta device: nothing can be read back from it) falls back to the
    CPU path with the same numbers, and the log names the device and the error."""
    train, test = clusters(300, seed=1), clusters(100, seed=2)
    grid = {"lrs": (1e-3, 1e-2), "choices": {"all": slice(None)}, "epochs": 3, "batch_size": 64,
            "weight_decay": 1e-6, "holdout_fraction": 0.1, "seed": 0, "min_steps": 20}
    reference = linear_probe(*train, *test, CLASSES, **grid)
    assert linear_probe(*train, *test, CLASSES, device="cpu", **grid) == reference
    with caplog.at_level("WARNING", logger="evaluation.linear_probe"):
        assert linear_probe(*train, *test, CLASSES, device="meta", **grid) == reference
    assert "linear probe on meta failed" in caplog.text and "on the CPU instead" in caplog.text
