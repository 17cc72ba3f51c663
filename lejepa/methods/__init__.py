"""Methods by name. Importing this package registers every method file."""

from lejepa.methods import dino, lejepa, reference, vicreg  # noqa: F401  (registration)
from lejepa.methods.base import Method
from lejepa.methods.registry import (
    METHODS,
    build_method,
    get_method,
    normalised,
    option_problems,
    parse_options,
    register_method,
)

__all__ = ["METHODS", "Method", "build_method", "get_method", "normalised", "option_problems", "parse_options", "register_method"]
