"""The paper's figures (arXiv 2511.08544), regenerated: theory figures from the paper's definitions on the
CPU, data figures from a manifest's records, and the suite's own figures, each marked as such.

    from evaluation.paper_figures import main_list, main_paper, write_paper_figures

Importing the package registers every figure (one module per topic).
"""

from evaluation.paper_figures import (  # noqa: F401  (each module registers its figures)
    data_figures,
    fig_descent,
    fig_dimension,
    fig_probes,
    fig_quadrature,
    fig_sketching,
    sigreg_toy,
)
from evaluation.paper_figures.registry import REGISTRY, Drawn, PaperFigure, SkipFigure
from evaluation.paper_figures.writer import list_paper_figures, main_list, main_paper, write_paper_figures

__all__ = ["REGISTRY", "Drawn", "PaperFigure", "SkipFigure", "list_paper_figures", "main_list", "main_paper",
           "write_paper_figures"]
