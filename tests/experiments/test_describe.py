"""`lejepa describe method|dataset|section NAME`: every option of every method and spec section, each with
its type, default, allowed range and meaning, as the options dataclasses declare them."""

from __future__ import annotations

import dataclasses

import pytest

from experiments.cli import main
from lejepa.data import DATASETS, get_dataset
from lejepa.methods import METHODS
from lejepa.options import rule_of, type_words
from lejepa.spec import SECTIONS


def rows_of(text: str) -> dict[str, str]:
    """option name -> its whole table line, from the line after the header on."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("option "))
    return {line.split()[0]: line for line in lines[start + 1:]}


def check_every_field(options_class: type, text: str) -> None:
    rows = rows_of(text)
    fields = dataclasses.fields(options_class)
    assert list(rows) == [f.name for f in fields]
    for f in fields:
        rule, line = rule_of(f), rows[f.name]
        assert rule.doc and line.rstrip().endswith(rule.doc), f"{f.name}: meaning missing"
        assert type_words(f.type if not isinstance(f.type, str) else
                          __import__("typing").get_type_hints(options_class)[f.name]) in line
        if rule.range_text():
            assert rule.range_text() in line, f"{f.name}: allowed range missing"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_lists_every_option_with_type_default_range_and_meaning(name, capsys):
    assert main(["describe", "method", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"method {name}: {METHODS[name].summary}")
    if dataclasses.fields(METHODS[name].Options):
        check_every_field(METHODS[name].Options, out)
    else:
        assert "no options" in out


def test_lejepa_defaults_are_printed_as_set():
    from experiments.describe import describe

    rows = rows_of(describe("method", "lejepa"))
    assert rows["lamb"].split()[:5] == ["lamb", "a", "number", "0.05", "in"]
    assert rows["teacher"].split()[3] == "none" and "one of none, ema, swa" in rows["teacher"]


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_spec_section_lists_every_run_key(section, capsys):
    assert main(["describe", "section", section]) == 0
    check_every_field(SECTIONS[section], capsys.readouterr().out)


def test_every_dataset_says_classes_splits_and_how_to_get_it(capsys):
    for name in sorted(DATASETS):
        assert main(["describe", "dataset", name]) == 0
        out, info = capsys.readouterr().out, get_dataset(name)
        assert out.startswith(f"dataset {name}: {info.num_classes} classes, {info.image_size} px")
        assert f"to get it: {info.how_to_get}" in out


def test_unknown_names_exit_2_with_the_known_ones(capsys):
    assert main(["describe", "method", "lejepaa"]) == 2
    assert "did you mean lejepa" in capsys.readouterr().err
    assert main(["describe", "section", "optim"]) == 2
    assert "sections: data, model, views, train, eval, resources" in capsys.readouterr().err
