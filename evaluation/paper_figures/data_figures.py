"""The paper's figures drawn from training runs, listed so that `lejepa figures list` says what each needs.

None is drawn by this module yet: each is registered with planned_data_figure and reported skipped, with
the reason, by `lejepa figures paper`. A drawn one replaces its entry with
`@data_figure(id, title, about, manifest=...)` on a draw(records, **options) -> Drawn.
"""

from __future__ import annotations

from evaluation.paper_figures.registry import planned_data_figure

STABILITY = "records of manifest paper/stability"

planned_data_figure(
    "fig1a", "Training loss vs linear-probe accuracy across runs",
    "LeJEPA's final training loss against frozen linear-probe accuracy over many runs, with Spearman's rho "
    "(paper Fig. 1, top left; ViT-base on ImageNet-1k there).", STABILITY)
planned_data_figure(
    "fig8", "Linear-probe accuracy over lambda and the number of views",
    "Accuracy against lambda, one curve per number of views (paper Fig. 8 and Table 7; ResNet-50 on "
    "ImageNet-100 there).", STABILITY)
planned_data_figure(
    "fig9", "One recipe across architectures",
    "Frozen linear-probe accuracy of LeJEPA pretrained out of the box across about 50 timm architectures of "
    "8 families (paper Fig. 9; ImageNet-10 there).", "records of manifest paper/architectures")
planned_data_figure(
    "fig10", "SIGReg vs prediction loss, coloured by accuracy",
    "Each run's final SIGReg and prediction losses as a point of the plane, coloured by downstream accuracy: "
    "iso-accuracy fronts point to the lower left (paper Fig. 10).", STABILITY)
planned_data_figure(
    "fig11", "Spearman rho of accuracy against loss / lambda^alpha",
    "Spearman correlation between accuracy and the training loss scaled by lambda^(-alpha) (paper Eq. 8) as a "
    "function of alpha, per dataset and model: about 0.85 at alpha = 0, up to 0.99 near 0.4 (paper Fig. 11).",
    "records of a study over lambda, lr and epochs")
planned_data_figure(
    "fig12", "Galaxy10 accuracy by samples per class",
    "In-domain LeJEPA on Galaxy10 against frontier models, frozen and fine-tuned, by number of labelled "
    "samples per class (paper Fig. 12 and Table 3).", "records of manifest paper/in_domain")
planned_data_figure(
    "fig14", "PCA of last-layer patch features as RGB",
    "The first three principal components of a ViT's last-layer patch features shown as RGB on a few images "
    "(paper Fig. 14).", "a ViT checkpoint (e.g. a run of manifest paper/in1k)")
planned_data_figure(
    "fig19", "Training loss vs accuracy, per dataset and model",
    "Training loss against accuracy for several datasets and models, across runs and along one run's "
    "checkpoints (paper Fig. 19).", STABILITY)
planned_data_figure(
    "fig21", "SIGReg vs prediction loss, more models and datasets",
    "Fig. 10's plane for more models and datasets (paper Fig. 21).", "records of manifest paper/in_domain")
