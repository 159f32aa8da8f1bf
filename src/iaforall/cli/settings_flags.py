"""Command-line flags made from the settings (settings.py): one flag per field of every
`IAFORALL_*` settings group, named after it (`context_length` → `--context-length`), typed and
described by it, so a new setting gets its flag with nothing to write here.

A flag left out changes nothing: the environment variable, or the field's default, stays. A
flag given overrides it, checked by the same pydantic field (a bad value is a usage error,
exit status 2). Booleans get both forms (`--preload` / `--no-preload`). A field marked
`json_schema_extra={"flag": False}` gets none (a secret on a command line shows in `ps`);
`{"metavar": ...}` names its value in the help.
"""

from __future__ import annotations

import argparse
import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from iaforall.settings import Settings

PREFIX = "IAFORALL_"
_DEST = "setting:"  # dest of a settings flag: "setting:<group>.<field>", apart from the others


def settings_groups(settings: type[Settings]) -> dict[str, type[BaseSettings]]:
    """The groups of `settings` read from IAFORALL_ variables (not other programs' variables)."""
    groups: dict[str, type[BaseSettings]] = {}
    for name, field in settings.model_fields.items():
        group = field.annotation
        if (
            isinstance(group, type)
            and issubclass(group, BaseSettings)
            and group.model_config.get("env_prefix") == PREFIX
        ):
            groups[name] = group
    return groups


def add_settings_flags(
    parser: argparse.ArgumentParser, settings: type[Settings] = Settings
) -> None:
    """A flag for every field of every IAFORALL_ settings group, in one section per group."""
    for group_name, group in settings_groups(settings).items():
        title = group.__doc__.splitlines()[0] if group.__doc__ else None
        section = parser.add_argument_group(f"{group_name} settings", title)
        for name, field in group.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if extra.get("flag") is False:
                continue
            kind = _kind(field.annotation)
            if isinstance(extra.get("metavar"), str):
                kind["metavar"] = extra["metavar"]
            section.add_argument(
                "--" + name.replace("_", "-"),
                dest=f"{_DEST}{group_name}.{name}",
                default=None,
                help=_help(name, field),
                **kind,
            )


def apply_settings_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """`settings` with the flags given in `args` (parsed by a parser with the settings flags)
    in place of their fields. Raises ValueError, for the user, when a value does not fit."""
    given: dict[str, dict[str, Any]] = {}
    for dest, value in vars(args).items():
        if dest.startswith(_DEST) and value is not None:
            group, name = dest.removeprefix(_DEST).split(".", 1)
            given.setdefault(group, {})[name] = value
    updates = {}
    for group, fields in given.items():
        part: BaseModel = getattr(settings, group)
        try:
            updates[group] = type(part)(**{**part.model_dump(), **fields})
        except ValidationError as exc:
            raise ValueError(_problems(exc)) from None
    return settings.model_copy(update=updates) if updates else settings


def _kind(annotation: Any) -> dict[str, Any]:
    """How argparse reads a value of this type."""
    optional = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(optional) == 1:
        annotation = optional[0]  # `X | None`: a flag gives an X
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if get_origin(annotation) is Literal:
        return {"choices": list(get_args(annotation)), "metavar": "|".join(get_args(annotation))}
    if annotation in (int, float):
        return {"type": annotation, "metavar": annotation.__name__.upper()}
    if annotation is Path:
        return {"type": Path, "metavar": "PATH"}
    if annotation is str:
        return {"metavar": "TEXT"}
    return {"type": json.loads, "metavar": "JSON"}  # lists, dicts: as in the variable


def _help(name: str, field: FieldInfo) -> str:
    text = (field.description or "").rstrip(".")
    default = None if field.default_factory is not None else field.default
    if isinstance(default, bool):
        default = str(default).lower()
    shown = "" if default in ("", None) else f"; default {default}"
    # argparse formats help with %: a literal one is doubled.
    return f"{text} ({PREFIX}{name.upper()}{shown}).".replace("%", "%%")


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" if e["loc"] else e["msg"]
        for e in error.errors()
    )
