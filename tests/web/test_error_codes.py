"""Every error code the server can send has its sentence in every catalogue.

The API keeps English messages and stable codes; a page in another language says each error
from its code (js/api.js `explain`). The codes are read from the Python source itself, so a new
code without its sentences fails here, before a French page shows its English message."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from iaforall.engines.runtime import KINDS
from tests.web.test_i18n import catalogues

SOURCE = Path(__file__).resolve().parents[2] / "src" / "iaforall"
# Catalogue sentences about errors that are not one code's (the code-less fallback…).
NOT_CODES = {"unknown", "policy_blocked_rule"}


def _strings(node: ast.AST | None) -> Iterator[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value


def _positional(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [a.arg for a in function.args.posonlyargs + function.args.args]
    return names[1:] if names[:1] in (["self"], ["cls"]) else names


def _gives(node: ast.keyword | ast.Assign, name: str) -> bool:
    """`name=…` as a keyword, or `name = …`."""
    if isinstance(node, ast.keyword):
        return node.arg == name
    return any(isinstance(t, ast.Name) and t.id == name for t in node.targets)


def source_values(name: str) -> set[str]:
    """Every string the source gives `name` (`code`, `error_code`, `quota`): as a keyword, a class
    or local assignment, a dict key, a default, or a positional argument of a function that
    takes it (`_bad("…", "corrupt_audio")`)."""
    trees = [ast.parse(path.read_text()) for path in sorted(SOURCE.rglob("*.py"))]
    place = {}  # function name -> index of its positional parameter `name`
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and name in (
                positional := _positional(node)
            ):
                place[node.name] = positional.index(name)
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword | ast.Assign) and _gives(node, name):
                found.update(_strings(node.value))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if name in _strings(key):
                        found.update(_strings(value))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args.args + node.args.kwonlyargs
                defaults = [None] * (len(node.args.args) - len(node.args.defaults))
                defaults += [*node.args.defaults, *node.args.kw_defaults]
                for arg, default in zip(args, defaults, strict=True):
                    if arg.arg == name:
                        found.update(_strings(default))
            elif isinstance(node, ast.Call):
                called = node.func
                callee = called.id if isinstance(called, ast.Name) else getattr(called, "attr", "")
                index = place.get(callee)
                if index is not None and len(node.args) > index:
                    found.update(_strings(node.args[index]))
    return found


def error_codes() -> set[str]:
    return source_values("code") | source_values("error_code")


def test_the_scan_sees_the_codes_wherever_they_are_made() -> None:
    codes = error_codes()
    assert {
        "model_not_found",  # a class attribute (core/errors.py)
        "invalid_value",  # a keyword (api/errors.py, request validation)
        "policy_blocked",  # a class attribute outside core (policy/gate.py)
        "corrupt_audio",  # a positional argument (engines/whisper/decode.py)
        "unsupported_format",  # a default (engines/whisper/incoming.py)
        "zip_bomb",  # a keyword in knowledge/
        "internal_error",
    } <= codes
    assert len(codes) > 60


def test_every_error_code_has_its_sentence_in_every_catalogue() -> None:
    codes = error_codes()
    found = catalogues()
    english = found["en"]
    for language, catalogue in found.items():
        missing = sorted(c for c in codes if f"error_code_{c}" not in catalogue)
        assert not missing, f"{language}.json has no error_code_… sentence for {missing}"
        said = {k.removeprefix("error_code_") for k in catalogue if k.startswith("error_code_")}
        assert not said - codes - NOT_CODES, f"codes the server no longer sends: {said - codes}"
        if language != "en":  # translated, not copied
            copied = [k for k in catalogue if k.startswith("error_") and catalogue[k] == english[k]]
            assert copied in ([], ["error_detail"]), (language, copied)


def test_every_quota_and_model_kind_is_named_in_every_catalogue() -> None:
    quotas = source_values("quota")
    assert {"tokens_per_day", "concurrent_requests", "max_context"} <= quotas
    for language, catalogue in catalogues().items():
        for quota in quotas:
            assert f"error_quota_{quota}" in catalogue, (language, quota)
        for kind in KINDS:  # the admin page's Models table names each kind
            assert f"admin_models_kind_{kind}" in catalogue, (language, kind)
