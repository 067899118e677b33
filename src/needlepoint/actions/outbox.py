"""The outbox's state changes, made by the outbox worker (`needlepoint.outbox`): claim a
message, then record it sent or failed.

Why a crash neither loses nor duplicates an invitation
------------------------------------------------------
An invitation exists only as an outbox row, written in the same transaction as its link
(`actions.questionnaires`): if that transaction rolls back there is neither link nor
mail; if it commits, the row is durable before anyone tries to send it.

Sending is three steps, each its own transaction except the SMTP conversation:

1. **claim** (`claim_message`): pending (or a stale claim, see below) → `sending`, with a
   new `claim_id`, `claimed_at` and `attempts + 1`. The change is a versioned update
   (`UPDATE … WHERE id = ? AND version = ?`): of two workers claiming the same row one
   wins and the other gets `StaleVersion` and skips it. A claimed row is never sent by
   anyone else while the claim is fresh.
2. **send** over SMTP, with a Message-ID fixed by the row's id (`adapters.mail`).
3. **mark** (`mark_sent` / `mark_failed`): only the holder of the claim (same
   `claim_id`, state still `sending`) may mark it; a late mark by a worker whose claim
   was taken over changes nothing. Marking sent also forgets the link (`link_url`).

A worker that dies between 1 and 2 leaves a `sending` row that nobody sends until its
claim is older than the lease (`LEASE`); then the next worker takes it over and sends
it: sent once, not lost. A worker that dies after 3 has nothing to redo. The one window
left is between the SMTP server's acceptance and the commit of step 3 (milliseconds):
a takeover then sends the message again, with the same Message-ID, so the receiving
mail system sees the same message (SMTP itself cannot tell a sender whether a
connection lost after the final dot delivered the mail; no protocol closes this window,
it can only be made small and recognisable). `tests/integration/test_outbox_durability.py`
kills a worker at each of these points and counts.

Failed deliveries are retried with exponential back-off (`next_attempt_at`, computed by
`domain.questionnaires.retry_delay`: a schedule in the table, not a retry loop in the
worker) and given up (`failed`) after `MAX_ATTEMPTS`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from needlepoint.actions.context import audit
from needlepoint.actions.registry import action
from needlepoint.domain.entities import OutboxMessage
from needlepoint.domain.enums import AuditAction, OutboxState
from needlepoint.domain.questionnaires import gives_up, retry_delay
from needlepoint.ports import UnitOfWork

LEASE = timedelta(minutes=5)
"""How long a claim holds: a `sending` row older than this belongs to a dead worker."""

WORKER = "the outbox worker, a system process (no user): it sends what actions queued"
SOURCE = "outbox-worker"
MAX_ERROR = 500


def claimable(message: OutboxMessage, now: object, lease: timedelta = LEASE) -> bool:
    """Whether a worker may claim the message now: pending and due, or claimed by a
    worker whose lease ran out."""
    if message.state is OutboxState.PENDING:
        return message.next_attempt_at <= now  # type: ignore[operator]
    if message.state is OutboxState.SENDING and message.claimed_at is not None:
        return message.claimed_at + lease <= now  # type: ignore[operator]
    return False


@action(None, unauthenticated=WORKER, unaudited="delivery bookkeeping: the claim of a message")
def claim_message(
    uow: UnitOfWork, clinic_id: UUID, message_id: UUID, *, lease: timedelta = LEASE
) -> OutboxMessage | None:
    """Claim one message for sending (see the module's explanation); None when it is
    not claimable (sent, claimed by a live worker, not yet due) or another worker won."""
    with uow:
        message = uow.get(OutboxMessage, message_id, clinic_id)
        now = uow.now()
        if message is None or not claimable(message, now, lease):
            return None
        claimed = replace(
            message,
            state=OutboxState.SENDING,
            claim_id=uow.new_id(),
            claimed_at=now,
            attempts=message.attempts + 1,
            version=message.version + 1,
        )
        uow.replace(message, claimed)
        uow.commit()  # StaleVersion when another worker claimed it first
    return claimed


def _holding(uow: UnitOfWork, clinic_id: UUID, claimed: OutboxMessage) -> OutboxMessage | None:
    current = uow.get(OutboxMessage, claimed.id, clinic_id)
    if (
        current is None
        or current.state is not OutboxState.SENDING
        or current.claim_id != claimed.claim_id
    ):
        return None  # the claim was taken over: the new holder marks it
    return current


@action(None, AuditAction.MESSAGE_SENT, unauthenticated=WORKER)
def mark_sent(uow: UnitOfWork, clinic_id: UUID, claimed: OutboxMessage) -> OutboxMessage | None:
    """The SMTP server accepted the message: sent (the link is forgotten). Only the
    claim's holder marks it; returns None when the claim was taken over."""
    with uow:
        current = _holding(uow, clinic_id, claimed)
        if current is None:
            return None
        now = uow.now()
        sent = replace(
            current,
            state=OutboxState.SENT,
            sent_at=now,
            link_url=None,
            last_error=None,
            version=current.version + 1,
        )
        uow.replace(current, sent)
        audit(
            uow,
            None,
            clinic_id,
            AuditAction.MESSAGE_SENT,
            sent,
            before=[current],
            after=[sent],
            patient_id=sent.patient_id,
            source=SOURCE,
        )
        uow.commit()
    return sent


@action(None, AuditAction.MESSAGE_FAILED, unauthenticated=WORKER)
def mark_failed(
    uow: UnitOfWork, clinic_id: UUID, claimed: OutboxMessage, error: str
) -> OutboxMessage | None:
    """The SMTP server refused the message or could not be reached: pending again, its
    next attempt later (exponential back-off), or failed after the last attempt (that
    one is audited: the clinic's outbox page shows it). Only the claim's holder marks it."""
    with uow:
        current = _holding(uow, clinic_id, claimed)
        if current is None:
            return None
        now = uow.now()
        final = gives_up(current.attempts)
        failed = replace(
            current,
            state=OutboxState.FAILED if final else OutboxState.PENDING,
            next_attempt_at=now + retry_delay(current.attempts),
            last_error=error[:MAX_ERROR],
            link_url=None if final else current.link_url,
            version=current.version + 1,
        )
        uow.replace(current, failed)
        if final:
            audit(
                uow,
                None,
                clinic_id,
                AuditAction.MESSAGE_FAILED,
                failed,
                before=[current],
                after=[failed],
                patient_id=failed.patient_id,
                source=SOURCE,
            )
        uow.commit()
    return failed
