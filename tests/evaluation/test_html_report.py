"""report.html (evaluation/html_report.py) and the TensorBoard event files (evaluation/tensorboard.py) that
`lejepa report` writes: read back as a browser and as TensorBoard read them."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import synthetic_record
from headless_browser import browser_paths, view_page

from evaluation.report import write_report
from evaluation.tables import display_table, summarise

STUDY = "quick"


def study_records() -> list[dict]:
    """The quickstart's three rows and a second LeJEPA backbone, with the spectra the embedding-spectrum
    figure draws (two architectures also make the architecture-sweep figure)."""
    spectrum = [4.0, 2.0, 1.0, 0.5, 0.25]
    return [synthetic_record(method=method, arch=arch, experiment=STUDY, linear=linear, knn=knn,
                             evaluation={"embedding_spectrum": spectrum})
            for method, arch, linear, knn in (({"name": "lejepa", "lamb": 0.05}, "resnet18", 0.8612, 0.8211),
                                              ({"name": "random_init"}, "resnet18", 0.7012, 0.6523),
                                              ({"name": "raw_pixels"}, "resnet18", 0.8401, 0.8530),
                                              ({"name": "lejepa", "lamb": 0.05}, "resnet34", 0.8533, 0.8102))]


def write_study(root: Path) -> tuple[list[dict], list[Path]]:
    records = study_records()
    lejepa = records[0]
    folder = root / STUDY / lejepa["run_id"]
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(
        {"step": step, "total_steps": 30, "loss": 2.0 / step, "pred": 1.0 / step, "sigreg": 0.5, "lr": 1e-3,
         "images_per_second": 100.0 + step, "elapsed": 2.0 * step}) + "\n" for step in (10, 20, 30)))
    paths = write_report(STUDY, records, root / STUDY, results_root=root, missing=["lejepa-not-run-yet"])
    return records, paths


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.captions, self.rows = [], [], [], []
        self._in_caption = self._in_row = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag in ("a", "link", "script"):
            self.links.append((tag, attrs.get("href") or attrs.get("src")))
        elif tag == "figcaption":
            self._in_caption = True
            self.captions.append("")
        elif tag == "tr":
            self.rows.append([])
            self._in_row = True

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False
        elif tag == "tr":
            self._in_row = False

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data
        if self._in_row:
            self.rows[-1].append(data)


def test_report_html_holds_tables_figures_skips_and_runs_in_one_file(tmp_path):
    records, paths = write_study(tmp_path)
    page = tmp_path / STUDY / "report.html"
    assert page in paths
    text = page.read_text()
    parser = PageParser()
    parser.feed(text)

    pngs = sorted(p for p in paths if p.suffix == ".png")
    assert [Path(p).stem for p in pngs] == ["architecture_sweep", "embedding_spectrum"]
    # every figure embedded byte for byte, nothing fetched from elsewhere
    assert [image["alt"] for image in parser.images] == [p.stem for p in pngs]
    for image, png in zip(parser.images, pngs):
        assert image["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(image["src"].split(",", 1)[1]) == png.read_bytes()
    assert not [link for tag, link in parser.links if tag != "a"]  # no script, no stylesheet file
    assert all(not re.match(r"\w+://", href) for _, href in parser.links)  # links are the report's own files
    # each caption is the one report.md gives the figure
    index = (tmp_path / STUDY / "report.md").read_text()
    for caption, png in zip(parser.captions, pngs):
        assert f"- [{png.stem}](figures/{png.name}): {caption.split(': ', 1)[1]}" in index

    # the results table is table.md's: the same header and cells
    header, cells = display_table(*summarise(records))
    table_md = (tmp_path / STUDY / "table.md").read_text()
    assert "| " + " | ".join(header) + " |" in table_md
    for row in cells:
        assert "| " + " | ".join(row) + " |" in table_md
        assert row in parser.rows
    assert "86.12" in text and "70.12" in text and "84.01" in text
    # what was skipped and why; every run's status, and the run without a record
    assert "<h2>Skipped, and why</h2>" in text and "loss_vs_accuracy" in text
    run_rows = {r[0]: r for r in parser.rows if r and r[0].startswith(("lejepa-", "random_init-", "raw_pixels-"))}
    assert set(run_rows) == {r["run_id"] for r in records} | {"lejepa-not-run-yet"}
    assert run_rows[records[0]["run_id"]][2:5] == ["done", "86.12", "82.11"]
    assert run_rows["lejepa-not-run-yet"][2] == "no record"


@pytest.mark.skipif(browser_paths() is None, reason="chromium and chromium-driver are not installed "
                    "(install.sh apt-installs them; CI has them)")
def test_report_html_in_headless_chromium_every_image_loads_and_tables_have_their_rows(tmp_path):
    write_study(tmp_path)
    shot = tmp_path / STUDY / "report.png"
    view = view_page(tmp_path / STUDY / "report.html", screenshot=shot)
    assert view.title == f"Report: {STUDY}"
    assert len(view.images) == 2 and all(image["complete"] and image["width"] > 0 for image in view.images)
    results, runs = view.table_rows
    # dataset, method, arch: one row per method and backbone
    assert [row[1:3] for row in results] == [["lejepa", "resnet18"], ["lejepa", "resnet34"],
                                             ["random_init", "resnet18"], ["raw_pixels", "resnet18"]]
    assert len(runs) == 5 and runs[-1][2] == "no record"
    assert view.headings == ["Results", "Figures", "Skipped, and why", "Runs", "Files"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_tensorboard_event_files_hold_the_curves_and_the_probe_numbers(tmp_path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is a dependency (pyproject.toml); this environment predates it: rerun ./install.sh")
    records, paths = write_study(tmp_path)
    events = [p for p in paths if "tfevents" in p.name]
    assert len(events) == 4

    def scalars(record: dict) -> dict[str, list[tuple[int, float]]]:
        reader = event_accumulator.EventAccumulator(str(tmp_path / STUDY / "tensorboard" / record["run_id"]))
        reader.Reload()
        return {tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in reader.Tags()["scalars"]}

    lejepa = scalars(records[0])
    assert [step for step, _ in lejepa["train/loss"]] == [10, 20, 30]
    assert [value for _, value in lejepa["train/loss"]] == pytest.approx([0.2, 0.1, 2 / 30])
    assert set(lejepa) == {"train/loss", "train/pred", "train/sigreg", "train/lr", "train/images_per_second",
                           "eval/linear_top1", "eval/linear_top5", "eval/knn_top1@10", "eval/knn_top1@20",
                           "eval/effective_rank"}
    assert lejepa["eval/linear_top1"] == [(100, pytest.approx(86.12))]  # at the run's last step, in %
    pixels = scalars(records[2])
    assert "train/loss" not in pixels and pixels["eval/knn_top1@20"][0][1] == pytest.approx(85.30)

    # A second report replaces each run's file: one file per run, the same points.
    write_report(STUDY, records, tmp_path / STUDY, results_root=tmp_path)
    assert len(list((tmp_path / STUDY / "tensorboard").rglob("*tfevents*"))) == 4
    assert scalars(records[0])["train/loss"] == lejepa["train/loss"]
