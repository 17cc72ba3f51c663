"""Reference numbers (evaluation/paper_numbers.yaml) and how a group of runs is matched to one.

An entry matches a group of our runs only when dataset, method, architecture (family, size, patch),
transfer source and protocol agree; the report then prints the reference and our gap beside the group.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


def load_paper_numbers(path: Path = PAPER_NUMBERS) -> dict:
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict) or "version" not in data or "entries" not in data:
        raise ValueError(f"{path}: expected a mapping with 'version' and 'entries'")
    ids = [e["id"] for e in data["entries"]]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate entry ids {duplicates}")
    return data


_DATASET_ALIASES = {
    "imagenet": "imagenet1k", "in1k": "imagenet1k", "ilsvrc2012": "imagenet1k", "imagenet1000": "imagenet1k",
    "in100": "imagenet100",
    # The paper's ImageNet-10 is read as Imagenette (docs/datasets.md section 2).
    "imagenette": "imagenet10", "in10": "imagenet10",
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


# timm prefixes that are not part of the family, and families whose names contain an underscore.
_NAME_PREFIXES = ("tf_", "legacy_", "timm_")
_TWO_WORD_FAMILIES = ("wide_resnet",)
_SIZE_WORDS = {"ti": "tiny", "t": "tiny", "s": "small", "b": "base", "l": "large", "h": "huge", "g": "giant"}
_NAMED_SIZES = ("atto", "femto", "pico", "nano", "tiny", "small", "medium", "base", "large", "xlarge",
                "huge", "giant", "gigantic")


def arch_family(name: str) -> str:
    """Family of a timm name by its prefix: resnet18 -> resnet, vit_small_patch16_224 -> vit,
    convnextv2_atto -> convnextv2, wide_resnet50_2 -> wide_resnet."""
    base = name.split(".")[0].lower()
    for prefix in _NAME_PREFIXES:
        base = base.removeprefix(prefix)
    for family in _TWO_WORD_FAMILIES:
        if base.startswith(family):
            return family
    match = re.match(r"[a-z]+?(?:v\d+)?(?=[_\d]|$)", base)
    return match.group(0) if match else base


def arch_signature(name: str) -> ArchSignature:
    base = name.split(".")[0].lower()
    family = arch_family(name)
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


def match_reference(entries: Iterable[dict], *, dataset: str | None, method: str | None, arch: str | None,
                    transfer_from: str | None, epochs: float | None, protocol: str,
                    roles: tuple[str, ...] = ("paper", "benchmark")) -> dict | None:
    """The reference entry for one group and protocol: same dataset, method, transfer source, arch family
    and size, full labelled data. A stated architecture beats an unstated one, then the closest
    pretraining epochs, then the paper over a benchmark."""
    if not (dataset and method and arch):
        return None
    ours = arch_signature(arch)
    candidates = []
    for entry in entries:
        proto = entry.get("protocol") or {}
        if (entry.get("metric") != "top1" or entry.get("role") not in roles or proto.get("eval") != protocol
                or proto.get("shots") is not None
                or canonical_dataset(entry.get("dataset")) != canonical_dataset(dataset)
                or _canonical_method(entry.get("method")) != _canonical_method(method)
                or canonical_dataset(proto.get("transfer_from")) != canonical_dataset(transfer_from)
                or not _arch_matches(entry.get("arch"), ours)):
            continue
        ref_epochs = proto.get("pretrain_epochs")
        epoch_gap = abs(ref_epochs - epochs) if ref_epochs is not None and epochs is not None else math.inf
        candidates.append(((entry.get("arch") is None, epoch_gap, roles.index(entry["role"])), entry))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def reference_text(entry: dict) -> str:
    if "range" in entry:
        low, high = entry["range"]
        return f"{low:g}-{high:g}"
    mark = {"about": "~", "above": ">", "up_to": "<="}.get(entry.get("qualifier", "exact"), "")
    return f"{mark}{entry['value']:.2f}"
