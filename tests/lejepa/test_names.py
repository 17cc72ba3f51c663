"""The registries' shared name rules: a name added twice is refused without touching the first entry, and
unknown names get the same "did you mean" hint everywhere."""

from __future__ import annotations

import pytest

from evaluation.probes import get_probe, register_probe
from lejepa.methods import get_method, register_method
from lejepa.names import did_you_mean, register_once


def test_a_name_registered_twice_is_refused_and_the_first_entry_stays():
    table = {"lejepa": "first"}
    with pytest.raises(ValueError, match=r"^method 'lejepa' is registered twice$"):
        register_once(table, "method", "lejepa", "second")
    assert table == {"lejepa": "first"}
    assert register_once(table, "method", "vicreg", "v") == "v" and table == {"lejepa": "first", "vicreg": "v"}


def test_the_real_registries_refuse_a_second_class_of_a_known_name():
    method, probe = get_method("lejepa"), get_probe("knn")
    with pytest.raises(ValueError, match="method 'lejepa' is registered twice"):
        register_method(type("Impostor", (), {"name": "lejepa"}))
    with pytest.raises(ValueError, match="probe 'knn' is registered twice"):
        register_probe(type("Impostor", (), {"name": "knn"}))
    assert get_method("lejepa") is method and get_probe("knn") is probe


def test_did_you_mean_lists_the_close_names_with_the_asked_joiner():
    assert did_you_mean("lejpa", ["lejepa", "vicreg", "dino"]) == "; did you mean lejepa?"
    assert did_you_mean("zzz", ["lejepa", "vicreg"]) == ""
    hint = did_you_mean("sweep", ["sweep_a", "sweep_b", "baselines"], cutoff=0.5, joiner=" or ")
    assert hint.startswith("; did you mean ") and hint.endswith("?")
    assert sorted(hint.removeprefix("; did you mean ").removesuffix("?").split(" or ")) == ["sweep_a", "sweep_b"]
    with pytest.raises(KeyError, match="unknown method 'vicrg'; did you mean vicreg"):
        get_method("vicrg")
