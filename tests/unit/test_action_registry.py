"""The action registry (`actions/registry.py`) is complete and agrees with the code:
every action is registered, every audit event kind has a declared writer, and what each
action declares is what its body checks and writes. The behaviour behind each
declaration is tested on both databases in `tests/integration/test_action_registry.py`."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

import needlepoint.actions
from needlepoint.actions.registry import (
    OTHER_EVENTS,
    Declared,
    action,
    all_actions,
    declared_events,
)
from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission

REGISTRY = all_actions()


def _opens_a_unit_of_work(function: Callable[..., Any]) -> bool:
    """True when the function's own body has a `with uow:` block: it is an action."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return any(
        isinstance(node, ast.With)
        and any(
            isinstance(item.context_expr, ast.Name) and item.context_expr.id == "uow"
            for item in node.items
        )
        for node in ast.walk(tree)
    )


def _public_functions() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for info in pkgutil.iter_modules(needlepoint.actions.__path__):
        module = importlib.import_module(f"needlepoint.actions.{info.name}")
        for name, value in vars(module).items():
            if (
                inspect.isfunction(value)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = value
    return found


def _body(declared: Declared) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(declared.function)))


def _enum_members(tree: ast.AST, enum: str) -> list[str]:
    """`Enum.MEMBER` names used in the tree, in order (decorators left out)."""
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            node.decorator_list = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == enum
        ):
            out.append(node.attr)
    return out


def test_every_function_that_opens_a_unit_of_work_is_a_registered_action() -> None:
    actions = {name for name, fn in _public_functions().items() if _opens_a_unit_of_work(fn)}
    assert actions, "no action found: the discovery itself is broken"
    missing = actions - set(REGISTRY)
    assert not missing, f"declare these with @action(permission, *events): {sorted(missing)}"
    stale = set(REGISTRY) - actions
    assert not stale, f"registered but not an action that opens a unit of work: {sorted(stale)}"


def test_every_audit_event_kind_has_a_declared_writer() -> None:
    undeclared = [kind.value for kind, writers in declared_events().items() if not writers]
    assert not undeclared, f"no action or reader declares these audit events: {undeclared}"
    assert len(declared_events()) == len(AuditAction)


def test_events_written_outside_actions_are_not_also_declared_by_an_action() -> None:
    by_actions = {kind for declared in REGISTRY.values() for kind in declared.events}
    assert not by_actions & set(OTHER_EVENTS)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_an_action_checks_exactly_the_permission_it_declares(name: str) -> None:
    declared = REGISTRY[name]
    tree = _body(declared)
    checked = [
        node.args[2]
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "authorize"
    ]
    if declared.permission is None:
        assert not checked, f"{name} declares no permission but calls authorize()"
        return
    assert len(checked) == 1, f"{name} must call authorize() exactly once"
    arg = checked[0]
    assert isinstance(arg, ast.Attribute)
    assert isinstance(arg.value, ast.Name)
    assert (arg.value.id, arg.attr) == ("Permission", declared.permission.name), (
        f"{name} checks {ast.unparse(arg)} but declares {declared.permission!r}"
    )


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_an_action_names_exactly_the_audit_events_it_declares(name: str) -> None:
    declared = REGISTRY[name]
    named = {AuditAction[member] for member in _enum_members(_body(declared), "AuditAction")}
    assert named == set(declared.events), (
        f"{name} names {sorted(named)} in its body but declares {sorted(declared.events)}"
    )


def test_a_declaration_without_permission_or_event_must_say_why() -> None:
    with pytest.raises(ValueError, match="unauthenticated"):
        action(None, AuditAction.PATIENT_REGISTERED)
    with pytest.raises(ValueError, match="unaudited"):
        action(Permission.REGISTER_PATIENT)
    with pytest.raises(ValueError, match="unauthenticated"):
        action(Permission.REGISTER_PATIENT, AuditAction.PATIENT_REGISTERED, unauthenticated="x")


def test_the_decorator_returns_the_function_itself() -> None:
    from needlepoint.actions.sessions import sign_session

    assert REGISTRY["sessions.sign_session"].function is sign_session
    assert REGISTRY["sessions.sign_session"].permission is Permission.SIGN_SESSION
