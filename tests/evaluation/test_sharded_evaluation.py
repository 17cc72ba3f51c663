"""Evaluation on every rank: two gloo processes on the CPU extract the frozen features in shards (each rank a
contiguous run of whole batches, gathered on rank 0) and give the features, linear-probe, kNN and online-probe
numbers of one process, exactly; a whole two-rank run (DDP pretraining with the online probe, then sharded
evaluation) ends with the one-process run's online head, its gradients averaged over the ranks.

As in tests/lejepa/test_distributed.py, the two processes start once per module, and the model has no
BatchNorm (a ViT with a one-layer projector): per-rank BatchNorm statistics differ from the whole batch's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import free_port, make_tiny_spec

from evaluation.evaluate import evaluate_frozen
from evaluation.features import shard_bounds
from evaluation.pipeline import run_job
from evaluation.record import run_dir
from lejepa.checkpoint import checkpoint_paths, load_state
from lejepa.methods import build_method
from lejepa.online_probe import OnlineProbe, online_probe_options
from lejepa.threads import one_thread

WORLD = 2
STEPS = 4
SPEC = make_tiny_spec(
    model={"arch": "vit_tiny_patch16_224", "timm_kwargs": {"embed_dim": 32, "depth": 2, "num_heads": 2},
           "proj_layers": 1, "proj_dim": 16},
    train={"max_steps": STEPS, "checkpoint_every": 2, "log_every": 1},
    eval={"probes": ("linear", "knn", "online_linear"), "batch_size": 128,
          "probe_options": {"knn": {"k": [20, 200], "feature": "last_cls"}}},
)


def _online_probe(method, state: dict) -> OnlineProbe:
    probe = OnlineProbe(method.backbone, method.backbone.embed_dim, 10, SPEC.views.global_views,
                        online_probe_options(SPEC.eval), SPEC.seed, torch.device("cpu"))
    probe.load_state_dict(state["online_probe"])
    probe.remove_hook()
    return probe


def _worker(rank: int, port: int, single: Path, out: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        # The one-process run's final weights and online head, evaluated again on two ranks.
        final = load_state(checkpoint_paths(single / "ckpt")[0])
        method = build_method(SPEC, 16)
        method.load_state_dict(final["model"])
        evaluation = evaluate_frozen(SPEC, method, out / "sharded", f"step{STEPS}", torch.device("cpu"),
                                     _online_probe(method, final))
        assert (evaluation is None) == (rank != 0)
        if rank == 0:
            (out / "sharded.json").write_text(json.dumps(evaluation))
        # A whole run on two ranks: DDP pretraining with the online probe, sharded evaluation, the record.
        record = run_job(SPEC, out / "results", progress=False)
        assert (record == {}) == (rank != 0)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sharded")
    with one_thread():
        record = run_job(SPEC, root / "single", progress=False)
    assert record["status"] == "done"
    single = run_dir(root / "single", SPEC.experiment, SPEC.run_id)
    mp.spawn(_worker, args=(free_port(), single, root / "two"), nprocs=WORLD, join=True)
    return {"single": single, "two": root / "two", "ddp": run_dir(root / "two" / "results", SPEC.experiment, SPEC.run_id)}


def _cache(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_shards_are_contiguous_runs_of_whole_batches():
    assert shard_bounds(1437, 128, 2) == [(0, 768), (768, 1437)]  # 12 batches: 6 and 6 (the last one short)
    assert shard_bounds(1437, 128, 5) == [(0, 384), (384, 640), (640, 1024), (1024, 1280), (1280, 1437)]
    assert shard_bounds(100, 128, 3) == [(0, 100), (100, 100), (100, 100)]  # one batch: rank 0's


def test_two_ranks_extract_exactly_the_features_of_one_process(runs):
    for split in ("train", "test"):
        single = _cache(runs["single"] / "features" / f"{split}.pt")
        two = _cache(runs["two"] / "sharded" / "features" / f"{split}.pt")
        assert single["key"] == two["key"] and torch.equal(single["labels"], two["labels"])
        readouts = ["frozen"] if split == "train" else ["frozen", "pooled"]  # pooled: the online head's input
        assert sorted(single["features"]) == sorted(two["features"]) == readouts
        for name, tensor in single["features"].items():
            assert torch.equal(tensor, two["features"][name]), (split, name)


def test_two_ranks_give_the_probe_knn_and_online_numbers_of_one_process(runs):
    single = json.loads((runs["single"] / "result.json").read_text())["evaluation"]
    two = json.loads((runs["two"] / "sharded.json").read_text())
    timing = "wall_seconds"
    assert {k: v for k, v in two.items() if k not in (timing, "probes")} == {
        k: v for k, v in single.items() if k not in (timing, "probes")}
    for name in ("linear", "knn", "online_linear"):
        assert {k: v for k, v in two["probes"][name].items() if k != timing} == {
            k: v for k, v in single["probes"][name].items() if k != timing}, name
    knn = single["probes"]["knn"]
    assert (knn["feature"], knn["k"], knn["temperature"]) == ("last_cls", [20, 200], 0.07)
    assert 0 < single["probes"]["online_linear"]["top1"] <= 1


def test_a_two_rank_run_ends_with_the_one_process_online_head(runs):
    """Each rank's probe loss is the mean over its half of the batch; averaged over ranks, the gradients are
    the whole batch's, so the head follows the one-process run's up to float rounding."""
    ddp = load_state(checkpoint_paths(runs["ddp"] / "ckpt")[0])["online_probe"]["head"]
    single = load_state(checkpoint_paths(runs["single"] / "ckpt")[0])["online_probe"]["head"]
    for name, tensor in single.items():
        assert torch.allclose(ddp[name], tensor, rtol=0, atol=1e-5 * tensor.abs().max()), name
    record = json.loads((runs["ddp"] / "result.json").read_text())
    assert record["status"] == "done" and record["environment"]["world_size"] == 2
    assert set(record["evaluation"]["probes"]) == {"linear", "knn", "online_linear"}
    lines = [json.loads(line) for line in (runs["ddp"] / "metrics.jsonl").read_text().splitlines()]
    singles = [json.loads(line) for line in (runs["single"] / "metrics.jsonl").read_text().splitlines()]
    assert [line["online_top1"] for line in lines] == pytest.approx([line["online_top1"] for line in singles],
                                                                     abs=1 / 64)
