"""The patient's pages (issue 16): the questionnaires a link opens, made for a phone.

No account and no sign-in: the link's token (in the address) is the patient's only
credential, and it opens only that patient's questionnaires (`actions.questionnaires`).
Every form posts back to the same token's address, so a page of another site cannot
post here without the token (no CSRF token needed). Plain form posts, no script: every
post saves the answers given so far ("Save and finish later"), "Send my answers" saves
and then submits; with scripts on, `static/patient.js` also saves each answer the moment
it is chosen (the same post); an answer out of range comes back with the item named. A link that
does not open gets a page saying why, in plain words, with a button to ask for a new
link. Requests to `/q/` are rate limited per address (`web.limits.RateLimit`).

A link ends by use once everything it opened was sent. Sending sets a signed cookie for
that link (`SITTING_COOKIE`, `actions.patient_record.SITTING`: 30 minutes, only on the
link's own pages): in that sitting the patient still sees the thanks page, their
progress and their consent copy (the questionnaires' page says the link was used);
opening the link later, or in another browser, shows "this link has been used" with the
way to ask for a new one. Every route of the link
(questionnaires, save and send, thanks, progress, consent, withdrawal) checks it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import ValidationError

from needlepoint.actions import home_reports, patient_record, questionnaires
from needlepoint.actions.patient_record import SITTING
from needlepoint.adapters.db.unit_of_work import SqlUnitOfWork
from needlepoint.domain.answer_wording import choices
from needlepoint.domain.commands import (
    ReportAnalgesicUse,
    ReportPsfs,
    ReportReturnToActivity,
    SaveQuestionnaireAnswers,
)
from needlepoint.domain.entities import QuestionnaireAssignment
from needlepoint.domain.errors import DomainError, InvalidInput, NotFound, StaleVersion
from needlepoint.domain.home_reports import DRUG_CLASS_WORDS, MAX_ACTIVITIES
from needlepoint.domain.instruments import get as get_instrument
from needlepoint.domain.questionnaires import LinkClosed, hash_link_token, home_form
from needlepoint.web.context import patient_links_base
from needlepoint.web.ui.forms import in_thread, submitted_form, templates

router = APIRouter(include_in_schema=False)

SITTING_COOKIE = "needlepoint_sitting"

CLOSED_WORDS = {
    "used": "This link has been used: you already sent your answers with it. Thank you.",
    "expired": "This link has expired.",
    "superseded": "A newer link was sent to you: please use the newest e-mail.",
    "revoked": "Your clinic has withdrawn this link.",
    "unknown": "This link does not work. Please check that you copied all of it.",
}


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _uow(request: Request) -> SqlUnitOfWork:
    return SqlUnitOfWork(request.app.state.engine)


def _page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"  # answers never stay in a shared cache
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _sitting_signer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt="patient-sitting")


def start_sitting(request: Request, response: Response, token: str) -> Response:
    """Mark this browser as the one that sent the link's answers (a signed cookie naming
    the link's hash, for `SITTING`, sent only to the link's own pages)."""
    response.set_cookie(
        SITTING_COOKIE,
        _sitting_signer(request).dumps(hash_link_token(token)),
        max_age=int(SITTING.total_seconds()),
        path=f"/q/{token}",
        httponly=True,
        secure=request.app.state.secure_cookies,
        samesite="lax",
    )
    return response


def in_sitting(request: Request, token: str) -> bool:
    """Whether the request comes from the browser that sent this link's answers, within
    `SITTING` (the action also checks the time against when the link was used)."""
    cookie = request.cookies.get(SITTING_COOKIE)
    if not cookie:
        return False
    try:
        named = _sitting_signer(request).loads(cookie, max_age=int(SITTING.total_seconds()))
    except BadSignature:
        return False
    return bool(named == hash_link_token(token))


def _closed(request: Request, token: str, err: LinkClosed, status: int = 410) -> Response:
    return _page(
        request,
        "patient_closed.html",
        status if err.reason != "unknown" else 404,
        token=token,
        reason=err.reason,
        words=CLOSED_WORDS.get(err.reason, CLOSED_WORDS["unknown"]),
        can_ask=err.reason in ("expired", "superseded", "used"),
    )


def _questionnaire_page(
    request: Request,
    token: str,
    opened: questionnaires.PatientQuestionnaires,
    *,
    values: dict[UUID, dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    status: int = 200,
) -> Response:
    forms = []
    homes = home_reports.home_forms(_uow(request), token) if opened.due else {}
    for a, r in opened.due:
        inst = get_instrument(a.instrument_id)
        home = homes.get(a.id)
        shown = {} if home else {k: str(v) for k, v in r.answers.items() if v is not None}
        shown.update((values or {}).get(a.id, {}))
        forms.append({"assignment": a, "instrument": inst, "values": shown, "home": home})
    return _page(
        request,
        "patient_questionnaire.html",
        status,
        token=token,
        clinic_name=opened.clinic_name,
        forms=forms,
        choices=choices,
        drug_class_words=DRUG_CLASS_WORDS,
        errors=errors or {},
        saved=saved,
    )


@router.get("/q/{token}", response_model=None)
async def open_link(request: Request, token: str) -> Response:
    """The patient opens the link from the e-mail: their questionnaires, with the
    answers saved so far."""

    def work() -> Response:
        try:
            opened = questionnaires.open_questionnaires(
                _uow(request), token, address=_address(request)
            )
        except LinkClosed as err:
            return _closed(request, token, err)  # a used link opens no questionnaire
        if not opened.due:
            return _page(request, "patient_done.html", clinic_name=opened.clinic_name)
        return _questionnaire_page(request, token, opened, saved="saved" in request.query_params)

    return await in_thread(work)


def _answers(form: dict[str, Any], item_names: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted answers as numbers (blank: not answered yet), and the fields that are
    not numbers."""
    out: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for item in item_names:
        raw = form.get(item)
        value = (raw[-1] if isinstance(raw, list) else str(raw or "")).strip().replace(",", ".")
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            bad[f"answers.{item}"] = "Please give a number."
            continue
        out[item] = int(number) if number.is_integer() else number
    return out, bad


