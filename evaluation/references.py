"""Reference numbers (evaluation/paper_numbers.yaml) and how a group of runs is matched to one
(docs/evaluation.md section 7).

An entry matches a group of our runs only when dataset, method, architecture (family, size, patch),
transfer source and the whole protocol agree (evaluation kind, linear probe recipe, kNN k and
temperature, shots), and, for an entry that names run settings (`config`), when the group has them. The
report then prints the reference, its protocol and our gap beside the group.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from lejepa.architectures import name_family

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


EVALS = ("frozen_linear", "online_linear", "finetune", "knn", "loss_correlation")
PROBES = ("readme", "dino", "mae", "simclr")
# The protocols the suite measures (docs/evaluation.md): its frozen linear probe is the official README's
# recipe, its headline kNN is DINO's at k = 20, T = 0.07. The report asks by these names.
OUR_PROTOCOLS = {
    "linear": {"eval": "frozen_linear", "probe": "readme"},
    "knn": {"eval": "knn", "k": 20, "temperature": 0.07},
}


def load_paper_numbers(path: Path = PAPER_NUMBERS) -> dict:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict) or "version" not in data or "entries" not in data:
        raise ValueError(f"{path}: expected a mapping with 'version' and 'entries'")
    ids = [e["id"] for e in data["entries"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate entry ids {duplicates}")
    problems = []
    for entry in data["entries"]:
        protocol = entry.get("protocol") or {}
        if protocol.get("eval") not in EVALS:
            problems.append(f"{entry['id']}: protocol.eval {protocol.get('eval')!r} is not one of {', '.join(EVALS)}")
        if protocol.get("probe") not in (None, *PROBES):
            problems.append(f"{entry['id']}: protocol.probe {protocol.get('probe')!r} is not one of {', '.join(PROBES)}")
        if protocol.get("eval") == "knn" and not protocol.get("k"):
            problems.append(f"{entry['id']}: a kNN number needs protocol.k")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return data


_DATASET_ALIASES = {
    "imagenet": "imagenet1k", "in1k": "imagenet1k", "ilsvrc2012": "imagenet1k", "imagenet1000": "imagenet1k",
    "in100": "imagenet100",
    # The paper's ImageNet-10 is read as Imagenette (docs/datasets.md section 2).
    "imagenette": "imagenet10", "in10": "imagenet10", "inet10": "imagenet10", "inet100": "imagenet100",
    "inet1k": "imagenet1k", "galaxy10": "galaxy10decals",
    "fgvcaircraft": "aircraft", "stanfordcars": "cars", "food": "food101", "oxfordflowers102": "flowers102",
    "flowers": "flowers102", "oxfordpets": "pets", "oxfordiiitpet": "pets", "oxfordiiitpets": "pets",
    "pet": "pets", "describabletextures": "dtd",
}


def canonical_dataset(name: str | None) -> str | None:
    """Loader names ('fgvc_aircraft', 'ImageNet-1k') onto paper_numbers.yaml's dataset names."""
    if not name:
        return None
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return _DATASET_ALIASES.get(key, key)


def _canonical_method(name: str | None) -> str | None:
    return re.sub(r"[^a-z0-9]", "", str(name).lower()) if name else None


@dataclass(frozen=True)
class ArchSignature:
    family: str
    size: str | None  # "small", "large", "18", "50", ...
    patch: int | None


_SIZE_WORDS = {"ti": "tiny", "t": "tiny", "s": "small", "b": "base", "l": "large", "h": "huge", "g": "giant"}
_NAMED_SIZES = ("atto", "femto", "pico", "nano", "tiny", "small", "medium", "base", "large", "xlarge",
                "huge", "giant", "gigantic")


def arch_signature(name: str) -> ArchSignature:
    base = name.split(".")[0].lower()
    family = name_family(name)
    tokens = base.split("_")
    size = next((t for t in tokens if t in _NAMED_SIZES), None)
    if size is None:
        depth = re.match(rf"(?:\w+_)?{re.escape(family)}(\d+)", base)
        size = depth.group(1) if depth else None
    patch = re.search(r"patch(\d+)", base)
    return ArchSignature(family, size, int(patch.group(1)) if patch else None)


def _arch_matches(reference_arch: dict | None, ours: ArchSignature) -> bool:
    if not reference_arch:
        return True  # the source does not state the architecture
    if str(reference_arch.get("family", "")).lower() != ours.family:
        return False
    size = reference_arch.get("size")
    size = _SIZE_WORDS.get(str(size).lower(), str(size).lower()) if size is not None else None
    if size is not None and size != ours.size:
        return False
    patch = reference_arch.get("patch")
    return patch is None or ours.patch is None or int(patch) == ours.patch


