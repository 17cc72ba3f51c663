import dataclasses
import json

from conftest import TINY, make_tiny_spec

from lejepa.spec import RunSpec


def test_spec_round_trips_through_json():
    restored = RunSpec.from_dict(json.loads(json.dumps(TINY.to_dict())))
    assert restored == TINY
    assert restored.run_id == TINY.run_id


def test_run_id_ignores_resources_but_not_hyperparameters():
    moved = dataclasses.replace(TINY, resources=dataclasses.replace(TINY.resources, partition="gpu", mem_gb=64))
    assert moved.run_id == TINY.run_id
    assert make_tiny_spec(train={"lr": 1e-3}).run_id != TINY.run_id
    assert make_tiny_spec(seed=1).run_id != TINY.run_id
    assert make_tiny_spec(method={"lamb": 0.1}).run_id != TINY.run_id


def test_run_id_is_readable_and_stable():
    assert TINY.run_id.startswith("lejepa-digits-resnet18-s0-")
    assert TINY.run_id == RunSpec.from_dict(TINY.to_dict()).run_id
