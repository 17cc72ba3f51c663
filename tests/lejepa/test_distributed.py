"""Two gloo processes on the CPU against one process on the concatenated batch (docs/sigreg.md section 5):
SIGReg's value and gradients, and a short DDP pretraining run's loss curve, match; a checkpoint written
by two ranks resumes in one process.

The two processes are started once per module (starting them costs more than the work they do). The
model has no BatchNorm (ViT backbone, one-layer projector): per-rank BatchNorm statistics would differ from
the whole batch's by design, and torch's SyncBatchNorm has no CPU kernel.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import free_port, make_tiny_spec

import lejepa.sigreg as sigreg_module
from lejepa.checkpoint import checkpoint_paths
from lejepa.distributed import broadcast_state
from lejepa.sigreg import random_directions, sigreg
from lejepa.spec import RunSpec
from lejepa.threads import one_thread
from lejepa.train import pretrain
from lejepa.views import BatchedMultiCropViews

WORLD = 2
STEPS = 4
NO_BATCHNORM = make_tiny_spec(
    model={"arch": "vit_tiny_patch16_224", "timm_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2},
           "proj_layers": 1, "proj_dim": 16},
    train={"max_steps": STEPS, "checkpoint_every": STEPS // 2, "log_every": 1},
)


def _with_views(spec: RunSpec, batched: bool) -> RunSpec:
    return dataclasses.replace(spec, views=dataclasses.replace(spec.views, batched=batched))


RUNS = {"batched": _with_views(NO_BATCHNORM, True), "per_image": _with_views(NO_BATCHNORM, False)}
SIGREG_CASES = {"float64_small_chunks": (torch.float64, 5 * 24), "float32": (torch.float32, None)}


def _sigreg_inputs(dtype: torch.dtype):
    """z (V, N_global, D) with N_global split over the ranks, a linear layer's weight, the directions."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, WORLD * 24, 12, generator=g, dtype=dtype) * 1.2 + 0.1
    weight = torch.randn(12, 12, generator=g, dtype=dtype) / 12**0.5
    return z, weight, random_directions(12, 40, seed=0, step=3).to(dtype)


def _sigreg_value_and_grads(z, weight, directions):
    z, weight = z.clone().requires_grad_(True), weight.clone().requires_grad_(True)
    value = sigreg(z @ weight, directions)
    value.backward()
    return value.detach(), z.grad, weight.grad


def _worker(rank: int, port: int, out: Path) -> None:
    torch.set_num_threads(1)  # two processes on two cores
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        default_chunk = sigreg_module.CHUNK_ELEMENTS["cpu"]
        for name, (dtype, chunk) in SIGREG_CASES.items():
            sigreg_module.CHUNK_ELEMENTS["cpu"] = chunk or default_chunk
            z, weight, directions = _sigreg_inputs(dtype)
            shard = z[:, rank * 24 : (rank + 1) * 24]
            torch.save(_sigreg_value_and_grads(shard, weight, directions), out / f"sigreg_{name}_{rank}.pt")
        sigreg_module.CHUNK_ELEMENTS["cpu"] = default_chunk
        for name, spec in RUNS.items():
            pretrain(spec, out / name, progress=False)
        # A resume reads the checkpoint on rank 0 only and broadcasts it: restart the batched run from its
        # mid-run checkpoint in a folder of its own.
        resumed = out / "resumed"
        if rank == 0:
            (resumed / "ckpt").mkdir(parents=True)
            shutil.copy(out / "batched" / "ckpt" / f"step_{STEPS // 2:08d}.pt", resumed / "ckpt")
        dist.barrier()
        pretrain(RUNS["batched"], resumed, progress=False)
        shipped = {"weights": torch.arange(6.0).view(2, 3), "nested": {"list": [torch.ones(2, dtype=torch.int64), 7]},
                   "text": "x"} if rank == 0 else None
        torch.save(broadcast_state(shipped, torch.device("cpu")), out / f"broadcast_{rank}.pt")
        sync = dataclasses.replace(NO_BATCHNORM, model=dataclasses.replace(NO_BATCHNORM.model, sync_batchnorm=True))
        try:
            pretrain(sync, out / "sync", progress=False)
            message = "no error"
        except ValueError as error:
            message = str(error)
        (out / f"sync_error_{rank}.txt").write_text(message)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> Path:
    """Run everything the tests compare in one 2-process gloo group; returns its output folder."""
    out = tmp_path_factory.mktemp("two_ranks")
    mp.spawn(_worker, args=(free_port(), out), nprocs=WORLD, join=True)
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one_process")
    with one_thread():  # as each rank has: on two busy cores, two threads mostly wait for each other
        for name, spec in RUNS.items():
            pretrain(spec, out / name, progress=False)
    return out


def _losses(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: line[k] for k in ("step", "loss", "pred", "sigreg", "lr")} for line in lines]