def setting(config: dict | None, key: str):
    """The value of dotted `key` in a run's settings: a flat mapping of dotted keys (the report's
    "spec.method.lamb" columns, with or without "spec.") or a nested spec dict. KeyError when absent."""
    if not config:
        raise KeyError(key)
    for flat in (key, f"spec.{key}"):
        if flat in config:
            return config[flat]
    node = config.get("spec", config)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def config_matches(entry: dict, config: dict | None) -> bool:
    """An entry without `config` belongs to any run; one with it only to runs with every one of its settings."""
    for key, wanted in (entry.get("config") or {}).items():
        try:
            if not _same(setting(config, key), wanted):
                return False
        except KeyError:
            return False
    return True


def _protocol_matches(reference: dict, wanted: dict) -> bool:
    """Same evaluation, and where the wanted protocol fixes a probe recipe, kNN k or temperature, the same
    value (a reference that leaves its probe unstated is not taken to differ)."""
    if reference.get("eval") != wanted.get("eval"):
        return False
    if reference.get("probe") is not None and wanted.get("probe") is not None and reference["probe"] != wanted["probe"]:
        return False
    for key in ("k", "temperature"):
        if wanted.get(key) is not None and not _same(reference.get(key), wanted[key]):
            return False
    return True


def match_reference(entries: Iterable[dict], *, dataset: str | None, method: str | None, arch: str | None,
                    transfer_from: str | None, epochs: float | None, protocol: str | dict, shots: int | None = None,
                    config: dict | None = None, roles: tuple[str, ...] = ("paper", "benchmark")) -> dict | None:
    """The reference entry for one group and protocol: same dataset, method, transfer source, arch family,
    size and patch (`model.timm_kwargs.patch_size` in `config` overrides the name's patch), protocol
    (`OUR_PROTOCOLS` name or a mapping like an entry's), shots, and the entry's `config` settings. A stated
    architecture beats an unstated one, then one that states the same pretraining epochs (an entry of other
    epochs never matches), then the paper over a benchmark, then the file's order."""
    if not (dataset and method and arch):
        return None
    wanted = OUR_PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
    ours = arch_signature(arch)
    try:
        ours = ArchSignature(ours.family, ours.size, int(setting(config, "model.timm_kwargs.patch_size")))
    except KeyError:
        pass
    candidates = []
    for order, entry in enumerate(entries):
        proto = entry.get("protocol") or {}
        if (entry.get("metric") != "top1" or entry.get("role") not in roles or not _protocol_matches(proto, wanted)
                or proto.get("shots") != shots
                or canonical_dataset(entry.get("dataset")) != canonical_dataset(dataset)
                or _canonical_method(entry.get("method")) != _canonical_method(method)
                or canonical_dataset(proto.get("transfer_from")) != canonical_dataset(transfer_from)
                or not _arch_matches(entry.get("arch"), ours) or not config_matches(entry, config)):
            continue
        ref_epochs = proto.get("pretrain_epochs")
        if ref_epochs is not None and epochs is not None and not _same(ref_epochs, epochs):
            continue  # another pretraining budget is another experiment, not a gap to report
        epoch_gap = 0 if ref_epochs is not None and epochs is not None else math.inf
        candidates.append(((entry.get("arch") is None, epoch_gap, roles.index(entry["role"]), order), entry))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


_PROBE_WORDS = {"readme": "LayerNorm + linear, AdamW", "dino": "DINO's linear eval", "mae": "MAE protocol",
                "simclr": "SimCLR protocol"}


_GRID_WORDS = "LayerNorm / standardised / whitened heads x lrs, AdamW, chosen on held-out cross-entropy"


def protocol_label(entry: dict) -> str:
    """The protocol in words, for printing beside a reference: 'frozen linear (MAE protocol), 100 ep'."""
    proto = entry.get("protocol") or {}
    kind = proto.get("eval")
    if kind == "knn":
        text = f"kNN k={proto['k']}" + (f" T={proto['temperature']:g}" if proto.get("temperature") else "")
    else:
        text = {"frozen_linear": "frozen linear", "online_linear": "online linear", "finetune": "fine-tune",
                "loss_correlation": "loss/accuracy correlation"}.get(kind, str(kind))
        if proto.get("heads") == "grid":  # this suite's probe (evaluation/probes/linear.py)
            text += f" ({_GRID_WORDS})"
        elif proto.get("probe"):
            text += f" ({_PROBE_WORDS[proto['probe']]})"
    if proto.get("shots"):
        text += f", {proto['shots']}-shot"
    if proto.get("transfer_from"):
        text += f", from {proto['transfer_from']}"
    if proto.get("pretrain_epochs"):
        text += f", {proto['pretrain_epochs']:g} ep"
    return text


def reference_text(entry: dict) -> str:
    if "range" in entry:
        low, high = entry["range"]
        return f"{low:g}-{high:g}"
    mark = {"about": "~", "above": ">", "up_to": "<="}.get(entry.get("qualifier", "exact"), "")
    return f"{mark}{entry['value']:.2f}"
