"""Cluster profiles: the resources a cluster needs, set once instead of edited into every manifest.

A profile is a YAML file (`--cluster NAME` finds slurm/clusters/NAME.yaml, or give a path; $LEJEPA_CLUSTER is
the default) with two optional parts:

    resources: {partition: gpu, account: my_lab, qos: normal}   # set on every run (any ResourceSpec key)
    node: {cpus: 96, gpus: 8, mem_gb: 1000}                     # what one node has

`node` caps each run to what a node offers: cpus_per_task shrinks to cpus // tasks_per_node (SLURM counts
cores: 8 tasks x 16 CPUs never schedules on a 96-core node), memory to the node's, and a run asking for
more GPUs per node than there are is refused. Resources are not part of a run's identity, so a profile
changes where runs go, never which runs they are.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from lejepa.spec import ResourceSpec, RunSpec, SpecError, build_section
from slurm.plan import LaunchError

CLUSTERS_DIR = Path(__file__).with_name("clusters")
ENV = "LEJEPA_CLUSTER"
NODE_KEYS = ("cpus", "gpus", "mem_gb")


@dataclasses.dataclass(frozen=True)
class ClusterProfile:
    name: str
    resources: dict
    node: dict

    def apply(self, spec: RunSpec) -> tuple[RunSpec, list[str]]:
        """The spec with the profile's resources and node caps, and a note per change the caps made."""
        notes = []
        merged = {**dataclasses.asdict(spec.resources), **self.resources}
        cpus, gpus, mem = (self.node.get(k) for k in NODE_KEYS)
        if gpus is not None and merged["gpus_per_node"] > gpus:
            raise LaunchError(f"cluster {self.name}: run {spec.run_id} asks for {merged['gpus_per_node']} GPUs per node "
                              f"and a node has {gpus}; lower resources.gpus_per_node or use more nodes")
        if cpus is not None and merged["tasks_per_node"] * merged["cpus_per_task"] > cpus:
            fitted = max(1, cpus // merged["tasks_per_node"])
            notes.append(f"{spec.run_id}: cpus_per_task {merged['cpus_per_task']} -> {fitted} "
                         f"({merged['tasks_per_node']} tasks on a {cpus}-CPU node)")
            merged["cpus_per_task"] = fitted
        if mem is not None and merged["mem_gb"] > mem:
            notes.append(f"{spec.run_id}: mem_gb {merged['mem_gb']} -> {mem} (a node's memory)")
            merged["mem_gb"] = mem
        return dataclasses.replace(spec, resources=build_section(ResourceSpec, merged)), notes


def load_profile(name_or_path: str | None) -> ClusterProfile | None:
    """The named profile, or $LEJEPA_CLUSTER's, or None; LaunchError says what is wrong with a bad one."""
    name_or_path = name_or_path or os.environ.get(ENV)
    if not name_or_path:
        return None
    path = Path(name_or_path)
    if not path.is_file():
        path = CLUSTERS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CLUSTERS_DIR.glob("*.yaml"))
        raise LaunchError(f"cluster profile '{name_or_path}' not found (a file, or one of {', '.join(known) or 'none'} "
                          f"in {CLUSTERS_DIR})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise LaunchError(f"{path}: bad YAML: {error}") from None
    unknown = set(data) - {"resources", "node"}
    node = data.get("node") or {}
    problems = [f"unknown key(s) {sorted(unknown)} (a profile has resources and node)"] if unknown else []
    problems += [f"node.{k}: expected a positive integer, got {v!r}" for k, v in node.items()
                 if k not in NODE_KEYS or not isinstance(v, int) or v < 1]
    resources = data.get("resources") or {}
    try:
        build_section(ResourceSpec, resources)
    except SpecError as error:
        problems += [f"resources.{key}: {message}" for key, message in error.problems]
    if problems:
        raise LaunchError(f"{path}: " + "; ".join(problems))
    return ClusterProfile(path.stem, resources, node)
