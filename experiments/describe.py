"""`lejepa describe method|dataset|section NAME`: every option with its type, default, allowed range and meaning.

`section` describes the run keys of one spec section (data, model, views, train, eval, resources), the keys a
manifest's `defaults`, grid and overrides set. There is no `describe probe` yet: the probes have no
registry of their own (their settings are the `eval` section's keys: `lejepa describe section eval`).
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
    if what == "section":
        from lejepa.spec import SECTIONS

        if name not in SECTIONS:
            raise KeyError(f"unknown section '{name}' (sections: {', '.join(SECTIONS)})")
        section = SECTIONS[name]
        summary = (section.__doc__ or "").strip().splitlines()[0] if section.__doc__ else ""
        head = f"section {name}" + (f": {summary}" if summary and not summary.startswith(section.__name__) else "")
        return f"{head}\nset in a manifest as {name}: {{KEY: VALUE}} or {name}.KEY: VALUE\n" + _table(
            describe_options(section))
    raise KeyError(f"cannot describe '{what}' (method, dataset or section)")
