"""Report tables from synthetic records: means and stds over seeds, grouping, status counts, the paper
gap, the three file formats and the console table."""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest
from conftest import synthetic_record
from scipy.stats import spearmanr

from evaluation import references, report, tables


def only_row(summary: pd.DataFrame, **keys) -> pd.Series:
    picked = summary
    for key, value in keys.items():
        picked = picked[picked[key] == value]
    assert len(picked) == 1, f"expected one row for {keys}, got {len(picked)}"
    return picked.iloc[0]


def test_mean_and_sample_std_over_seeds():
    records = [synthetic_record(seed=s, linear=acc, knn=acc - 0.1, wall=w)
               for s, acc, w in [(0, 0.60, 50.0), (1, 0.62, 60.0), (2, 0.64, 70.0)]]
    summary, keys = tables.summarise(records)
    assert keys == ["dataset", "method", "arch"]
    row = only_row(summary, dataset="fashion_mnist")
    assert row["n"] == 3 and row["seeds"] == 3
    assert row["linear_top1_mean"] == pytest.approx(62.0)
    assert row["linear_top1_std"] == pytest.approx(statistics.stdev([60.0, 62.0, 64.0]))  # 2.0, ddof 1
    assert row["knn_top1@20_mean"] == pytest.approx(52.0)
    assert row["linear_top5_mean"] == pytest.approx(72.0)
    assert row["pretrain_wall_s_mean"] == pytest.approx(60.0)
    assert row["knn_top1@10_mean"] == pytest.approx(52.0)  # optional metric present in these records
    assert math.isnan(row["linear_top1_std"]) is False


def test_single_run_has_no_std_and_missing_metric_is_nan():
    summary, _ = tables.summarise([synthetic_record(knn=None)])
    row = summary.iloc[0]
    assert math.isnan(row["linear_top1_std"])
    assert math.isnan(row["knn_top1@20_mean"])


def test_failed_and_diverged_runs_are_counted_but_not_averaged():
    records = [synthetic_record(seed=0, linear=0.5), synthetic_record(seed=1, linear=0.7),
               synthetic_record(seed=2, status="failed"), synthetic_record(seed=3, status="diverged"),
               synthetic_record(seed=4, status="failed")]
    row = tables.summarise(records)[0].iloc[0]
    assert (row["done"], row["failed"], row["diverged"], row["n"]) == (2, 2, 1, 2)
    assert row["linear_top1_mean"] == pytest.approx(60.0)


def test_default_grouping_splits_hyperparameters_so_means_are_over_seeds_only():
    records = [synthetic_record(seed=s, method={"name": "lejepa", "lamb": lamb}, linear=acc)
               for lamb, accs in [(0.02, (0.5, 0.6)), (0.2, (0.7, 0.9))] for s, acc in enumerate(accs)]
    summary, keys = tables.summarise(records)
    assert keys == ["dataset", "method", "arch", "method.lamb"]
    assert only_row(summary, **{"method.lamb": 0.02})["linear_top1_mean"] == pytest.approx(55.0)
    assert only_row(summary, **{"method.lamb": 0.2})["linear_top1_mean"] == pytest.approx(80.0)


@pytest.mark.parametrize("key", ["spec.method.lamb", "method.lamb"])
def test_group_by_any_dotted_spec_key(key):
    records = [synthetic_record(seed=0, arch=arch, method={"name": "lejepa", "lamb": lamb}, linear=acc)
               for arch, lamb, acc in [("resnet18", 0.05, 0.5), ("resnet34", 0.05, 0.7), ("resnet18", 0.1, 0.9)]]
    summary, keys = tables.summarise(records, group_by=[key])
    assert keys == ["method.lamb"]
    assert list(summary["method.lamb"]) == [0.05, 0.1]  # numeric order
    assert list(summary["linear_top1_mean"]) == pytest.approx([60.0, 90.0])
    assert list(summary["n"]) == [2, 1]


def test_unknown_group_key_names_the_key_and_a_close_match():
    with pytest.raises(KeyError, match=r"method\.lamd.*spec\.method\.lamb"):
        tables.summarise([synthetic_record()], group_by=["spec.method.lamd"])


def test_in_domain_paper_number_gap_and_public_reproduction_range():
    records = [synthetic_record("cifar100", arch="resnet18", seed=s, linear=acc) for s, acc in enumerate((0.64, 0.66))]
    row = tables.summarise(records)[0].iloc[0]
    assert row["paper_linear_top1"] == pytest.approx(69.94)  # paper Table 5
    assert row["gap_linear_top1"] == pytest.approx(65.0 - 69.94)
    assert row["public_repro_linear_top1"] == "60-65"
    assert "t5-resnet18-cifar100" in row["ref"]
    assert math.isnan(row["paper_knn_top1@20"])  # the paper gives no kNN number here


