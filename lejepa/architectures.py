"""The curated architecture list (lejepa/architectures.yaml) and what "family" means in the suite.

An architecture's family is the label it is grouped and coloured by in tables and figures: the list's label
for a listed architecture ("ResNet", "ViT", "ConvNeXt-V2"), else one read from its timm name's prefix
(resnet18 -> "resnet", vit_small_patch16_224 -> "vit"). `family_key` folds both to one comparable key
("convnextv2"), which is also how reference numbers name an architecture's family.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

LIST_FILE = Path(__file__).with_name("architectures.yaml")

# timm prefixes that are not part of the family, and families whose names contain an underscore.
_NAME_PREFIXES = ("tf_", "legacy_", "timm_")
_TWO_WORD_FAMILIES = ("wide_resnet",)


@cache
def curated_architectures() -> tuple[dict, ...]:
    """The list's entries ({name, family, params_m}), in its order."""
    data = yaml.safe_load(LIST_FILE.read_text())
    entries = data.get("architectures") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and {"name", "family"} <= set(e) for e in entries):
        raise ValueError(f"{LIST_FILE}: architectures: expected a list of mappings with name and family")
    return tuple(entries)


def name_family(name: str) -> str:
    """The family a timm name's prefix says: resnet18 -> resnet, convnextv2_atto -> convnextv2,
    wide_resnet50_2 -> wide_resnet."""
    base = name.split(".")[0].lower()
    for prefix in _NAME_PREFIXES:
        base = base.removeprefix(prefix)
    for family in _TWO_WORD_FAMILIES:
        if base.startswith(family):
            return family
    match = re.match(r"[a-z]+?(?:v\d+)?(?=[_\d]|$)", base)
    return match.group(0) if match else base


def family_of(name: str) -> str:
    """The curated list's family label, else the name's prefix family."""
    listed = {entry["name"]: entry["family"] for entry in curated_architectures()}
    return listed.get(name) or name_family(name)


def family_key(label: str) -> str:
    """A family label folded for comparison: 'ConvNeXt-V2' and 'convnextv2' -> 'convnextv2'."""
    return re.sub(r"[^a-z0-9]", "", label.lower())
