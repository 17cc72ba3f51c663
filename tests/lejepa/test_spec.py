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


# Ids given out before: relaunching a finished study must find its records, so these must never change
# by accident. Changing a default, renaming or removing a field changes them (see lejepa/spec.py's rule).
GOLDEN_IDS = {
    "tiny": ("lejepa-digits-resnet18-s0-8606623374", TINY),
    "defaults": ("lejepa-fashion_mnist-resnet18-s0-bbfa70342f", RunSpec(experiment="golden")),
}


def test_run_ids_given_out_before_do_not_change():
    assert {name: spec.run_id for name, (_, spec) in GOLDEN_IDS.items()} == {
        name: run_id for name, (run_id, _) in GOLDEN_IDS.items()}


def test_a_field_added_with_its_old_behaviour_as_default_changes_no_id(monkeypatch):
    """The documented rule: a new field declared with added=True is left out of the id at its default."""
    from lejepa import spec as spec_module
    from lejepa.options import setting

    @dataclasses.dataclass(frozen=True)
    class TrainWithANewField(spec_module.TrainSpec):
        new_knob: float = setting(1.0, doc="a field added later", added=True)

    monkeypatch.setitem(spec_module.SECTIONS, "train", TrainWithANewField)
    extended = dataclasses.replace(TINY, train=TrainWithANewField(**dataclasses.asdict(TINY.train)))
    assert extended.run_id == GOLDEN_IDS["tiny"][0]
    changed = dataclasses.replace(extended, train=dataclasses.replace(extended.train, new_knob=2.0))
    assert changed.run_id != GOLDEN_IDS["tiny"][0]


def test_integer_and_float_spellings_of_a_manifest_value_are_one_run(tmp_path):
    from conftest import write_manifest

    from experiments.manifest import load_manifest

    ints = load_manifest(write_manifest(tmp_path, "name: a\ndefaults: {train: {epochs: 4}, method: {name: lejepa, lamb: 1}}\n"))
    floats = load_manifest(write_manifest(tmp_path, "name: a\ndefaults: {train: {epochs: 4.0}, method: {name: lejepa, lamb: 1.0}}\n",
                                          name="b"))
    assert ints.runs[0].run_id == floats.runs[0].run_id