def test_reference_needs_matching_arch_size_and_method():
    records = [synthetic_record("cifar100", arch="resnet50"), synthetic_record("cifar100", arch="resnet18",
                                                                               method={"name": "vicreg"})]
    summary, _ = tables.summarise(records)
    assert summary["paper_linear_top1"].isna().all()


def test_transfer_record_matches_the_transfer_table_and_gets_its_own_row():
    transfer = synthetic_record("dtd", arch="vit_large_patch14_224", epochs=100, linear=0.80,
                                evaluation={"transfer_from": {"dataset": "imagenet", "run_id": "x"}})
    in_domain = synthetic_record("dtd", arch="vit_large_patch14_224", epochs=100, linear=0.50)
    summary, keys = tables.summarise([transfer, in_domain])
    assert "transfer_from" in keys and len(summary) == 2
    row = only_row(summary, transfer_from="imagenet")
    assert row["paper_linear_top1"] == pytest.approx(78.30)
    assert row["gap_linear_top1"] == pytest.approx(80.0 - 78.30)
    assert math.isnan(summary[summary["transfer_from"].isna()].iloc[0]["paper_linear_top1"])


def test_knn_benchmark_number_matches_protocol_family_size_and_patch():
    """DINO's README gives 20-NN on the final CLS for ViT-S/16 (our kNN column's protocol with feature
    last_cls); its linear probe and lightly's numbers (MAE probe, k = 200) are other protocols and stay out of
    our columns, and so does a kNN on the two-block feature (the kNN of records from before the registry)."""
    dino = {"name": "dino"}
    vit_s16 = synthetic_record("imagenet1k", dino, arch="vit_small_patch16_224", epochs=100, linear=0.7, knn=0.6,
                               knn_feature="last_cls")
    vit_s8 = synthetic_record("imagenet1k", dino, arch="vit_small_patch8_224", epochs=100, linear=0.7, knn=0.6,
                              knn_feature="last_cls")
    lejepa = synthetic_record("imagenet1k", arch="vit_small_patch16_224", epochs=100, linear=0.6, knn=0.5,
                              knn_feature="last_cls")
    two_block = synthetic_record("imagenet1k", dino, arch="vit_small_patch16_224", epochs=100, linear=0.7, knn=0.6,
                                 experiment="old", seed=1)
    summary, _ = tables.summarise([vit_s16, vit_s8, lejepa])
    s16 = only_row(summary, arch="vit_small_patch16_224", method="dino")
    assert s16["paper_knn_top1@20"] == 69.3 and s16["gap_knn_top1@20"] == pytest.approx(60.0 - 69.3)
    assert s16["protocol_knn_top1@20"] == "kNN k=20 T=0.07, 100 ep"
    assert math.isnan(s16["paper_linear_top1"])  # 74.0 is DINO's own linear protocol
    assert math.isnan(only_row(summary, arch="vit_small_patch8_224")["paper_knn_top1@20"])
    ours = only_row(summary, method="lejepa")
    assert math.isnan(ours["paper_linear_top1"]) and math.isnan(ours["paper_knn_top1@20"])
    old = only_row(tables.summarise([two_block])[0], method="dino")
    assert old["knn_top1@20_mean"] == pytest.approx(60.0) and math.isnan(old["paper_knn_top1@20"])
    # A group that mixes the two features has no single protocol: no reference either.
    mixed = only_row(tables.summarise([vit_s16, two_block])[0], method="dino")
    assert mixed["n"] == 2 and math.isnan(mixed["paper_knn_top1@20"])


@pytest.mark.parametrize("name, family, size, patch", [
    ("resnet18", "resnet", "18", None), ("resnet50.a1_in1k", "resnet", "50", None),
    ("vit_small_patch16_224", "vit", "small", 16), ("vit_huge_patch14_clip_224", "vit", "huge", 14),
    ("convnextv2_huge", "convnextv2", "huge", None), ("wide_resnet50_2", "wide_resnet", "50", None),
    ("tf_efficientnet_b0", "efficientnet", None, None), ("mobilenetv3_large_100", "mobilenetv3", "large", None),
])
def test_arch_signature(name, family, size, patch):
    assert references.arch_signature(name) == references.ArchSignature(family, size, patch)


def test_canonical_dataset_names():
    assert references.canonical_dataset("FGVC-Aircraft") == "aircraft"
    assert references.canonical_dataset("imagenet") == "imagenet1k"
    assert references.canonical_dataset("oxford_iiit_pet") == "pets"
    assert references.canonical_dataset("cifar100") == "cifar100"


