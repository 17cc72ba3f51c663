"""`model.init_from` naming a manifest: the one run of it with this run's seed, method and model.

A run with init_from does not pretrain: it evaluates the source run's final weights on its own dataset
(transfer), so the source must be built as this run is (same method options, model and resolution).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from lejepa.data import get_dataset
from lejepa.methods import parse_options
from lejepa.spec import RunSpec

# model.init_from written as EXPERIMENT/RUN_ID (a run_id ends in -s<seed>-<10 hex digits>, see RunSpec.run_id)
RUN_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+-s\d+-[0-9a-f]{10}$")


def image_size(spec: RunSpec) -> int:
    return spec.data.image_size or get_dataset(spec.data.name).image_size


def resolve_init_from(spec: RunSpec, sources: dict, load: Callable[[str], object]) -> tuple[RunSpec, str | None]:
    """(spec with model.init_from as EXPERIMENT/RUN_ID, None), or (spec, what is wrong). `sources` caches the
    manifests already loaded (by reference); `load` loads one (raising ManifestError)."""

    reference = spec.model.init_from
    if RUN_REFERENCE.match(reference):
        return spec, None  # an explicit run: the job checks that it is done and has its weights
    if reference not in sources:
        try:
            sources[reference] = load(reference)
        except Exception as error:
            if not hasattr(error, "problems"):
                raise
            return spec, (f"model.init_from '{reference}' is neither EXPERIMENT/RUN_ID nor a manifest that loads: "
                          f"{error.problems[0]}")
    source = sources[reference]
    model = dataclasses.replace(spec.model, init_from=None)
    method = parse_options(spec.method)
    matches = [s for s in source.runs if s.seed == spec.seed and s.model == model and parse_options(s.method) == method]
    if len(matches) != 1:
        offered = ", ".join(sorted({f"{s.method_name} {s.model.arch} seed {s.seed}" for s in source.runs}))
        return spec, (f"model.init_from {reference}: {len(matches)} of its {len(source.runs)} runs have this run's "
                      f"seed, method and model ({spec.method_name} {spec.model.arch} seed {spec.seed}); exactly one "
                      f"must (its runs: {offered}; method options and every model.* key must be equal)")
    found = matches[0]
    if image_size(found) != image_size(spec):
        return spec, (f"model.init_from {reference}: the source run {found.run_id} trained at {image_size(found)} px "
                      f"and its backbone is built for that resolution; set data.image_size: {image_size(found)} "
                      f"(this run has {image_size(spec)})")
    resolved = dataclasses.replace(spec.model, init_from=f"{found.experiment}/{found.run_id}")
    return dataclasses.replace(spec, model=resolved), None
