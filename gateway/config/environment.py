"""The environment overlay: `POSTDESK_<SECTION>__<KEY>` variables over the settings file.

Each variable names a key path (double underscore for each level of nesting) and overrides
that key of the YAML tree before it is validated; a key whose setting is a list takes a
comma-separated value (`POSTDESK_MAILBOXES=support@a.example,order@a.example`). Which keys
those are is read from the schema, so a new list setting needs no entry here. The overlay
remembers which variable set which key, so that a bad value is reported under its variable.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from pydantic import BaseModel

from gateway.config.schema import Config

ENV_PREFIX = "POSTDESK_"
# Names the settings file itself; it is not a setting.
CONFIG_VARIABLE = "POSTDESK_CONFIG"


class Override(NamedTuple):
    """One variable: the key path it sets, its value as given, and its name."""

    keys: list[str]
    value: str
    name: str


def env_overrides(environ: Mapping[str, str]) -> dict[str, Override]:
    """Each POSTDESK_* variable by the dotted key it sets (`smtp.listen`)."""
    found: dict[str, Override] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_VARIABLE:
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        found[".".join(keys)] = Override(keys, value, name)
    return found


def overlay(tree: dict[str, Any], overrides: Mapping[str, Override]) -> None:
    """Set every override into `tree` (the YAML as loaded), splitting the values of list keys."""
    lists = list_keys()
    for dotted, override in overrides.items():
        text = override.value
        value = [part.strip() for part in text.split(",") if part.strip()] if dotted in lists else text
        _set_path(tree, override.keys, value)


def _set_path(tree: dict[str, Any], path: list[str], value: str | list[str]) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


@cache
def list_keys() -> frozenset[str]:
    """The dotted keys whose setting is a list of texts (`mailboxes`, `agent_mail.mta_hosts`)."""
    return frozenset(_list_keys(Config, ""))


def _list_keys(model: type[BaseModel], prefix: str) -> set[str]:
    found: set[str] = set()
    for name, info in model.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= _list_keys(kind, f"{prefix}{name}.")
        elif _is_text_list(kind):
            found.add(prefix + name)
    return found


def _is_text_list(kind: object) -> bool:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return any(_is_text_list(member) for member in typing.get_args(kind))
    args = typing.get_args(kind)
    return typing.get_origin(kind) in (tuple, list) and bool(args) and args[0] is str
