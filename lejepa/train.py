"""Pretraining: a plain PyTorch loop (DESIGN.md sections 3 and 4).

AdamW with linear warm-up then cosine decay, bf16 autocast on CUDA, atomic checkpoints every
`train.checkpoint_every` steps and resume from the newest valid one. Every random draw is a function of
(seed, step) or (seed, epoch, image index), and the checkpoint carries the RNG states, so a resumed CPU
run is bit-identical to an uninterrupted one. A preemption or time-limit signal from submitit waits for
the step in flight, a checkpoint is written, then submitit requeues (lejepa/preemption.py). A
non-finite loss stops the run as "diverged" before any optimiser step or checkpoint is written from it.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from lejepa.backbones import create_backbone
from lejepa.checkpoint import atomic_write_bytes, load_latest_checkpoint, save_checkpoint
from lejepa.data import get_dataset
from lejepa.data.sampling import ViewDataset, balanced_subset, resumable_batches
from lejepa.distributed import local_device
from lejepa.methods import Method, parse_options
from lejepa.preemption import hold_preemption_signal
from lejepa.spec import RunSpec
from lejepa.views import BatchedMultiCropViews, MultiCropViews, supports_batched_views


@dataclass
class PretrainResult:
    status: str  # "done" or "diverged"
    steps: int
    epochs: float
    wall_seconds: float
    images_per_second: float
    final_loss: float | None = None
    final_parts: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_method(spec: RunSpec, image_size: int) -> Method:
    """Backbone + the spec's method, initialised from the run's seed (same seed, same weights)."""
    method_cls, options = parse_options(spec.method)
    seed_everything(spec.seed)
    return method_cls(create_backbone(spec.model, image_size), options, spec)


def learning_rate(step: int, total_steps: int, spec: RunSpec) -> float:
    peak, warmup = spec.train.lr, max(1, round(spec.train.warmup_fraction * total_steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    floor = peak * spec.train.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    # Biases and normalisation parameters are not decayed (standard for AdamW in SSL recipes).
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _rng_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _restore_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


def _average_over_ranks(loss: torch.Tensor, parts: dict[str, torch.Tensor]):
    """The loss and its parts averaged over ranks (detached): with equal shards, the global-batch values."""
    values = torch.stack([loss.detach().float(), *(v.detach().float() for v in parts.values())])
    dist.all_reduce(values)
    values /= dist.get_world_size()
    return values[0], dict(zip(parts, values[1:]))


def _truncate_metrics(path: Path, last_step: int) -> None:
    """On resume, drop log lines written after the checkpoint so the log reads as one uninterrupted run."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= last_step]
    atomic_write_bytes(path, lambda f: f.write("".join(line + "\n" for line in kept).encode()))