def test_paper_numbers_file_is_versioned_and_every_entry_is_sourced():
    data = references.load_paper_numbers()
    assert isinstance(data["version"], int)
    for entry in data["entries"]:
        assert entry["source"] and entry["role"] in ("paper", "benchmark", "reproduction"), entry["id"]
        assert {"dataset", "method", "arch", "protocol", "metric", "qualifier"} <= set(entry), entry["id"]
        assert ("value" in entry) != ("range" in entry), entry["id"]
    by_id = {e["id"]: e for e in data["entries"]}
    # Spot checks against the sources (docs/sources.md).
    assert by_id["in1k-vith14-frozen"]["value"] == 79.0
    assert by_id["t2-vitl-all-oxford_pets"]["value"] == 89.74
    assert by_id["lightly-in1k-lejepa-vits16-knn"]["protocol"]["k"] == 200
    assert by_id["repro-flowers102-resnet"]["range"] == [58.0, 60.0]


def test_files_exist_and_parse(tmp_path: Path):
    records = [synthetic_record("cifar100", seed=s, linear=acc) for s, acc in enumerate((0.6, 0.62))]
    records += [synthetic_record("fashion_mnist", arch="vit_tiny_patch16_224", seed=0, linear=0.9),
                synthetic_record("fashion_mnist", arch="vit_tiny_patch16_224", seed=1, status="failed")]
    paths = tables.write_tables("my_sweep", records, tmp_path)
    assert [p.name for p in paths] == ["table.csv", "table.md", "table.tex"]

    csv = pd.read_csv(tmp_path / "table.csv")
    assert len(csv) == 2
    assert csv.loc[csv["dataset"] == "cifar100", "linear_top1_mean"].item() == pytest.approx(61.0)
    assert csv.loc[csv["dataset"] == "cifar100", "gap_linear_top1"].item() == pytest.approx(61.0 - 69.94)

    table_lines = [line for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("|")]
    header = [c.strip() for c in table_lines[0].strip("|").split("|")]
    assert len(table_lines) == 2 + 2  # header, rule, two groups
    assert all(len(line.strip("|").split("|")) == len(header) for line in table_lines)
    cifar = dict(zip(header, (c.strip() for c in table_lines[2].strip("|").split("|"))))
    assert cifar["linear top-1 (%)"] == "61.00 ± 1.41"
    assert cifar["gap (pp)"] == "-8.94"  # 61.00 - 69.94 (paper Table 5, ResNet-18)
    vit = dict(zip(header, (c.strip() for c in table_lines[3].strip("|").split("|"))))
    assert vit["runs"] == "1 done, 1 failed"

    tex = (tmp_path / "table.tex").read_text()
    columns = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1)
    rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(columns) == len(header) and len(rows) == 3
    assert all(row.count(" & ") == len(header) - 1 for row in rows)
    assert r"61.00 $\pm$ 1.41" in tex and r"fashion\_mnist" in tex and r"\toprule" in tex


def test_a_record_from_before_the_head_grid_keeps_its_own_linear_protocol():
    """Records written before the grid (a head with an lr and no normalisation) were measured with LayerNorm
    heads only: they say so, and a group mixing them with grid records shows both labels."""
    from evaluation.probes import record_metrics

    old = synthetic_record(seed=0, evaluation={"linear_top1": 0.74, "linear_head": {"lr": 0.01, "features": "all"}})
    new = synthetic_record(seed=1, evaluation={"linear_top1": 0.75, "linear_head": {
        "name": "standardize_lr0.01_all", "norm": "standardize", "lr": 0.01, "features": "all"}})
    protocols = {record["spec"]["seed"]: next(m.protocol for m in record_metrics(record) if m.column == "linear_top1")
                 for record in (old, new)}
    assert protocols == {0: {"eval": "frozen_linear", "probe": "readme"},
                         1: {"eval": "frozen_linear", "probe": "readme", "heads": "grid"}}
    assert "frozen linear (LayerNorm + linear, AdamW)" in tables.format_console_table([old])
    mixed = tables.format_console_table([old, new])
    assert "frozen linear (LayerNorm + linear, AdamW)" in mixed and "whitened heads" in mixed


def test_console_table_one_line_per_group():
    records = [synthetic_record(seed=s, linear=acc, knn=acc - 0.05, wall=300.0) for s, acc in enumerate((0.8, 0.82))]
    records.append(synthetic_record("cifar10", method={"name": "random_init"}, linear=0.3, knn=0.25, wall=0.0))
    text = tables.format_console_table(records)
    lines, protocols = text.split("\nprotocols:\n")
    lines = lines.splitlines()
    assert len(lines) == 2 + 2
    assert protocols.splitlines() == [("  linear top-1: frozen linear (LayerNorm / standardised / whitened heads x "
                                       "lrs, AdamW, chosen on held-out cross-entropy)"),
                                      "  kNN@20 top-1: kNN k=20 T=0.07, feature two_block"]
    assert lines[0].split()[:3] == ["method", "dataset", "arch"]
    lejepa = next(line for line in lines if line.startswith("lejepa"))
    assert "81.00 ± 1.41" in lejepa and "76.00 ± 1.41" in lejepa and "5.0 min" in lejepa
    assert "30.00" in next(line for line in lines if line.startswith("random_init"))
    assert tables.format_console_table([]) == "no result records yet"


