"""Pretraining: a plain PyTorch loop (docs/pipeline.md section 2, docs/recipes.md section 2).

The method states its optimiser (AdamW by default); the learning rate warms up linearly then follows a
cosine; bf16 autocast on CUDA; atomic checkpoints every `train.checkpoint_every` steps and resume from the
newest valid one. Every random draw is a function of (seed, step) or (seed, epoch, image index) and the
checkpoint carries the RNG states, so a resumed CPU run is bit-identical to an uninterrupted one. A
preemption signal from submitit waits for the step in flight, a checkpoint is written, then submitit
requeues (lejepa/preemption.py).

The host reads values back from the device only every `train.log_every` steps and before a checkpoint, so
the GPU is never stalled by a per-step sync. The check for a non-finite loss is therefore deferred too: the
first bad step is remembered on the device, and at the next log or checkpoint step the run stops as
"diverged", before any checkpoint after that step is written.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lejepa.checkpoint import CheckpointWriter, export_weights, load_latest_checkpoint
from lejepa.data import get_dataset
from lejepa.data.common import loader_workers
from lejepa.data.sampling import ViewDataset, balanced_subset, resumable_batches
from lejepa.distributed import broadcast_state, local_device, rank, world_size
from lejepa.divergence import DivergenceWatch
from lejepa.methods import Method, build_method
from lejepa.metrics_log import MetricsLog
from lejepa.online_probe import OnlineProbe, online_probe_options
from lejepa.preemption import hold_preemption_signal
from lejepa.schedules import warmup_cosine
from lejepa.spec import RunSpec
from lejepa.view_pipeline import build_view_pipeline, device_views


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
    # The trained online probe (eval.probes lists online_linear), handed to evaluation; not part of the record.
    online_probe: OnlineProbe | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "online_probe"}


def learning_rate(step: int, total_steps: int, spec: RunSpec) -> float:
    warmup = round(spec.train.warmup_fraction * total_steps)
    return warmup_cosine(step, total_steps, spec.train.lr, warmup, spec.train.lr * spec.train.min_lr_ratio)


def _rng_states() -> dict:
    """Every generator's state as tensors and builtins, so checkpoints load with weights_only=True."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                      "has_gauss": int(has_gauss), "cached": float(cached)}}


def _restore_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    numpy = states["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached"]))
    torch.set_rng_state(states["torch"])


def _wrap_for_ranks(method: Method, spec: RunSpec, device: torch.device) -> torch.nn.Module:
    world = world_size()
    if world == 1:
        return method
    if spec.model.sync_batchnorm or (spec.model.sync_batchnorm is None and device.type == "cuda"):
        # Every BatchNorm (backbone too, not only the projector) then normalises with global-batch statistics,
        # as one process on the whole batch would.
        if device.type != "cuda":
            raise ValueError(
                "model.sync_batchnorm needs GPUs (torch's SyncBatchNorm has no CPU kernel): set it to false for a "
                "CPU run, or use a backbone and projector without BatchNorm (a ViT with model.proj_layers=1)"
            )
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    return torch.nn.parallel.DistributedDataParallel(
        method, device_ids=[device.index] if device.type == "cuda" else None, gradient_as_bucket_view=True,
        static_graph=True,  # every step runs the same graph: DDP can overlap communication with backward
    )