# --- SIGReg ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SIGREG_CASES)
def test_sigreg_on_two_ranks_equals_one_process_on_the_whole_batch(two_ranks, case, monkeypatch):
    dtype, chunk = SIGREG_CASES[case]
    if chunk:
        monkeypatch.setitem(sigreg_module.CHUNK_ELEMENTS, "cpu", chunk)
    z, weight, directions = _sigreg_inputs(dtype)
    value, z_grad, weight_grad = _sigreg_value_and_grads(z, weight, directions)
    ranks = [torch.load(two_ranks / f"sigreg_{case}_{rank}.pt") for rank in range(WORLD)]
    rtol = 1e-12 if dtype == torch.float64 else 2e-6

    for rank, (rank_value, rank_z_grad, _) in enumerate(ranks):
        # the statistic on every rank is the whole batch's (sums all-reduced, N = the global count) ...
        assert rank_value.item() == pytest.approx(value.item(), rel=rtol)
        # ... and each rank's rows get the whole-batch gradient times the world size: DDP averages the
        # parameter gradients over ranks, which divides it out again
        expected = WORLD * z_grad[:, rank * 24 : (rank + 1) * 24]
        assert torch.allclose(rank_z_grad, expected, rtol=0, atol=rtol * 10 * expected.abs().max())
    averaged = sum(weight_grad for _, _, weight_grad in ranks) / WORLD  # what DDP applies
    assert torch.allclose(averaged, weight_grad, rtol=0, atol=rtol * 10 * weight_grad.abs().max())
    # a rank that skipped the all-reduce would see only half the batch: a clearly different value
    alone, _, _ = _sigreg_value_and_grads(z[:, :24], weight, directions)
    assert abs(alone.item() - value.item()) > 1e-3 * value.item()


# --- DDP pretraining -------------------------------------------------------------------------------------


@pytest.mark.parametrize("run", RUNS)
def test_ddp_pretraining_matches_one_process_loss_curve(two_ranks, one_process, run):
    ddp, single = _losses(two_ranks / run), _losses(one_process / run)
    assert [line["step"] for line in ddp] == list(range(1, STEPS + 1))
    assert [line["step"] for line in single] == [line["step"] for line in ddp]
    for a, b in zip(ddp, single):
        assert a["lr"] == b["lr"]
        for key in ("loss", "pred", "sigreg"):  # float32 rounding apart (about 1e-7 seen)
            assert a[key] == pytest.approx(b[key], rel=1e-6), (a["step"], key, a[key], b[key])
    assert single[-1]["loss"] != single[0]["loss"]  # it trained: the curve is not flat
    ddp_weights = torch.load(checkpoint_paths(two_ranks / run / "ckpt")[0], weights_only=False)["model"]
    single_weights = torch.load(checkpoint_paths(one_process / run / "ckpt")[0], weights_only=False)["model"]
    for name, tensor in single_weights.items():
        compared = torch.ones_like(tensor, dtype=torch.bool)
        if name.endswith("attn.qkv.bias"):
            # The key bias has no gradient (a softmax ignores a constant added to all of a query's logits): the
            # float noise that stands in for it differs between the runs and Adam normalises it, so only the
            # query and value thirds are compared.
            compared[tensor.numel() // 3 : 2 * tensor.numel() // 3] = False
        expected, got = tensor[compared], ddp_weights[name][compared]
        assert torch.allclose(got, expected, rtol=0, atol=1e-5 * expected.abs().max()), name


def test_two_rank_checkpoint_resumes_in_one_process(two_ranks, one_process, tmp_path):
    run_dir = tmp_path / "resumed"
    shutil.copytree(two_ranks / "per_image", run_dir)
    newest = checkpoint_paths(run_dir / "ckpt")[0]
    assert newest.name == f"step_{STEPS:08d}.pt"
    newest.unlink()  # as if the two-rank job had stopped half-way
    with one_thread():  # as each rank has: on two busy cores, two threads mostly wait for each other
        _, result = pretrain(RUNS["per_image"], run_dir, progress=False)
    assert result.steps == STEPS
    resumed, single = _losses(run_dir), _losses(one_process / "per_image")
    assert [line["step"] for line in resumed] == list(range(1, STEPS + 1))
    for a, b in zip(resumed, single):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6), a["step"]


def test_sync_batchnorm_on_cpu_ranks_is_an_error_that_says_what_to_do(two_ranks):
    for rank in range(WORLD):
        message = (two_ranks / f"sync_error_{rank}.txt").read_text()
        assert "model.sync_batchnorm needs GPUs" in message and "proj_layers=1" in message


# --- batched views do not depend on the world size -------------------------------------------------------


def test_batched_views_of_a_shard_are_the_global_batch_views_of_those_images():
    make = BatchedMultiCropViews(NO_BATCHNORM.views, 16, (0.3,) * 3, (0.4,) * 3, seed=5)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole = make(images, step=4)
    for rank in range(WORLD):
        shard = make(images[rank * 4 : (rank + 1) * 4], step=4, rank=rank, world_size=WORLD)
        for view_whole, view_shard in zip(whole, shard):
            assert torch.allclose(view_whole[rank * 4 : (rank + 1) * 4], view_shard, atol=1e-6)
    with pytest.raises(ValueError, match="rank 2 is not one of the 2 ranks"):
        make(images[:4], step=4, rank=2, world_size=WORLD)



def test_a_resume_reads_the_checkpoint_on_rank_0_and_every_rank_gets_it(two_ranks):
    """The two-rank run restarted from its step-2 checkpoint (read by rank 0, broadcast to rank 1) ends with
    the uninterrupted two-rank run's losses; broadcast_state delivers nested tensors and values intact."""
    resumed = [line for line in _losses(two_ranks / "resumed") if line["step"] > STEPS // 2]
    assert resumed == [line for line in _losses(two_ranks / "batched") if line["step"] > STEPS // 2]
    for rank in range(WORLD):
        got = torch.load(two_ranks / f"broadcast_{rank}.pt")
        assert torch.equal(got["weights"], torch.arange(6.0).view(2, 3)) and got["text"] == "x"
        assert torch.equal(got["nested"]["list"][0], torch.ones(2, dtype=torch.int64)) and got["nested"]["list"][1] == 7
