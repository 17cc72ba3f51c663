"""The online linear probe, trained during pretraining (paper Section 6.4; the official MINIMAL.md).

The paper's ImageNet-1k headline numbers (77.1 % ViT-L/14, 78.5 % ConvNeXtV2-H) are online probes: a
LayerNorm + linear head on the backbone's pooled output of the augmented views, detached, with its own
AdamW (MINIMAL.md: lr 1e-3, weight decay 1e-7), trained alongside the method. Here it reads the output of
`Backbone.forward` for the global views of each step through a forward hook on `method.backbone`, so
nothing is recomputed, and it changes nothing the method computes: its head is initialised from its own
generator (lejepa/seeds.py, not the global RNG), its optimiser steps only its own parameters, and its
gradients (averaged over ranks under DDP) never reach the backbone. Its state travels in the checkpoint,
so a resumed run ends with the head an uninterrupted one would have.

At log steps the trainer reads its running train top-1 since the previous log step (`online_top1` in
metrics.jsonl); after pretraining, evaluation (evaluation/probes/online_linear.py) applies the head to
the test split's un-augmented `Backbone.forward` features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from lejepa.distributed import world_size
from lejepa.options import Validated, positive, setting
from lejepa.seeds import torch_generator
from lejepa.spec import EvalSpec

ONLINE_PROBE = "online_linear"  # its name in eval.probes and in the probe registry
PROBE_STREAM = 0x6F6E6C70  # separates the head's initial draw from every other use of the run's seed


@dataclass(frozen=True)
class OnlineLinearOptions(Validated):
    OWNER = ONLINE_PROBE
    lr: float = positive(1e-3, "AdamW learning rate, constant (MINIMAL.md: 1e-3)")
    weight_decay: float = setting(1e-7, doc="AdamW weight decay (MINIMAL.md: 1e-7)", low=0)


def online_probe_options(eval_spec: EvalSpec) -> OnlineLinearOptions | None:
    """The online probe's options when the run lists it in eval.probes, else None."""
    if ONLINE_PROBE not in eval_spec.probe_names():
        return None
    return OnlineLinearOptions(**eval_spec.probe_options.get(ONLINE_PROBE, {}))


def _head(embed_dim: int, num_classes: int, seed: int) -> nn.Sequential:
    """LayerNorm then Linear, the linear layer drawn as torch's default (uniform in +-1/sqrt(fan_in)) but
    from the probe's own generator: building it leaves the global RNG, and so every later draw, untouched."""
    linear = nn.utils.skip_init(nn.Linear, embed_dim, num_classes)
    generator, bound = torch_generator(seed, PROBE_STREAM), 1 / math.sqrt(embed_dim)
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound, generator=generator)
        linear.bias.uniform_(-bound, bound, generator=generator)
    return nn.Sequential(nn.LayerNorm(embed_dim), linear)


class OnlineProbe:
    """The head, its optimiser, the hook that captures the backbone's output, and its running accuracy."""

    def __init__(self, backbone: nn.Module, embed_dim: int, num_classes: int, num_global: int,
                 options: OnlineLinearOptions, seed: int, device: torch.device):
        self.head = _head(embed_dim, num_classes, seed).to(device)
        self.optimizer = torch.optim.AdamW(self.head.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        self.num_global, self.device = num_global, device
        self.correct = torch.zeros((), dtype=torch.int64, device=device)  # since the last log step, this rank
        self.seen = torch.zeros((), dtype=torch.int64, device=device)
        self._captured: torch.Tensor | None = None
        self._hook = backbone.register_forward_hook(self._capture)

    def _capture(self, _module: nn.Module, _inputs, output: torch.Tensor) -> None:
        # The step's first backbone call holds the global views, first: methods embed views of one size
        # together, in order (Method.embed_views), and the global views come first.
        if self._captured is None:
            self._captured = output.detach()

    def remove_hook(self) -> None:
        self._hook.remove()
        self._captured = None

    def step(self, labels: torch.Tensor) -> None:
        """One AdamW step on this step's global views (labels: this rank's batch, on the host)."""
        pooled, self._captured = self._captured, None
        if pooled is None:
            raise RuntimeError(
                "online_linear: the backbone's forward() did not run this step (a method that embeds views "
                "another way, e.g. lejepa with method.patch_mask_ratio > 0, calls forward_masked); the online "
                "probe reads Backbone.forward's output: drop online_linear from eval.probes for this run")
        count = self.num_global * len(labels)
        x = pooled[:count].float()
        y = labels.to(x.device, non_blocking=True).repeat(self.num_global)  # rows are [view 0 | view 1 | ...]
        with torch.autocast(x.device.type, enabled=False):
            logits = self.head(x)
            loss = nn.functional.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._average_gradients()
        self.optimizer.step()
        self.correct += (logits.detach().argmax(1) == y).sum()
        self.seen += len(y)

    def _average_gradients(self) -> None:
        """Under DDP each rank's loss is the mean over its own batch: averaging over ranks gives the
        gradient of the mean over the global batch, as one process would compute."""
        world = world_size()
        if world == 1:
            return
        grads = [p.grad for p in self.head.parameters()]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world
        for grad, part in zip(grads, flat.split([g.numel() for g in grads])):
            grad.copy_(part.view_as(grad))

    def running_top1(self) -> float | None:
        """Train top-1 over every rank's global views since the previous call (one sync; call it on
        every rank), or None when no step ran since."""
        counts = torch.stack([self.correct, self.seen])
        if world_size() > 1:
            dist.all_reduce(counts)
        self.correct.zero_()
        self.seen.zero_()
        correct, seen = counts.tolist()
        return correct / seen if seen else None

    @torch.no_grad()
    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The head's logits for pooled backbone features (N, embed_dim)."""
        self.head.eval()
        try:
            return self.head(features.to(self.device).float())
        finally:
            self.head.train()

    def state_dict(self) -> dict:
        return {"head": self.head.state_dict(), "optimizer": self.optimizer.state_dict(),
                "correct": self.correct.clone(), "seen": self.seen.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.correct.copy_(state["correct"])
        self.seen.copy_(state["seen"])
