"""Methods by name. Importing this package registers every method file."""

from lejepa.methods import dino, lejepa, reference, vicreg  # noqa: F401  (registration)
from lejepa.methods.base import METHODS, Method, get_method, parse_options, register_method

__all__ = ["METHODS", "Method", "get_method", "parse_options", "register_method"]
