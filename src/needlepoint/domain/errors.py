"""Named domain errors. Entrypoints translate each into one HTTP status or CLI message."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: a rule refused the request; nothing was written."""

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.errors = errors
        """Several problems at once (each with `field` and `message`), when one is not enough."""


class NotFound(DomainError):
    """The record does not exist in the acting user's clinic (other clinics look the same)."""


class PermissionDenied(DomainError):
    """The acting user's role may not perform this action."""


class InvalidInput(DomainError):
    """A value breaks a clinical or data rule; `field` names it."""


class RecordLocked(DomainError):
    """A signed or closed record cannot be edited in place."""


class StaleVersion(DomainError):
    """The record changed since the caller read it (optimistic concurrency)."""


class VersionRequired(DomainError):
    """An update did not say which version it was based on."""


class SafetyRefusal(DomainError):
    """A clinical safety rule refused the request: a contraindication, a missing or
    withdrawn consent, an unqualified practitioner, or a refused needling site. Each error
    names its rule and sources."""


class NotAuthenticated(Exception):
    """The caller's credential (API token or web session) is not, or no longer, valid:
    revoked, expired, or its user deactivated; checked inside the write's transaction,
    and nothing was written. Not a `DomainError`: no form shows it as a field's error,
    the caller is sent to sign in again (HTTP 401)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