@router.post("/q/{token}", response_model=None)
async def answer(request: Request, token: str) -> Response:
    """Save the answers of one questionnaire; with "Send my answers", submit it."""
    form = await submitted_form(request)

    def work() -> Response:
        address = _address(request)
        try:
            assignment_id = UUID(str(form.get("assignment", "")))
        except ValueError:
            return RedirectResponse(f"/q/{token}", status_code=303)
        try:
            opened = questionnaires.open_questionnaires(_uow(request), token, address=address)
        except LinkClosed as err:
            return _closed(request, token, err)
        mine = next((a for a, _r in opened.due if a.id == assignment_id), None)
        if mine is None:
            return RedirectResponse(f"/q/{token}", status_code=303)
        if home_form(mine.instrument_id) is not None:
            return _home_answer(request, token, opened, mine, form, address)
        inst = get_instrument(mine.instrument_id)
        answers, bad = _answers(form, inst.item_names)
        posted = {k: str(form.get(k, "")) for k in inst.item_names if form.get(k)}
        if bad:
            return _questionnaire_page(
                request, token, opened, values={mine.id: posted}, errors=bad, status=422
            )
        try:
            _save_and_send(request, token, mine.id, answers, bool(form.get("send")), address)
        except LinkClosed as err:
            return _closed(request, token, err)
        except (InvalidInput, NotFound, ValidationError) as err:
            field = getattr(err, "field", None) or "answers"
            detail = getattr(err, "detail", None) or "Please check your answers."
            problems = getattr(err, "errors", None) or [{"field": field, "message": detail}]
            errors = {
                str(p["field"]): _plain(
                    str(p["field"]), str(p["message"]), inst.item_names, inst.item_labels
                )
                for p in problems
            }
            again = questionnaires.open_questionnaires(_uow(request), token, address=address)
            return _questionnaire_page(
                request, token, again, values={mine.id: posted}, errors=errors, status=422
            )
        except DomainError:
            return RedirectResponse(f"/q/{token}", status_code=303)
        if form.get("send"):
            return start_sitting(
                request, RedirectResponse(f"/q/{token}/thanks", status_code=303), token
            )
        return RedirectResponse(f"/q/{token}?saved=1#top", status_code=303)

    return await in_thread(work)


def _save_and_send(
    request: Request,
    token: str,
    assignment_id: UUID,
    answers: dict[str, Any],
    send: bool,
    address: str | None,
) -> None:
    """Save the answers, then (with `send`) submit. The page's script saves each answer
    as it is chosen: a save racing this one (`StaleVersion`) is retried once, on the
    newer version."""
    for attempt in (1, 2):
        try:
            if answers:
                questionnaires.save_questionnaire_answers(
                    _uow(request),
                    token,
                    SaveQuestionnaireAnswers(assignment_id=assignment_id, answers=answers),
                    address=address,
                )
            if send:
                questionnaires.submit_questionnaire(
                    _uow(request), token, assignment_id, address=address
                )
            return
        except StaleVersion:
            if attempt == 2:
                raise


MAX_DRUGS = 40


def _one(form: dict[str, Any], name: str) -> str:
    raw = form.get(name)
    return (raw[-1] if isinstance(raw, list) else str(raw or "")).strip()