def pretrain(spec: RunSpec, run_dir: Path, progress: bool = True) -> tuple[Method, PretrainResult]:
    """Pretrain (or resume) the spec's method; returns the trained method and what happened."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    this_rank, world = rank(), world_size()
    device = local_device(spec.train.device)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for the fp32 matmuls left outside autocast
    info = get_dataset(spec.data.name)
    image_size = spec.data.image_size or info.image_size
    method = build_method(spec, image_size).to(device)
    if not method.pretrains:
        return method, PretrainResult("done", steps=0, epochs=0.0, wall_seconds=0.0, images_per_second=0.0)

    train_set = info.load(info.train_split, spec.data.root)
    indices = balanced_subset(train_set.targets, spec.data.train_limit, spec.seed)
    views = build_view_pipeline(method.views(spec.views), train_set, image_size, info.mean, info.std, spec.seed)
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
    if total_steps < 1:
        raise ValueError(f"train.epochs={spec.train.epochs:g} over {len(indices)} images is no training step; "
                         f"raise train.epochs")

    model = _wrap_for_ranks(method, spec, device)
    optimizer = method.optimizer(spec.train)
    probe_options = online_probe_options(spec.eval)
    probe = None if probe_options is None else OnlineProbe(
        method.backbone, method.backbone.embed_dim, info.num_classes, spec.views.global_views, probe_options,
        spec.seed, device)
    log = MetricsLog(run_dir / "metrics.jsonl", enabled=this_rank == 0)
    start_step, elapsed = 0, 0.0
    # One rank reads the checkpoint from (shared) storage; the others receive it.
    state = load_latest_checkpoint(run_dir / "ckpt", spec.run_id) if this_rank == 0 else None
    state = broadcast_state(state, device)
    if state is not None:
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _restore_rng_states(state["rng"])
        start_step, elapsed = state["step"], state["elapsed"]
        if probe is not None:
            probe.load_state_dict(state["online_probe"])
    log.truncate_after(start_step)  # lines a killed attempt wrote after its last checkpoint

    loader = torch.utils.data.DataLoader(
        ViewDataset(train_set, views.item_views, spec.seed),
        batch_sampler=resumable_batches(indices, spec.train.batch_size, spec.seed, start_step, total_steps,
                                        this_rank, world),
        num_workers=loader_workers(spec.data.num_workers),
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    use_bf16 = spec.train.precision == "bf16" or (spec.train.precision == "auto" and device.type == "cuda")
    step_model = torch.compile(model) if spec.train.compile else model
    bar = tqdm(total=total_steps, initial=start_step, disable=not progress or this_rank != 0, desc=spec.run_id)
    watch = DivergenceWatch(device)
    writer = CheckpointWriter(run_dir / "ckpt")
    images_seen, loop_start = 0, time.perf_counter()
    wall = elapsed  # training wall time so far, as the newest checkpoint will record it
    loss_value, parts = None, {}
    method.train()
    with hold_preemption_signal() as preemption:  # a preemption waits for the step in flight
        for step, view_batch, labels in device_views(loader, views, device, start_step, this_rank, world):
            lr = learning_rate(step, total_steps, spec)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, step_parts = step_model(view_batch, step)
            watch.observe(step, loss, step_parts)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if spec.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(method.parameters(), spec.train.grad_clip)
            optimizer.step()
            method.on_step_end(step, total_steps)
            if probe is not None:
                probe.step(labels)

            images_seen += spec.train.batch_size
            done = step + 1
            now = time.perf_counter()
            wall = elapsed + now - loop_start
            bar.update(1)
            logging = done % spec.train.log_every == 0 or done == total_steps
            saving = done % spec.train.checkpoint_every == 0 or done == total_steps or preemption.received
            if not (logging or saving):
                continue
            diverged = watch.first_bad_step()  # one sync, the same answer on every rank
            if diverged is not None:
                bar.close()
                writer.wait()  # checkpoints from before the bad step finish; none from after it was started
                if probe is not None:
                    probe.remove_hook()
                return method, PretrainResult("diverged", diverged, diverged / steps_per_epoch, elapsed, 0.0,
                                              None, {}, watch.reason())
            loss_value, parts = watch.global_values(loss, step_parts)
            throughput = images_seen / (now - loop_start)
            if logging:
                online = {} if probe is None else {"online_top1": probe.running_top1()}  # a sync: every rank
                log.append({"step": done, "total_steps": total_steps, "epoch": done / steps_per_epoch,
                            "loss": loss_value, **parts, "lr": lr, "images_per_second": throughput,
                            "elapsed": wall, **online})
                bar.set_postfix(loss=f"{loss_value:.4f}", **{k: f"{v:.4f}" for k, v in parts.items()},
                                img_s=f"{throughput:.0f}")
            if this_rank == 0 and saving:
                writer.save(done, {
                    "run_id": spec.run_id, "step": done, "elapsed": wall,
                    "model": method.state_dict(), "optimizer": optimizer.state_dict(), "rng": _rng_states(),
                    "loss": loss_value, "parts": parts,
                    **({} if probe is None else {"online_probe": probe.state_dict()}),
                })
            if preemption.received:
                writer.wait()  # on disk before submitit requeues and exits
                if this_rank == 0:
                    print(f"lejepa: preemption signal during step {done}: checkpoint step_{done:08d}.pt written, "
                          "handing over to submitit to requeue", flush=True)
                preemption.release()  # submitit requeues the job and exits here
    bar.close()
    writer.wait()
    if probe is not None:
        probe.remove_hook()
    if images_seen == 0 and state is not None:  # already finished earlier: report the saved numbers
        loss_value, parts = state.get("loss"), state.get("parts", {})
    if this_rank == 0:
        export_weights(run_dir, spec.run_id, total_steps, method.state_dict())
    throughput = (total_steps * spec.train.batch_size / wall) if wall > 0 else 0.0
    return method, PretrainResult("done", total_steps, total_steps / steps_per_epoch, wall, throughput,
                                  loss_value, parts, online_probe=probe)