def pretrain(spec: RunSpec, run_dir: Path, progress: bool = True) -> tuple[Method, PretrainResult]:
    """Pretrain (or resume) the spec's method; returns the trained method and what happened."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    device = resolve_device(spec.train.device)
    if world > 1 and device.type == "cuda" and device.index is None:
        device = local_device(spec.train.device)  # one GPU per rank (LOCAL_RANK), not all ranks on GPU 0
    info = get_dataset(spec.data.name)
    image_size = spec.data.image_size or info.image_size
    method = build_method(spec, image_size).to(device)
    if not method.pretrains:
        return method, PretrainResult("done", steps=0, epochs=0.0, wall_seconds=0.0, images_per_second=0.0)

    train_set = info.load(info.train_split, spec.data.root)
    indices = balanced_subset(train_set.targets, spec.data.train_limit, spec.seed)
    batched = spec.views.batched if spec.views.batched is not None else supports_batched_views(train_set)
    if batched:
        batch_views, item_views = BatchedMultiCropViews(spec.views, image_size, info.mean, info.std, spec.seed), None
    else:
        batch_views, item_views = None, MultiCropViews(spec.views, image_size, info.mean, info.std)
    if spec.train.batch_size % world:
        raise ValueError(f"train.batch_size={spec.train.batch_size} must divide by the world size {world}")
    steps_per_epoch = len(indices) // spec.train.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"train.batch_size={spec.train.batch_size} is larger than the {len(indices)} training images; lower it"
        )
    total_steps = math.ceil(spec.train.epochs * steps_per_epoch)
    if spec.train.max_steps is not None:
        total_steps = min(total_steps, spec.train.max_steps)

    if world > 1 and spec.model.sync_batchnorm:
        # Every BatchNorm (backbone too, not only the projector) then normalises with global-batch statistics,
        # as one process on the whole batch would.
        if device.type != "cuda":
            raise ValueError(
                "model.sync_batchnorm needs GPUs (torch's SyncBatchNorm has no CPU kernel): set it to false for a "
                "CPU run, or use a backbone and projector without BatchNorm (a ViT with model.proj_layers=1)"
            )
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    model = method
    if world > 1:
        ddp_device = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(method, device_ids=ddp_device)
    optimizer = torch.optim.AdamW(_param_groups(method, spec.train.weight_decay), lr=spec.train.lr)
    ckpt_dir, metrics_path = run_dir / "ckpt", run_dir / "metrics.jsonl"
    start_step, elapsed = 0, 0.0
    state = load_latest_checkpoint(ckpt_dir, spec.run_id)
    if state is not None:
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _restore_rng_states(state["rng"])
        start_step, elapsed = state["step"], state["elapsed"]
        if rank == 0:
            _truncate_metrics(metrics_path, start_step)

    loader = torch.utils.data.DataLoader(
        ViewDataset(train_set, item_views, spec.seed),
        batch_sampler=resumable_batches(indices, spec.train.batch_size, spec.seed, start_step, total_steps, rank, world),
        num_workers=spec.data.num_workers,
        persistent_workers=False,
    )
    use_bf16 = spec.train.precision == "bf16" or (spec.train.precision == "auto" and device.type == "cuda")
    step_model = torch.compile(model) if spec.train.compile else model
    bar = tqdm(total=total_steps, initial=start_step, disable=not progress or rank != 0, desc=spec.run_id)
    images_seen, loop_start = 0, time.perf_counter()
    wall = elapsed  # training wall time so far, as the newest checkpoint will record it
    loss_value, parts = None, {}
    method.train()
    with hold_preemption_signal() as preemption:  # a preemption waits for the step in flight
        for step, (batch, _labels) in enumerate(loader, start=start_step):
            if batched:
                view_batch = batch_views(batch.to(device, non_blocking=True), step, rank, world)
            else:
                view_batch = [v.to(device, non_blocking=True) for v in batch]
            lr = learning_rate(step, total_steps, spec)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, parts = step_model(view_batch, step)
            if world > 1:  # log the global-batch loss, and let every rank take the same divergence decision
                global_loss, parts = _average_over_ranks(loss, parts)
            else:
                global_loss = loss
            if not torch.isfinite(global_loss):
                bar.close()
                reason = (
                    f"loss became {global_loss.item()} at step {step} (parts: "
                    f"{', '.join(f'{k}={v.item():.4g}' for k, v in parts.items())}); nothing from this step was "
                    f"saved. Lower train.lr, raise train.warmup_fraction or set train.grad_clip"
                )
                return method, PretrainResult(
                    "diverged", step, step / steps_per_epoch, elapsed, 0.0, None, {}, reason
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if spec.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(method.parameters(), spec.train.grad_clip)
            optimizer.step()
            method.on_step_end(step, total_steps)

            images_seen += spec.train.batch_size
            done = step + 1
            now = time.perf_counter()
            throughput = images_seen / (now - loop_start)
            wall = elapsed + now - loop_start
            loss_value, parts = global_loss.item(), {k: v.item() for k, v in parts.items()}
            if rank == 0 and (done % spec.train.log_every == 0 or done == total_steps):
                record = {"step": done, "epoch": done / steps_per_epoch, "loss": loss_value, **parts,
                          "lr": lr, "images_per_second": throughput, "elapsed": wall}
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(record) + "\n")
            bar.set_postfix(loss=f"{loss_value:.4f}", **{k: f"{v:.4f}" for k, v in parts.items()},
                            img_s=f"{throughput:.0f}")
            bar.update(1)
            periodic = done % spec.train.checkpoint_every == 0 or done == total_steps
            if rank == 0 and (periodic or preemption.received):
                save_checkpoint(ckpt_dir, done, {
                    "run_id": spec.run_id, "step": done, "elapsed": wall,
                    "model": method.state_dict(), "optimizer": optimizer.state_dict(), "rng": _rng_states(),
                    "loss": loss_value, "parts": parts,
                })
            if preemption.received:
                if rank == 0:
                    print(f"lejepa: preemption signal during step {done}: checkpoint step_{done:08d}.pt written, "
                          "handing over to submitit to requeue", flush=True)
                preemption.release()  # submitit requeues the job and exits here
    bar.close()
    if images_seen == 0 and state is not None:  # already finished earlier: report the saved numbers
        loss_value, parts = state.get("loss"), state.get("parts", {})
    throughput = (total_steps * spec.train.batch_size / wall) if wall > 0 else 0.0
    return method, PretrainResult("done", total_steps, total_steps / steps_per_epoch, wall, throughput,
                                  loss_value, parts)
