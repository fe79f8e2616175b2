"""Problems an operator must fix before a command can run, and invalid settings
as one line per mistake, naming the environment variable.

pydantic reports a field's constraint (`gt`, `le`, `min_length`...) in the error's
context; the line is derived from it, so a new setting with a bound needs no
message of its own. Validators that raise ValueError say what the value "must
be"; the variable's name goes in front.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}
_EXPECTED_KINDS = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
}


class StartupError(Exception):
    """A configuration or environment problem; its text is shown as is, without a
    traceback, and the command exits with status 2."""


class SettingsError(StartupError):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings(settings_class: type[SettingsT], **values: Any) -> SettingsT:
    """The settings from the environment (and `values`); SettingsError when invalid."""
    try:
        return settings_class(**values)
    except ValidationError as error:
        raise SettingsError(describe(error, settings_class)) from None


def describe(error: ValidationError, settings_class: type[BaseSettings]) -> list[str]:
    prefix = str(settings_class.model_config.get("env_prefix") or "")
    return [_line(detail, prefix) for detail in error.errors()]


def _line(detail: ErrorDetails, env_prefix: str) -> str:
    kind, context = detail["type"], detail.get("ctx", {})
    if not detail["loc"]:  # a model validator's message names its variables itself
        return str(context.get("error", detail["msg"]))
    name = (env_prefix + str(detail["loc"][0])).upper()
    # Inputs are only echoed where they cannot be secrets (numbers, flags, choices).
    got = _shown(detail["input"])
    if kind == "value_error":
        return f"{name} {context['error']}"
    if kind in _BOUNDS:
        operator, key = _BOUNDS[kind]
        return f"{name} must be {operator} {_shown(context[key])}, got {got}"
    if kind in _EXPECTED_KINDS:
        return f"{name} must be {_EXPECTED_KINDS[kind]}, got {got}"
    if kind == "literal_error":
        return f"{name} must be {context['expected']}, got {got}"
    if kind == "string_too_short":
        return f"{name} must be at least {context['min_length']} characters"
    return f"{name}: {detail['msg']}"


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
