"""Cluster profiles: resources set once per cluster, runs fitted to its nodes, bad profiles refused."""

from __future__ import annotations

import pytest
from conftest import TINY, make_tiny_spec

from lejepa.data.common import loader_workers
from slurm.cluster import load_profile
from slurm.plan import LaunchError


def _profile(tmp_path, text: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return load_profile(str(path))


def test_profile_sets_resources_and_fits_cpus_and_memory_to_a_node(tmp_path):
    profile = _profile(tmp_path, "resources: {partition: h100, account: lab}\nnode: {cpus: 96, gpus: 8, mem_gb: 400}\n")
    spec = make_tiny_spec(resources={"gpus_per_node": 8, "tasks_per_node": 8, "cpus_per_task": 16, "mem_gb": 480})
    fitted, notes = profile.apply(spec)
    r = fitted.resources
    assert (r.partition, r.account, r.cpus_per_task, r.mem_gb) == ("h100", "lab", 12, 400)
    assert fitted.run_id == spec.run_id  # where a run goes is not what it is
    assert any("cpus_per_task 16 -> 12 (8 tasks on a 96-CPU node)" in note for note in notes)


def test_profile_refuses_more_gpus_than_a_node_has_and_names_bad_keys(tmp_path):
    profile = _profile(tmp_path, "node: {gpus: 4}\n")
    with pytest.raises(LaunchError, match="asks for 8 GPUs per node and a node has 4"):
        profile.apply(make_tiny_spec(resources={"gpus_per_node": 8, "tasks_per_node": 8}))
    with pytest.raises(LaunchError, match=r"resources.partition: .* holds a character sbatch would misread"):
        _profile(tmp_path, "resources: {partition: 'gpu\\nrm -rf /'}\n")
    with pytest.raises(LaunchError, match=r"unknown key\(s\) \['nodes'\]"):
        _profile(tmp_path, "nodes: {cpus: 4}\n")
    with pytest.raises(LaunchError, match="cluster profile 'nowhere' not found"):
        load_profile("nowhere")


def test_shipped_example_profile_loads(monkeypatch):
    monkeypatch.setenv("LEJEPA_CLUSTER", "example")
    profile = load_profile(None)
    assert profile.node["cpus"] == 96 and profile.apply(TINY)[0].resources.partition == "gpu"


def test_auto_loader_workers_are_the_granted_cpus_minus_one(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "12")
    assert loader_workers("auto") == 11 and loader_workers(3) == 3
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    import os

    assert loader_workers("auto") == max(0, len(os.sched_getaffinity(0)) - 1)
