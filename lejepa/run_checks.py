"""Checks of a run that need the registries (datasets, timm, methods) or span several spec sections.

The spec's sections check their own fields (lejepa/spec.py); these are the rest: the names exist, the
method's options are valid, and the sections agree with each other. Each problem is (dotted key, message)
so the manifest can say which line of which file set the key; messages do not repeat the key.
"""

from __future__ import annotations

from functools import cache

from lejepa.spec import RunSpec


@cache
def _architecture_problem(arch: str) -> str | None:
    from lejepa.backbones import check_architecture

    try:
        check_architecture(arch)
    except KeyError as error:
        return str(error.args[0])
    return None


def name_problems(data_name: str, arch: str, method: dict) -> list[tuple[str, str]]:
    """The dataset, the architecture and the method exist, and the method's options are valid."""
    from lejepa.data import get_dataset
    from lejepa.methods import get_method, option_problems

    problems: list[tuple[str, str]] = []
    try:
        get_dataset(data_name)
    except KeyError as error:
        problems.append(("data.name", str(error.args[0]) + "; see `lejepa list datasets`"))
    arch_problem = _architecture_problem(arch)
    if arch_problem:
        problems.append(("model.arch", arch_problem))
    try:
        get_method(method.get("name", ""))
    except KeyError as error:
        return [*problems, ("method.name", str(error.args[0]))]
    return problems + [(f"method.{key}", message) for key, message in option_problems(method)]


def run_problems(spec: RunSpec) -> list[tuple[str, str]]:
    """Rules between sections: a run that pretrains has steps to take; one that evaluates another run's
    weights takes none; methods that compare views get at least two."""
    from lejepa.methods import get_method

    method = get_method(spec.method_name)
    problems = []
    if spec.model.init_from is not None and spec.train.epochs != 0:
        problems.append(("model.init_from", (f"model.init_from evaluates the weights of another run and does not "
                                            f"pretrain: set train.epochs: 0 (got {spec.train.epochs:g})")))
    if spec.model.init_from is None and method.pretrains and spec.train.epochs == 0:
        problems.append(("train.epochs", (f"is 0, so method '{spec.method_name}' would record an untrained backbone "
                                         f"as its result; give epochs > 0 (or model.init_from to evaluate another "
                                         f"run's weights)")))
    if method.name in ("dino", "vicreg") and spec.views.global_views + spec.views.local_views < 2:
        problems.append(("views.local_views", (f"method '{method.name}' compares views: give at least 2 views in all "
                                              f"(global_views + local_views)")))
    return problems
