"""The online linear probe (lejepa/online_probe.py) trained inside the pretraining loop: it changes nothing the
method computes (same losses, weights and RNG states with and without it), logs its running train top-1,
resumes bit-identically from a checkpoint, and draws its head without touching the global RNG."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_spec

from lejepa.checkpoint import checkpoint_paths, load_state
from lejepa.online_probe import OnlineLinearOptions, OnlineProbe
from lejepa.threads import one_thread
from lejepa.train import pretrain

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS = 6
WITH_PROBE = make_tiny_spec(eval={"probes": ("linear", "knn", "online_linear")})
TIMING = ("images_per_second", "elapsed")


def _lines(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _final(run_dir: Path) -> dict:
    return load_state(checkpoint_paths(run_dir / "ckpt")[0])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("online")
    with one_thread():
        pretrain(make_tiny_spec(), out / "without", progress=False)
        _, result = pretrain(WITH_PROBE, out / "with", progress=False)
        assert result.online_probe is not None and "online_probe" not in result.to_dict()
    return out


def test_the_online_probe_changes_no_loss_weight_or_rng_state(runs):
    without, with_probe = _lines(runs / "without"), _lines(runs / "with")
    assert [{k: v for k, v in line.items() if k != "online_top1"} for line in with_probe] == without
    plain, probed = _final(runs / "without"), _final(runs / "with")
    assert probed["step"] == plain["step"] == STEPS
    assert plain["model"].keys() == probed["model"].keys()
    assert all(torch.equal(plain["model"][name], probed["model"][name]) for name in plain["model"])
    assert torch.equal(plain["rng"]["torch"], probed["rng"]["torch"])
    assert "online_probe" in probed and "online_probe" not in plain


def test_its_running_train_accuracy_is_logged_at_every_log_step(runs):
    """log_every is 1: each line's online_top1 is the share of the step's 2 x 32 global views it got right."""
    values = [line["online_top1"] for line in _lines(runs / "with")]
    assert len(values) == STEPS
    assert all(0 <= v <= 1 and (v * 64) == round(v * 64) for v in values)


def test_a_resumed_run_ends_with_the_uninterrupted_runs_head(runs, tmp_path):
    resumed = tmp_path / "resumed"
    (resumed / "ckpt").mkdir(parents=True)
    shutil.copy(runs / "with" / "ckpt" / f"step_{3:08d}.pt", resumed / "ckpt")
    pretrain(WITH_PROBE, resumed, progress=False)
    whole, again = _final(runs / "with")["online_probe"], _final(resumed)["online_probe"]
    for name, tensor in whole["head"].items():
        assert torch.equal(tensor, again["head"][name]), name
    assert torch.equal(whole["optimizer"]["state"][0]["exp_avg"], again["optimizer"]["state"][0]["exp_avg"])
    assert _lines(resumed) == _lines(runs / "with")[3:]


def test_the_head_draws_from_its_own_generator():
    backbone = torch.nn.Linear(4, 8)
    before = torch.get_rng_state()
    probes = [OnlineProbe(backbone, 8, 3, 2, OnlineLinearOptions(), seed=5, device=torch.device("cpu"))
              for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(probes[0].head[1].weight, probes[1].head[1].weight)  # a function of the seed
    other = OnlineProbe(backbone, 8, 3, 2, OnlineLinearOptions(), seed=6, device=torch.device("cpu"))
    assert not torch.equal(other.head[1].weight, probes[0].head[1].weight)
    assert probes[0].head[1].weight.abs().max() <= 8 ** -0.5  # torch's default range, +-1/sqrt(fan_in)


def test_it_trains_on_the_global_views_of_the_backbones_first_call():
    """Two global views of a batch of 3 come first in the backbone's first call; later calls (local views) and
    other rows are not read. A step moves the head toward the labels."""
    backbone = torch.nn.Identity()
    probe = OnlineProbe(backbone, 4, 2, 2, OnlineLinearOptions(lr=0.1), seed=0, device=torch.device("cpu"))
    labels = torch.tensor([0, 1, 1])
    global_views = torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 5.0, 0, 0]]).repeat(2, 1)
    for _ in range(20):
        backbone(torch.cat([global_views, torch.full((6, 4), 99.0)]))  # + rows that are not global views
        backbone(torch.full((9, 4), -99.0))  # a second call: local views
        probe.step(labels)
    assert probe.seen.item() == 20 * 6 and probe.running_top1() > 0.8  # over the 20 steps' global views
    assert probe.running_top1() is None  # counted afresh from each call
    assert probe.logits(global_views[:3]).argmax(1).tolist() == [0, 1, 1]
    with pytest.raises(RuntimeError, match="the backbone's forward\\(\\) did not run this step"):
        probe.step(labels)
