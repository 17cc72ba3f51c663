"""The paper's figures drawn from training runs: importing this module registers them.

- fig_loss.py: Figs. 1a, 19 and 19b (training loss vs accuracy, across runs and along checkpoints), 10 and 21
  (SIGReg vs prediction loss coloured by accuracy), 11 (Spearman rho against loss / lambda^alpha, Eq. 8);
- fig_sweeps.py: Figs. 8 (lambda x views, Table 7), 9 (architectures), 12 (accuracy by samples per class);
- fig_patch_pca.py: Fig. 14 (PCA of a ViT checkpoint's patch features as RGB).

Data figures take the records of a manifest (`lejepa figures paper --records MANIFEST`); each caption says
whether they are the paper's setting (a manifest under experiments/paper/) or a suite study standing in.
Accuracies are read through evaluation/accuracies.py only.
"""

from __future__ import annotations

from pathlib import Path

from evaluation.paper_figures import fig_loss, fig_patch_pca, fig_sweeps  # noqa: F401  (registration)
from evaluation.paper_figures.registry import select


def figure_inputs(records: list[dict], results_root: Path | None, checkpoint: Path | None
                  ) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """What `lejepa figures paper` hands write_paper_figures: the records for every data figure (each draws
    what they allow and skips, saying why, otherwise), the results root for the within-run figure (it reads
    the runs' metrics.jsonl), and the checkpoint for fig14."""
    data_ids = [entry.id for entry in select(None) if entry.kind == "data"]
    options: dict[str, dict] = {}
    if results_root is not None:
        options["fig19b"] = {"results_root": Path(results_root)}
    if checkpoint is not None:
        options["fig14"] = {"checkpoint": Path(checkpoint)}
    return {fig_id: records for fig_id in data_ids} if records else {}, options