def test_console_table_shows_the_online_probe_where_a_run_has_it():
    online = {"probes": {"online_linear": {"top1": 0.5, "top5": None, "feature": "pooled", "views": "global"}}}
    records = [synthetic_record(linear=0.8, knn=0.7, evaluation=online), synthetic_record(seed=1, linear=0.6, knn=0.5)]
    header, _rule, row, _protocols, *protocols = tables.format_console_table(records).splitlines()
    columns = [h.strip() for h in header.split("  ") if h.strip()]
    assert columns[-4:] == ["linear top-1 %", "kNN@20 top-1 %", "online linear top-1 %", "pretrain"]
    assert "70.00 ± 14.14" in row and "60.00 ± 14.14" in row and "50.00" in row
    assert protocols[-1] == "  online linear top-1: online linear"
    assert "online" not in tables.format_console_table(records[1:])  # no run has it: no column


def test_write_report_on_200_records_writes_every_table_and_figure(tmp_path: Path):
    """Its speed is measured in benchmarks/report_bench.py."""
    records = [synthetic_record(seed=seed, arch=arch, method={"name": "lejepa", "lamb": lamb, "num_slices": 256},
                                local_views=views, linear=0.5 + lamb + 0.01 * views + 0.001 * seed, loss=1 - lamb)
               for arch in ("resnet18", "resnet34") for lamb in (0.01, 0.05, 0.1, 0.2, 0.3)
               for views in (2, 4, 6, 8) for seed in range(5)]
    assert len(records) == 200
    paths = report.write_report("big", records, tmp_path)
    assert {p.name for p in paths} >= {"table.csv", "table.md", "table.tex", "report.md", "loss_vs_accuracy.png",
                                       "stability_heatmap.pdf", "architecture_sweep.png"}
    assert all(p.exists() for p in paths)
    assert len(pd.read_csv(tmp_path / "table.csv")) == 2 * 5 * 4
    index = (tmp_path / "report.md").read_text()
    assert "embedding_spectrum: no finished run has evaluation.embedding_spectrum" in index
    # Figure 1's rho is written next to its file, the value scipy gives on the records' numbers.
    rho = spearmanr([r["pretrain"]["final_loss"] for r in records],
                    [r["evaluation"]["probes"]["linear"]["top1"] for r in records]).statistic
    assert rho < -0.5
    assert (f"- [loss_vs_accuracy](figures/loss_vs_accuracy.png): lejepa, fashion_mnist Spearman ρ = {rho:+.3f} "
            "(n = 200)") in index


def test_table7_report_sets_each_cell_beside_the_papers_value_and_nothing_beside_other_protocols(tmp_path):
    """Synthetic done records for the 26 runs of paper/table7: each row of the report carries the paper's
    number for its own (V, lambda) and says the protocol; a kNN column, a shorter run and another method
    get nothing from Table 7."""
    from evaluation.record import make_record
    from evaluation.references import load_paper_numbers
    from experiments.manifest import load_manifest

    runs = load_manifest("paper/table7").runs
    cells = {(e["config"]["views.global_views"], e["config"]["method.lamb"]): e["value"]
             for e in load_paper_numbers()["entries"] if e["id"].startswith("t7-")}
    records = [make_record(spec, "done", pretrain={"final_loss": 1.0, "wall_seconds": 1.0},
                           evaluation={"linear_top1": 0.8, "knn_top1@20": 0.7}) for spec in runs]
    summary, _ = tables.summarise(records)
    assert len(summary) == len(cells) == 26
    for _, row in summary.iterrows():
        assert row["paper_linear_top1"] == cells[(row["views.global_views"], row["method.lamb"])]
        assert row["protocol_linear_top1"] == "frozen linear (LayerNorm + linear, AdamW), 400 ep"
        assert math.isnan(row["paper_knn_top1@20"])  # Table 7 has no kNN number
    table = (tmp_path / "table.md")
    tables.write_tables("paper-table7", records, tmp_path)
    assert table.read_text().count("frozen linear (LayerNorm + linear, AdamW), 400 ep") == 26

    shorter = [make_record(dataclasses.replace(spec, train=dataclasses.replace(spec.train, epochs=100)), "done",
                           evaluation={"linear_top1": 0.8}) for spec in runs[:3]]
    vicreg = [make_record(dataclasses.replace(spec, method={"name": "vicreg"}), "done",
                          evaluation={"linear_top1": 0.8}) for spec in runs[:3]]
    other, _ = tables.summarise(shorter + vicreg)
    assert other["paper_linear_top1"].isna().all()
