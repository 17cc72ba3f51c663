"""`lejepa figures list` and `lejepa figures paper`: every registered figure as PNG and PDF, its caption file,
and a figures.md index of what was drawn and what was skipped, with why."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.paper_figures.registry import PaperFigure, SkipFigure, select
from lejepa.threads import one_thread

INDEX = "figures.md"
COMMAND = "lejepa figures paper --only {id} --out {out}"


def list_paper_figures() -> list[dict[str, str]]:
    """One row per registered figure: id, origin (paper / suite), kind, what it needs, title."""
    return [{"id": e.id, "origin": e.origin, "kind": e.kind, "needs": e.needs, "title": e.title}
            for e in select(None)]


def main_list() -> str:
    """The text `lejepa figures list` prints."""
    rows = list_paper_figures()
    header = {"id": "id", "origin": "origin", "needs": "needs", "title": "title"}
    widths = {k: max(len(r[k]) for r in [header, *rows]) for k in ("id", "origin", "needs")}
    lines = [f"{r['id']:<{widths['id']}}  {r['origin']:<{widths['origin']}}  {r['needs']:<{widths['needs']}}  "
             f"{r['title']}" for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * widths[k] for k in ("id", "origin", "needs")) + "  -----")
    return "\n".join(lines)


def main_paper(out_dir: Path, only: list[str] | None = None) -> list[Path]:
    """What `lejepa figures paper [--only ...] [--out DIR]` runs: the written files."""
    return write_paper_figures(Path(out_dir), only)


def _save(entry: PaperFigure, drawn, out_dir: Path) -> list[Path]:
    figures = drawn.figure_list()
    paths = []
    for number, fig in enumerate(figures, start=1):
        stem = entry.id if len(figures) == 1 else f"{entry.id}-{number}"
        png, pdf = out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"
        fig.savefig(png, dpi=150)
        fig.savefig(pdf)
        paths += [png, pdf]
    caption = out_dir / f"{entry.id}.caption.txt"
    caption.write_text(drawn.caption.strip() + "\n")
    return [*paths, caption, *drawn.data_files]


def write_paper_figures(out_dir: Path, only: list[str] | None = None,
                        records: Mapping[str, list[dict]] | None = None,
                        options: Mapping[str, dict[str, Any]] | None = None) -> list[Path]:
    """Draw every figure (or those named in `only`) into out_dir: <id>.png, <id>.pdf, <id>.caption.txt, any
    cached data, and figures.md. records maps a figure id to the records it is drawn from (data figures);
    options maps a figure id to keyword options for its make (tests use smaller sizes). Returns the files."""
    entries = select(only)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records, options = records or {}, options or {}
    written: list[Path] = []
    sections: list[str] = []
    skipped: list[str] = []
    with one_thread():
        for entry in entries:
            kwargs = dict(options.get(entry.id, {}))
            if entry.kind == "data":
                kwargs["records"] = records.get(entry.id)
            start = time.perf_counter()
            try:
                drawn = entry.draw(out_dir, **kwargs)
            except SkipFigure as reason:
                skipped.append(f"- **{entry.id}** ({entry.title}): skipped: {reason}")
                continue
            seconds = time.perf_counter() - start
            files = _save(entry, drawn, out_dir)
            for fig in drawn.figure_list():
                fig.clear()  # Agg canvases hold their images until collected; free them now
            written += files
            sections.append(_section(entry, drawn.caption, files, out_dir, seconds))
    index = out_dir / INDEX
    index.write_text(_index_text(sections, skipped, out_dir))
    return [*written, index]


def _section(entry: PaperFigure, caption: str, files: list[Path], out_dir: Path, seconds: float) -> str:
    origin = "The paper's figure" if entry.origin == "paper" else "The suite's own figure, not the paper's"
    names = ", ".join(f"`{p.relative_to(out_dir)}`" for p in files)
    return "\n".join([
        f"## {entry.id}: {entry.title}",
        "",
        f"{origin}; needs {entry.needs}. {entry.about}",
        "",
        f"Caption: {caption.strip()}",
        "",
        f"Command: `{COMMAND.format(id=entry.id, out=out_dir)}` ({seconds:.1f} s on one CPU thread here)",
        "",
        f"Files: {names}",
    ])


def _index_text(sections: list[str], skipped: list[str], out_dir: Path) -> str:
    head = [
        "# Figures of LeJEPA (arXiv 2511.08544), regenerated",
        "",
        (f"Written by `lejepa figures paper --out {out_dir}`. Theory figures are computed on the CPU from the "
         "paper's definitions (settings the paper does not state are marked 'assumed' in each caption); "
         "data figures need the records of their manifest."),
        "",
    ]
    tail = ["", "## Skipped", "", *skipped] if skipped else []
    return "\n".join(head + ["\n\n".join(sections)] + tail) + "\n"
