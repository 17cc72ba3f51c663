"""The sbatch script submitit writes from a run's resources: each value stays inside its own #SBATCH line
(issue 16, case 7). The script is built by submitit's own SlurmExecutor, as `lejepa launch --executor
slurm` builds it, without submitting anything."""

from __future__ import annotations

import itertools
import shlex

import pytest
import submitit
from submitit.slurm import slurm as submitit_slurm

from lejepa.options import OptionError
from lejepa.spec import ResourceSpec
from slurm.job import JOB_SETUP
from slurm.sbatch import sbatch_parameters

KEYS = ("partition", "account", "constraint", "qos")
# Every character the check lets through, in values a cluster could use.
UNUSUAL = {"partition": "gpu&a100", "account": "proj_1.x-y", "constraint": "[a100|h100*2]", "qos": "hi=1,(lo)!%+@/:"}


def sbatch_script(resources: ResourceSpec, folder, monkeypatch) -> str:
    monkeypatch.setattr(submitit_slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # no srun needed
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(**sbatch_parameters(resources, "study", 4), slurm_setup=JOB_SETUP)
    return executor._executor._make_submission_file_text("python -m submitit.core._submit FOLDER", "uid")


def test_each_resources_value_stays_on_its_own_sbatch_line(tmp_path, monkeypatch):
    script = sbatch_script(ResourceSpec(**UNUSUAL), tmp_path, monkeypatch).splitlines()
    plain = sbatch_script(ResourceSpec(partition="P", account="A", constraint="C", qos="Q"), tmp_path,
                          monkeypatch).splitlines()
    assert len(script) == len(plain)  # not a line more: nothing leaked out of an #SBATCH line
    for line, plain_line in zip(script, plain):
        assert line == plain_line or line.split("=")[0] == plain_line.split("=")[0]
    block = script[script.index("# Parameters") + 1:script.index("# setup") - 1]
    assert all(line.startswith("#SBATCH --") for line in block), block
    for key, value in UNUSUAL.items():
        (line,) = [line for line in block if line.startswith(f"#SBATCH --{key}=")]
        assert shlex.split(line.split("=", 1)[1]) == [value]


BAD = ["gpu\nrm -rf ~", "gpu\r\nhostname", "gpu #comment", "a;b", "$(id)", "`id`", "two words", "'quoted'"]


@pytest.mark.parametrize("key, value", list(itertools.product(KEYS, BAD)))
def test_a_value_sbatch_or_the_shell_would_misread_is_refused(key, value):
    with pytest.raises(OptionError, match=f"resources.{key}: .* holds a character sbatch would misread"):
        ResourceSpec(**{key: value})


@pytest.mark.parametrize("key, value", list(itertools.product(KEYS, BAD)))
def test_no_resources_value_adds_a_line_to_the_sbatch_script(tmp_path, monkeypatch, key, value):
    """Whatever a manifest gives, the script keeps its shape: the value is refused, or it stays on its line."""
    try:
        resources = ResourceSpec(**{key: value})
    except ValueError as error:
        assert "holds a character sbatch would misread" in str(error)
        return
    lines = sbatch_script(resources, tmp_path, monkeypatch).splitlines()
    assert len(lines) == len(sbatch_script(ResourceSpec(**{key: "x"}), tmp_path, monkeypatch).splitlines())
