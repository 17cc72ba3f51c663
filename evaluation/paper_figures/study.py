"""What the paper's data figures share: where their records came from (said in every caption), panels for
groups of runs, and the paper's own numbers to draw beside ours."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from matplotlib.figure import Figure

from evaluation.paper_figures.registry import SkipFigure, new_figure
from evaluation.references import canonical_dataset, load_paper_numbers, match_reference
from evaluation.rows import describe, display_name

PAPER_PREFIX = "paper-"  # experiments/paper/<name>.yaml names its experiment paper-<name>


def experiments_of(records: Iterable[dict]) -> list[str]:
    return sorted({str(r.get("experiment")) for r in records})


def source_text(records: list[dict], paper_manifest: str | None = None) -> str:
    """'Drawn from N records of X' and whether X is the paper's setting (a manifest under experiments/paper/,
    `paper_manifest` when the figure has one) or a suite study standing in for it: every data figure's
    caption says which."""
    names = experiments_of(records)
    text = f"Drawn from {len(records)} record(s) of {', '.join(names)}"
    if paper_manifest is not None:
        wanted = PAPER_PREFIX + paper_manifest.removeprefix("paper/")
        if names == [wanted]:
            return text + f", the paper's setting (manifest {paper_manifest})."
        return text + (f": a suite study, not the paper's setting (the paper's runs are manifest "
                       f"{paper_manifest}); compare shapes, not numbers.")
    if all(name.startswith(PAPER_PREFIX) for name in names):
        return text + ", manifests of the paper's settings (experiments/paper/)."
    return text + ": a suite study, not the paper's runs; compare shapes, not numbers."


def finished(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "done"]


def largest_group(records: list[dict], keys: tuple[str, ...]) -> tuple[list[dict], str]:
    """The records of the most common combination of described `keys` (dataset, method, arch, ...), and a
    note naming it and how many other combinations were left out."""
    rows = [describe(r) for r in records]
    counts = Counter(tuple(row.get(k) for k in keys) for row in rows)
    chosen = max(counts, key=lambda combo: (counts[combo], "lejepa" in combo, str(combo)))
    kept = [r for r, row in zip(records, rows) if tuple(row.get(k) for k in keys) == chosen]
    named = [str(v) if k in ("dataset", "method", "arch") else f"{display_name(k)} = {v}"
             for k, v in zip(keys, chosen) if v is not None]
    note = ", ".join(named)
    if len(counts) > 1:
        note += f" (the most runs; {len(counts) - 1} other combination(s) not drawn)"
    return kept, note


def panels(count: int, width: float = 4.2, height: float = 3.6, max_cols: int = 3) -> tuple[Figure, list]:
    """A figure with `count` axes in rows of at most max_cols (unused cells removed)."""
    if count < 1:
        raise SkipFigure("nothing to draw")
    cols = min(count, max_cols)
    rows = math.ceil(count / cols)
    fig, axes = new_figure(rows, cols, width, height)
    for ax in axes[count:]:
        fig.delaxes(ax)
    return fig, axes[:count]


def paper_value(row: dict, shots: int | None = None) -> float | None:
    """The paper's frozen-linear number (percent) for this run's dataset, method, backbone, epochs and
    settings (evaluation/paper_numbers.yaml), else None: drawn beside ours only where it is the same
    experiment."""
    entry = match_reference(load_paper_numbers()["entries"], dataset=row.get("dataset"), method=row.get("method"),
                            arch=row.get("arch"), transfer_from=row.get("transfer_from"),
                            epochs=row.get("pretrain_epochs"), protocol="linear", shots=shots, config=row,
                            roles=("paper",))
    return None if entry is None or "value" not in entry else float(entry["value"])


FRONTIER = ("dinov2", "dinov3")  # the pretrained models the paper compares in-domain LeJEPA with (Table 3)


def frontier_curves(dataset: str) -> dict[str, dict[int | None, float]]:
    """The paper's frozen-linear numbers of frontier models transferred to `dataset`, {arch label: {shots
    (None: all labels): percent}} (evaluation/paper_numbers.yaml; Table 3 for Galaxy10)."""
    curves: dict[str, dict[int | None, float]] = {}
    for entry in load_paper_numbers()["entries"]:
        protocol = entry.get("protocol") or {}
        if (entry.get("role") == "paper" and entry.get("method") in FRONTIER and "value" in entry
                and protocol.get("eval") == "frozen_linear"
                and canonical_dataset(entry.get("dataset")) == canonical_dataset(dataset)):
            label = (entry.get("arch") or {}).get("label") or entry["method"]
            curves.setdefault(label, {})[protocol.get("shots")] = float(entry["value"])
    return curves
