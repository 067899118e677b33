"""The one registry of actions: for each, the permission it requires and the audit event
kinds it writes; and for every other audit event kind, who writes it.

Each action declares itself with one decorator line above its definition:

    @action(Permission.SIGN_SESSION, AuditAction.SESSION_SIGNED)
    def sign_session(uow, actor, cmd): ...

The decorator registers the function and returns it unchanged (no cost per call). The
tests are generated from this registry (`tests/integration/test_action_registry.py`):

* every action writes exactly its declared audit event(s), each once, in the one
  commit of its own transaction;
* every action with a permission refuses each role without it and an actor of another
  clinic, writing nothing (a refusal within the clinic writes only its `access.denied`);
* the permission an action checks (`authorize(uow, actor, Permission.X)`) is the one
  it declares;
* every public function in `actions/` that opens a unit of work is registered, and
  every `AuditAction` is declared by an action or listed in `OTHER_EVENTS`.

Actions without a permission run before anybody is signed in (sign-in, the operator's
clinic registration); each says why in `unauthenticated`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from needlepoint.domain.enums import AuditAction
from needlepoint.domain.permissions import Permission

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Declared:
    """What an action declares: the permission it requires (None: no signed-in actor
    yet, for the reason in `unauthenticated`) and the audit event kinds it may write.
    An action writes each kind at most once per call; which ones depends on the outcome
    (a sign-in that fails writes `auth.login_failed`, one that succeeds
    `auth.login_succeeded`)."""

    function: Callable[..., Any]
    permission: Permission | None
    events: frozenset[AuditAction]
    unauthenticated: str | None = None
    unaudited: str | None = None  # why an action writes no audit event at all

    @property
    def name(self) -> str:
        """`module.function`, e.g. `sessions.sign_session`."""
        return f"{self.function.__module__.rsplit('.', 1)[-1]}.{self.function.__name__}"


ACTIONS: dict[str, Declared] = {}
"""Every registered action by `module.function` (complete once `all_actions()` ran)."""


def action(
    permission: Permission | None,
    *events: AuditAction,
    unauthenticated: str | None = None,
    unaudited: str | None = None,
) -> Callable[[F], F]:
    """Register the decorated function as an action requiring `permission` and writing
    the audit event kinds `events`."""
    if (permission is None) != (unauthenticated is not None):
        raise ValueError("an action without a permission says why (unauthenticated=…)")
    if (not events) != (unaudited is not None):
        raise ValueError("an action without an audit event says why (unaudited=…)")

    def register(function: F) -> F:
        declared = Declared(function, permission, frozenset(events), unauthenticated, unaudited)
        if declared.name in ACTIONS and ACTIONS[declared.name].function is not function:
            raise ValueError(f"action {declared.name} registered twice")
        ACTIONS[declared.name] = declared
        return function

    return register


OTHER_EVENTS: dict[AuditAction, str] = {
    AuditAction.ACCESS_DENIED: (
        "every refusal of a permission: actions.context.authorize (in every action "
        "that declares a permission) and queries.reader.Reader.require (every read)"
    ),
    AuditAction.RECORD_VIEWED: (
        "the read side: queries.reader notes each health record a query opens; "
        "open_reader writes the events when the reading is done"
    ),
    AuditAction.AUDIT_EXPORTED: (
        "the read side: the audit report's export (web/api/audit.py) notes the "
        "disclosure on its reader"
    ),
    AuditAction.DOCUMENT_EXPORTED: (
        "the read side: a PDF download of a signed note, progress report or consent "
        "copy (web/ui/documents.py) notes the export on its reader"
    ),
    AuditAction.RECORDS_DISCLOSED: (
        "the read side: the FHIR export (queries/fhir.py, $everything and each patient "
        "of a bulk export) notes each patient's record disclosed on its reader"
    ),
}
"""Audit event kinds that no single action declares, and who writes them."""


def all_actions() -> dict[str, Declared]:
    """The complete registry: imports every module of `needlepoint.actions` first."""
    package = importlib.import_module("needlepoint.actions")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"needlepoint.actions.{module.name}")
    return dict(ACTIONS)


def declared_events() -> dict[AuditAction, list[str]]:
    """For each audit event kind, the actions (or other writers) that declare it."""
    found: dict[AuditAction, list[str]] = {kind: [] for kind in AuditAction}
    for name, declared in sorted(all_actions().items()):
        for kind in declared.events:
            found[kind].append(name)
    for kind, writer in OTHER_EVENTS.items():
        found[kind].append(writer)
    return found
