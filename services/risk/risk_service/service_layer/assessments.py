"""Assessments: score an order once (rules + model), read an assessment."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar

from ecomops_platform.auth import Role
from ecomops_platform.bus import Command, Query, handler
from ecomops_platform.errors import (
    Conflict,
    DependencyUnavailable,
    NotFound,
    ServiceError,
    Unprocessable,
    is_transient,
)

from ..domain.features import FEATURE_WINDOWS, order_features
from ..domain.models import Decision, OrderFacts, ReviewStatus, Signals
from ..domain.scoring import score_order
from . import events
from .ports import AssessmentRecord, Ctx
from .rules import active_rules
from .views import Assessed, AssessmentList, AssessmentView, ReasonView, ReviewView

log = logging.getLogger("risk.handlers")

P = ParamSpec("P")
T = TypeVar("T")

SCORERS = (Role.SERVICE, Role.OPS)


def database_unavailable_is_503(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A database that cannot answer is a 503 (the caller may retry), never a silent approve."""

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except ServiceError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("database unavailable in %s: %s", fn.__name__, exc)
            raise DependencyUnavailable("the risk database is unavailable; retry") from None

    return wrapper


@dataclass(frozen=True, slots=True, kw_only=True)
class AssessOrder(Command[Assessed], roles=SCORERS):
    """Score an order; the same order id again gets the stored assessment (idempotent by
    order id, no Idempotency-Key), a changed order under the same id 409."""

    order: OrderFacts


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAssessment(Query[AssessmentView], roles=SCORERS):
    assessment_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FindAssessments(Query[AssessmentList], roles=SCORERS):
    """The assessment of an order, with its reasons (ops: why was this order held?)."""

    order_id: str


def _fingerprint(order: OrderFacts) -> str:
    material = {
        "customer_id": order.customer_id,
        "amount_minor": order.amount_minor,
        "currency": order.currency,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def assessment_view(record: AssessmentRecord) -> AssessmentView:
    return AssessmentView(
        assessment_id=record.assessment_id,
        order_id=record.order_id,
        customer_id=record.customer_id,
        score=str(record.score),
        decision=record.decision,
        reasons=record.reasons,
        rules_version=record.rules_version,
        model_version=record.model_version,
        amount_minor=record.amount_minor,
        currency=record.currency,
        review_id=record.review_id,
        assessed_at=record.assessed_at,
    )


def _replay(record: AssessmentRecord, fingerprint: str) -> Assessed:
    if record.request_fingerprint != fingerprint:
        raise Conflict(
            f"order {record.order_id} was already assessed with another customer, amount or "
            "currency; a changed order needs a new order id",
            code="assessment-conflict",
            title="Order already assessed differently",
            assessment_id=record.assessment_id,
        )
    return Assessed(assessment_view(record), created=False)


@handler
@database_unavailable_is_503
async def assess_order(cmd: AssessOrder, ctx: Ctx) -> Assessed:
    order = cmd.order
    fingerprint = _fingerprint(order)
    uow = ctx.uow
    async with uow:
        existing = await uow.assessments.by_order(order.order_id)
        if existing is not None:
            return _replay(existing, fingerprint)
        rules = await active_rules(ctx)
        now = ctx.deps.clock()
        keys = order.dimensions()
        await uow.velocity.record(order.order_id, keys, now, lock=True)
        windows = rules.velocity_windows()
        for dim, pair in FEATURE_WINDOWS.items():
            windows.setdefault(dim, set()).update(pair)
        counts = await uow.velocity.counts(keys, windows, now)
        history = await uow.payments.history(order.customer_id, order.currency, order.order_id)
        hits = await uow.blocklist.hits(order.blocklist_keys())
        signals = Signals(velocity=counts, history=history, blocklisted=hits, now=now)
        features = order_features(order, signals)
        model_output, model_failed = None, None
        if ctx.deps.models.active_version is not None:  # rules only: no thread hop
            model_output, model_failed = await asyncio.to_thread(ctx.deps.models.predict, features)
        outcome = score_order(rules, order, signals, model_output, model_failed=model_failed)
        review_id = str(uuid.uuid4()) if outcome.decision is Decision.REVIEW else None
        reasons = tuple(ReasonView.of(r) for r in outcome.reasons)
        record = AssessmentRecord(
            assessment_id=str(uuid.uuid4()),
            order_id=order.order_id,
            customer_id=order.customer_id,
            amount_minor=order.amount_minor,
            currency=order.currency,
            score=outcome.score,
            decision=outcome.decision.value,
            final_decision=None if review_id else outcome.decision.value,
            reasons=reasons,
            rules_version=rules.version,
            model_version=model_output.version if model_output else "",
            features=features,
            request_fingerprint=fingerprint,
            review_id=review_id,
            assessed_at=now,
        )
        if not await uow.assessments.add(record):
            # A concurrent call assessed this order first: answer with its assessment.
            await uow.rollback()
            existing = await uow.assessments.by_order(order.order_id)
            assert existing is not None
            return _replay(existing, fingerprint)
        if review_id is not None:
            await uow.reviews.add(
                ReviewView(
                    review_id=review_id,
                    assessment_id=record.assessment_id,
                    order_id=order.order_id,
                    customer_id=order.customer_id,
                    status=ReviewStatus.OPEN.value,
                    decision=None,
                    analyst=None,
                    note=None,
                    score=str(outcome.score),
                    reasons=reasons,
                    amount_minor=order.amount_minor,
                    currency=order.currency,
                    created_at=now,
                    resolved_at=None,
                )
            )
        view = assessment_view(record)
        uow.add_event(events.risk_assessed(view), key=order.order_id, occurred_at=now)
        await uow.commit()
    return Assessed(view, created=True)


@handler
@database_unavailable_is_503
async def get_assessment(query: GetAssessment, ctx: Ctx) -> AssessmentView:
    async with ctx.uow:
        record = await ctx.uow.assessments.get(query.assessment_id)
    if record is None:
        raise NotFound(f"assessment {query.assessment_id} not found")
    return assessment_view(record)


@handler
@database_unavailable_is_503
async def find_assessments(query: FindAssessments, ctx: Ctx) -> AssessmentList:
    order_id = query.order_id.strip()
    if not order_id or len(order_id) > 200:
        raise Unprocessable("order_id is required (1..200 characters)", code="validation-error")
    async with ctx.uow:
        record = await ctx.uow.assessments.by_order(order_id)
    return AssessmentList(items=() if record is None else (assessment_view(record),))