def _home_answer(
    request: Request,
    token: str,
    opened: questionnaires.PatientQuestionnaires,
    mine: QuestionnaireAssignment,
    form: dict[str, Any],
    address: str | None,
) -> Response:
    """Send one of the forms with their context (analgesic use, return to work or sport,
    PSFS): sent in one go (not saved as the patient goes); an answer refused comes back
    with the field named in plain words and nothing kept."""
    kind = home_form(mine.instrument_id)
    if not form.get("send"):
        return RedirectResponse(f"/q/{token}", status_code=303)
    drugs = {i: _one(form, f"drug-{i}") for i in range(1, MAX_DRUGS + 1) if _one(form, f"drug-{i}")}
    posted = {k: _one(form, k) for k in form if k not in ("assignment", "send")}
    uow = _uow(request)
    try:
        if kind == "analgesic_log":
            home_reports.report_analgesic_use(
                uow,
                token,
                ReportAnalgesicUse(
                    assignment_id=mine.id,
                    days={d: _one(form, f"days-{i}") or None for i, d in drugs.items()},
                    other_drug=_one(form, "other_drug") or None,
                    other_class=_one(form, "other_class") or None,
                    other_days=_one(form, "other_days") or None,
                    other_dose_mg=_one(form, "other_dose_mg") or None,
                ),
                address=address,
            )
        elif kind == "return_to_activity":
            home_reports.report_return_to_activity(
                uow,
                token,
                ReportReturnToActivity(
                    assignment_id=mine.id,
                    activity=_one(form, "activity") or None,
                    returned=_one(form, "returned") or None,
                    returned_on=_one(form, "returned_on") or None,
                ),
                address=address,
            )
        else:
            n = range(1, MAX_ACTIVITIES + 1)
            home_reports.report_psfs(
                uow,
                token,
                ReportPsfs(
                    assignment_id=mine.id,
                    ratings={f"item{i}": _one(form, f"item{i}") or None for i in n},
                    activities={f"activity{i}": _one(form, f"activity{i}") or None for i in n},
                ),
                address=address,
            )
    except LinkClosed as err:
        return _closed(request, token, err)
    except (InvalidInput, NotFound, ValidationError) as err:
        field = getattr(err, "field", None) or "form"
        detail = getattr(err, "detail", None) or "Please check your answers."
        by_drug = {d: f"days-{i}" for i, d in drugs.items()}
        key = (
            by_drug.get(field.removeprefix("days."), field) if field.startswith("days.") else field
        )
        key = key.removeprefix("answers.")
        words = detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
        again = questionnaires.open_questionnaires(_uow(request), token, address=address)
        return _questionnaire_page(
            request,
            token,
            again,
            values={mine.id: posted},
            errors={f"home.{key}": words},
            status=422,
        )
    except DomainError:
        return RedirectResponse(f"/q/{token}", status_code=303)
    # Sent, like a questionnaire: the sitting may read progress and consent after the
    # link ends by this last answer.
    return start_sitting(request, RedirectResponse(f"/q/{token}/thanks", status_code=303), token)


def _plain(field: str, detail: str, names: list[str], labels: list[str]) -> str:
    """An item's error in the patient's words, naming the question."""
    item = field.removeprefix("answers.")
    if item in names:
        label = labels[names.index(item)]
        if detail.startswith("please answer"):
            return f"Please answer this question ({label})."
        return f"This answer is not one of the choices for “{label}”: {detail}."
    return detail


@router.get("/q/{token}/thanks", response_model=None)
async def thanks(request: Request, token: str) -> Response:
    """After sending: what is left to answer, or thanks."""

    def work() -> Response:
        try:
            opened = questionnaires.open_questionnaires(
                _uow(request), token, address=_address(request)
            )
        except LinkClosed as err:
            if err.reason == "used" and _sitting_open(request, token):
                return _page(request, "patient_done.html", clinic_name=None, token=token)
            if err.reason == "used" and getattr(err.link, "kiosk", False):
                # The clinic's tablet: thanks, and nothing of the patient's to go on to.
                return _page(request, "patient_done.html", clinic_name=None, kiosk=True)
            return _closed(request, token, err)
        if not opened.due:
            return _page(request, "patient_done.html", clinic_name=opened.clinic_name)
        return _questionnaire_page(request, token, opened)

    return await in_thread(work)


@router.post("/q/{token}/new-link", response_model=None)
async def ask_new_link(request: Request, token: str) -> Response:
    """Ask for a new link (sent to the e-mail address the clinic has, at most once an
    hour); the answer is the same whether or not one was sent."""

    def work() -> Response:
        questionnaires.request_new_link(
            _uow(request), token, patient_links_base(request), address=_address(request)
        )
        return _page(request, "patient_new_link.html")

    await submitted_form(request)
    return await in_thread(work)


def _sitting_open(request: Request, token: str) -> bool:
    """A used link, opened in the sitting that used it (its cookie, and the action's own
    check of the time since it was used: an audited read of the patient's record)."""
    if not in_sitting(request, token):
        return False
    try:
        patient_record.open_own_record(
            _uow(request), token, address=_address(request), sitting=True
        )
    except LinkClosed:
        return False
    return True
