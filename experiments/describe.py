"""`lejepa describe method|dataset|probe|section NAME`: every option with its type, default, allowed range and
meaning.

`section` describes the run keys of one spec section (data, model, views, train, eval, resources), the keys a
manifest's `defaults`, grid and overrides set; `probe` one probe of the registry (evaluation/probes/), whose
options a manifest sets as eval.probe_options.NAME.
"""

from __future__ import annotations

from lejepa.options import describe_options


def _table(rows: list[dict[str, str]]) -> str:
    header = {"name": "option", "type": "type", "default": "default", "range": "allowed", "doc": "meaning"}
    columns = list(header)
    widths = {c: max(len(header[c]), *(len(r[c]) for r in rows)) for c in columns} if rows else {}
    lines = ["  ".join(header[c].ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


def describe(what: str, name: str) -> str:
    if what == "method":
        from lejepa.methods import get_method

        cls = get_method(name)
        rows = describe_options(cls.Options)
        head = f"method {name}: {cls.summary}" + ("" if cls.pretrains else " (does not pretrain)")
        body = _table(rows) if rows else "no options"
        return f"{head}\nset in a manifest as method: {{name: {name}, OPTION: VALUE}}\n{body}"
    if what == "dataset":
        from lejepa.data import get_dataset

        info = get_dataset(name)
        return "\n".join([
            f"dataset {name}: {info.num_classes} classes, {info.image_size} px by default, splits {', '.join(info.splits)}",
            f"train split: {info.train_split}; test split: {info.test_split}",
            f"default folder: {info.default_root} (under $LEJEPA_DATA_ROOT, default ~/data, unless absolute)",
            f"to get it: {info.how_to_get}",
            f"normalisation: mean {list(info.mean)}, std {list(info.std)}",
        ])
    if what == "probe":
        return _describe_probe(name)
    if what == "section":
        from lejepa.spec import SECTIONS

        if name not in SECTIONS:
            raise KeyError(f"unknown section '{name}' (sections: {', '.join(SECTIONS)})")
        section = SECTIONS[name]
        summary = (section.__doc__ or "").strip().splitlines()[0] if section.__doc__ else ""
        head = f"section {name}" + (f": {summary}" if summary and not summary.startswith(section.__name__) else "")
        return f"{head}\nset in a manifest as {name}: {{KEY: VALUE}} or {name}.KEY: VALUE\n" + _table(
            describe_options(section))
    raise KeyError(f"cannot describe '{what}' (method, dataset, probe or section)")


def _describe_probe(name: str) -> str:
    """Options (with the eval.* field each defaulted from before the registry) and the metrics it records."""
    from evaluation.probes import get_probe, protocol_text

    cls = get_probe(name)
    rows = describe_options(cls.Options)
    for row in rows:
        if row["name"] in cls.legacy:
            row["doc"] += f" (default: eval.{cls.legacy[row['name']]})"
    example = cls.metrics(_example_section(name)) or cls.standing()
    lines = [f"probe {name}: {cls.summary}",
             f"run it with eval: {{probes: [..., {name}]}}; options as eval: {{probe_options: {{{name}: {{OPTION: "
             f"VALUE}}}}}}" + (f"; needs {', '.join(cls.requires)} listed before it" if cls.requires else ""),
             f"records evaluation.probes.{name}; its metrics (with the default options):"]
    lines += [f"  {m.column}: {m.label}{' (headline)' if m.headline else ''}; protocol {protocol_text(m.protocol)}"
              for m in example]
    return "\n".join([*lines, _table(rows) if rows else "no options"])


def _example_section(name: str) -> dict:
    """The section a run with default options would record (values left out), to list its metrics."""
    from evaluation.probes import get_probe, probe_options
    from lejepa.spec import EvalSpec

    cls = get_probe(name)
    options = probe_options(cls, EvalSpec(few_shot=(1, 10)) if name == "few_shot" else EvalSpec())
    if name == "knn":
        return {"feature": options.feature, "temperature": options.temperature, **{f"top1@{k}": None for k in options.k}}
    if name == "few_shot":
        return {str(s): {} for s in options.shots}
    return {}
