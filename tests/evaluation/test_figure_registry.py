"""The figure registry behind `lejepa figures list|paper`: what each figure needs, the files and index
`write_paper_figures` writes, skips with their reasons, data figures fed records, and the suite's own toy
with its cached record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluation.paper_figures import (
    list_paper_figures,
    main_list,
    main_paper,
    registry,
    sigreg_toy,
    write_paper_figures,
)
from evaluation.paper_figures.registry import Drawn, data_figure, new_figure

THEORY = {"fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig15", "fig16", "fig17", "fig18", "fig20"}
DATA = {"fig1a", "fig8", "fig9", "fig10", "fig11", "fig12", "fig19", "fig19b", "fig21"}
SMALL = {"sigreg_toy": {"samples": 64, "steps": 5}}


def test_list_names_every_figure_and_what_it_needs():
    rows = {row["id"]: row for row in list_paper_figures()}
    assert set(rows) == THEORY | DATA | {"fig14", "sigreg_toy"}
    assert all(rows[i]["needs"] == "nothing" and rows[i]["origin"] == "paper" for i in THEORY)
    assert all(rows[i]["kind"] == "data" and rows[i]["needs"].startswith("records of manifest ") for i in DATA)
    assert rows["fig9"]["needs"] == "records of manifest paper/fig9"
    assert rows["fig8"]["needs"] == "records of manifest paper/table7"
    assert rows["fig12"]["needs"] == "records of manifest paper/table3"
    assert rows["fig14"]["needs"].startswith("a ViT checkpoint") and rows["fig14"]["kind"] == "checkpoint"
    assert rows["sigreg_toy"]["origin"] == "suite"
    ids = [row["id"] for row in list_paper_figures()]
    assert ids.index("fig2") < ids.index("fig10") < ids.index("fig20") < ids.index("sigreg_toy")  # numeric
    text = main_list()
    assert text.splitlines()[0].split() == ["id", "origin", "needs", "title"]
    assert all(any(line.startswith(i + " ") for line in text.splitlines()) for i in rows)


def test_write_paper_figures_writes_each_figure_its_caption_and_the_index(tmp_path: Path):
    only = ["fig15", "fig8", "sigreg_toy"]
    paths = write_paper_figures(tmp_path, only, options=SMALL)
    names = {p.name for p in paths}
    for fig_id in ("fig15", "sigreg_toy"):
        assert {f"{fig_id}.png", f"{fig_id}.pdf", f"{fig_id}.caption.txt"} <= names
        assert (tmp_path / f"{fig_id}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / f"{fig_id}.pdf").read_bytes()[:4] == b"%PDF"
    assert "sigreg_toy.json" in names and "figures.md" in names and not any("fig8" in n for n in names)
    caption = (tmp_path / "fig15.caption.txt").read_text().strip()
    assert caption == registry.REGISTRY["fig15"].draw(None).caption
    index = (tmp_path / "figures.md").read_text()
    assert f"Caption: {caption}" in index
    assert f"`lejepa figures paper --only fig15 --out {tmp_path}`" in index
    assert "The suite's own figure, not the paper's" in index.split("## sigreg_toy")[1]
    skipped = index.split("## Skipped")[1]
    assert "**fig8**" in skipped and "needs the records of manifest paper/table7" in skipped
    assert "## fig8" not in index


def test_main_paper_draws_the_selection(tmp_path: Path):
    paths = main_paper(tmp_path, ["fig15"])
    assert [p.name for p in paths] == ["fig15.png", "fig15.pdf", "fig15.caption.txt", "figures.md"]


def test_an_unknown_figure_id_is_refused_with_the_known_ones(tmp_path: Path):
    with pytest.raises(ValueError, match=r"unknown figure id\(s\) fig99; known: fig1a, fig2, .*lejepa figures list"):
        write_paper_figures(tmp_path, ["fig5", "fig99"])
    assert not (tmp_path / "figures.md").exists()


def test_a_data_figure_skips_without_records_and_is_drawn_from_them(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))

    @data_figure("figtest", "accuracy by run", "a test figure", manifest="paper/stability")
    def draw(records: list[dict]) -> Drawn:
        fig, (ax,) = new_figure()
        ax.bar(range(len(records)), [r["accuracy"] for r in records])
        return Drawn(fig, f"best accuracy {max(r['accuracy'] for r in records):.2f}")

    write_paper_figures(tmp_path, ["figtest"])
    index = (tmp_path / "figures.md").read_text()
    assert "needs the records of manifest paper/stability (lejepa launch paper/stability)" in index
    records = [{"accuracy": 0.5}, {"accuracy": 0.75}]
    write_paper_figures(tmp_path, ["figtest"], records={"figtest": records})
    assert (tmp_path / "figtest.caption.txt").read_text().strip() == "best accuracy 0.75"
    assert registry.REGISTRY["figtest"].needs == "records of manifest paper/stability"
    with pytest.raises(ValueError, match="registered twice"):
        data_figure("figtest", "again", "again", manifest="paper/stability")(draw)


def test_a_make_that_returns_no_drawn_is_a_bug(monkeypatch):
    entry = registry.PaperFigure("figbad", "bad", "bad", "nothing", "paper", lambda out_dir: "a figure")
    with pytest.raises(TypeError, match="figure figbad returned str"):
        entry.draw(None)


def test_toy_lowers_sigreg_and_its_plot_is_its_record(tmp_path: Path):
    drawn = sigreg_toy.toy_figure(tmp_path, samples=128, steps=40)
    toy = json.loads((tmp_path / sigreg_toy.TOY_RECORD).read_text())
    assert drawn.data_files == (tmp_path / sigreg_toy.TOY_RECORD,)
    assert toy["fixed_statistic_after"] < 0.05 * toy["fixed_statistic_before"]
    before_ax, after_ax, curve_ax = drawn.figures.axes
    assert np.asarray(before_ax.collections[0].get_offsets()) == pytest.approx(np.asarray(toy["samples_before"]))
    assert len(after_ax.collections[0].get_offsets()) == 128
    assert list(curve_ax.get_lines()[0].get_ydata()) == pytest.approx(toy["statistic"])
    assert f"{toy['fixed_statistic_after']:.3g}" in drawn.caption and "not a figure of the paper" in drawn.caption


def test_toy_record_is_reused_while_its_configuration_is_unchanged(tmp_path: Path, monkeypatch):
    first, _ = sigreg_toy.load_or_run(tmp_path, samples=32, steps=3)
    runs = []
    monkeypatch.setattr(sigreg_toy, "run_toy", lambda **o: runs.append(o) or first)
    again, files = sigreg_toy.load_or_run(tmp_path, samples=32, steps=3)
    assert again == first and runs == [] and files == (tmp_path / sigreg_toy.TOY_RECORD,)
    sigreg_toy.load_or_run(tmp_path, samples=32, steps=4)
    assert runs == [{"samples": 32, "steps": 4}]
