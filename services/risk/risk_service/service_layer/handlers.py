"""Use cases of the risk service: one function each, inside one unit of work."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ecomops_platform.db import UnitOfWork, utcnow
from ecomops_platform.errors import Conflict, DependencyUnavailable, NotFound, Unprocessable
from ecomops_platform.pagination import check_limit, decode_cursor, encode_cursor

from ..adapters import events, repository
from ..adapters.model_store import (
    ModelHolder,
    ModelLoadError,
    list_manifests,
    load_artifact,
    model_fallback_total,
)
from ..domain.features import FEATURE_WINDOWS, order_features
from ..domain.models import (
    DEFAULT_RULE_SET,
    BlocklistKind,
    Decision,
    LabelSource,
    LabelValue,
    ModelOutput,
    OrderFacts,
    ReviewDecision,
    ReviewStatus,
    RuleSet,
    Signals,
    ensure_open,
    normalise_blocklist_value,
    parse_rule_set,
    score_order,
)

log = logging.getLogger("risk.handlers")

P = ParamSpec("P")
T = TypeVar("T")


def db_unavailable_is_503(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A database that cannot answer is a 503 (the caller may retry), never a silent approve."""

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (OperationalError, InterfaceError, ConnectionError, OSError) as exc:
            log.warning("database unavailable in %s: %s", fn.__name__, exc)
            raise DependencyUnavailable("the risk database is unavailable; retry") from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DependencyUnavailable("the risk database is unavailable; retry") from None
            raise

    return wrapper


@dataclass
class RiskContext:
    """What the handlers need beside a unit of work."""

    models: ModelHolder


def _fingerprint(order: OrderFacts) -> str:
    material = {
        "customer_id": order.customer_id,
        "amount_minor": order.amount_minor,
        "currency": order.currency,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def assessment_view(row: Any) -> dict[str, Any]:
    return {
        "assessment_id": row.assessment_id,
        "order_id": row.order_id,
        "customer_id": row.customer_id,
        "score": str(row.score),
        "decision": row.decision,
        "reasons": list(row.reasons),
        "rules_version": row.rules_version,
        "model_version": row.model_version,
        "amount_minor": row.amount_minor,
        "currency": row.currency,
        "review_id": row.review_id,
        "assessed_at": row.assessed_at,
    }


async def active_rules(uow: UnitOfWork) -> RuleSet:
    rules = await repository.get_rule_set(uow.session)
    if rules is None:
        await repository.ensure_rule_set(uow.session, DEFAULT_RULE_SET, utcnow())
        rules = await repository.get_rule_set(uow.session)
    assert rules is not None
    return rules


async def _predict(
    ctx: RiskContext, features: dict[str, float]
) -> tuple[ModelOutput | None, str | None]:
    model = ctx.models.current
    if model is None:
        return None, None
    try:
        return await asyncio.to_thread(model.predict, features), None
    except Exception as exc:  # noqa: BLE001 - fail closed below: review, never approve
        log.error("risk model %s failed at scoring: %s", model.manifest.version, exc)
        model_fallback_total.labels("predict_failed").inc()
        return None, f"model {model.manifest.version} failed at scoring time"


@db_unavailable_is_503
async def assess_order(
    uow: UnitOfWork, ctx: RiskContext, order: OrderFacts
) -> tuple[dict[str, Any], bool]:
    """Score an order once; the same order id again returns the stored assessment (created?)."""
    fingerprint = _fingerprint(order)
    async with uow:
        session = uow.session
        existing = await repository.assessment_by_order(session, order.order_id)
        if existing is not None:
            return _replay(existing, fingerprint), False
        rules = await active_rules(uow)
        now = utcnow()
        keys = order.dimensions()
        await repository.record_velocity(session, order.order_id, keys, now, lock=True)
        windows = rules.velocity_windows()
        for dim, pair in FEATURE_WINDOWS.items():
            windows.setdefault(dim, set()).update(pair)
        counts = await repository.velocity_counts(session, keys, windows, now)
        history = await repository.customer_history(
            session, order.customer_id, order.currency, order.order_id
        )
        hits = await repository.blocklisted(session, order.blocklist_keys())
        signals = Signals(velocity=counts, history=history, blocklisted=hits, now=now)
        features = order_features(order, signals)
        model_output, model_failed = await _predict(ctx, features)
        outcome = score_order(rules, order, signals, model_output, model_failed=model_failed)
        assessment_id = str(uuid.uuid4())
        review_id = str(uuid.uuid4()) if outcome.decision is Decision.REVIEW else None
        reasons = [r.to_json() for r in outcome.reasons]
        values = {
            "assessment_id": assessment_id,
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "amount_minor": order.amount_minor,
            "currency": order.currency,
            "score": outcome.score,
            "decision": outcome.decision.value,
            "final_decision": None if review_id else outcome.decision.value,
            "reasons": reasons,
            "rules_version": rules.version,
            "model_version": model_output.version if model_output else "",
            "features": features,
            "request_fingerprint": fingerprint,
            "review_id": review_id,
            "assessed_at": now,
        }
        if not await repository.insert_assessment(session, values):
            # A concurrent call assessed this order first: answer with its assessment.
            await uow.rollback()
            existing = await repository.assessment_by_order(session, order.order_id)
            assert existing is not None
            return _replay(existing, fingerprint), False
        if review_id is not None:
            await repository.insert_review(
                session,
                {
                    "review_id": review_id,
                    "assessment_id": assessment_id,
                    "order_id": order.order_id,
                    "customer_id": order.customer_id,
                    "status": ReviewStatus.OPEN.value,
                    "score": outcome.score,
                    "reasons": reasons,
                    "amount_minor": order.amount_minor,
                    "currency": order.currency,
                    "created_at": now,
                },
            )
        uow.add_event(events.risk_assessed(values, reasons), key=order.order_id, occurred_at=now)
        await uow.commit()
    view = dict(values)
    view["score"] = str(outcome.score)
    return {k: view[k] for k in _VIEW_KEYS}, True


_VIEW_KEYS = (
    "assessment_id",
    "order_id",
    "customer_id",
    "score",
    "decision",
    "reasons",
    "rules_version",
    "model_version",
    "amount_minor",
    "currency",
    "review_id",
    "assessed_at",
)


def _replay(row: Any, fingerprint: str) -> dict[str, Any]:
    if row.request_fingerprint != fingerprint:
        raise Conflict(
            f"order {row.order_id} was already assessed with another customer, amount or "
            "currency; a changed order needs a new order id",
            code="assessment-conflict",
            title="Order already assessed differently",
            assessment_id=row.assessment_id,
        )
    return assessment_view(row)


@db_unavailable_is_503
async def get_assessment(uow: UnitOfWork, assessment_id: str) -> dict[str, Any]:
    async with uow:
        row = await repository.assessment_by_id(uow.session, assessment_id)
    if row is None:
        raise NotFound(f"assessment {assessment_id} not found")
    return assessment_view(row)


# --- rules ------------------------------------------------------------------------------------


async def get_rules(uow: UnitOfWork, version: int | None = None) -> RuleSet:
    async with uow:
        if version is None:
            rules = await active_rules(uow)
            await uow.commit()
            return rules
        found = await repository.get_rule_set(uow.session, version)
    if found is None:
        raise NotFound(f"rule set version {version} not found")
    return found


async def put_rules(uow: UnitOfWork, definition: dict[str, Any], by: str) -> RuleSet:
    validated = parse_rule_set(definition, version=0, created_by=by)
    async with uow:
        now = utcnow()
        version = await repository.insert_rule_set(uow.session, validated.to_json(), by, now)
        await uow.commit()
    return parse_rule_set(validated.to_json(), version=version, created_by=by, created_at=now)


async def list_rule_versions(
    uow: UnitOfWork, limit: int | None, cursor: str | None
) -> tuple[list[RuleSet], str | None]:
    size = check_limit(limit)
    position = decode_cursor(cursor)
    before = int(position["v"]) if position and "v" in position else None
    async with uow:
        items = await repository.list_rule_sets(uow.session, before_version=before, limit=size + 1)
    more = len(items) > size
    items = items[:size]
    return items, encode_cursor({"v": items[-1].version}) if more and items else None


# --- blocklist --------------------------------------------------------------------------------


def _blocklist_value(kind: BlocklistKind, value: str) -> str:
    normalised = normalise_blocklist_value(kind, value)
    if not normalised or len(normalised) > 300:
        raise Unprocessable("blocklist value must be 1..300 characters", code="invalid-value")
    return normalised


async def put_blocklist(
    uow: UnitOfWork, kind: BlocklistKind, value: str, reason: str, by: str
) -> Any:
    normalised = _blocklist_value(kind, value)
    async with uow:
        row = await repository.put_blocklist(uow.session, kind, normalised, reason, by, utcnow())
        await uow.commit()
    return row


async def delete_blocklist(uow: UnitOfWork, kind: BlocklistKind, value: str) -> None:
    normalised = _blocklist_value(kind, value)
    async with uow:
        removed = await repository.delete_blocklist(uow.session, kind, normalised)
        await uow.commit()
    if not removed:
        raise NotFound(f"{kind.value} {normalised!r} is not blocklisted")


async def list_blocklist(
    uow: UnitOfWork, kind: BlocklistKind | None, limit: int | None, cursor: str | None
) -> tuple[list[Any], str | None]:
    size = check_limit(limit)
    position = decode_cursor(cursor)
    after = (str(position["k"]), str(position["v"])) if position else None
    async with uow:
        rows = await repository.list_blocklist(uow.session, kind, after, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    return rows, encode_cursor({"k": rows[-1].kind, "v": rows[-1].value}) if more else None


# --- reviews ----------------------------------------------------------------------------------


async def list_reviews(
    uow: UnitOfWork, status: ReviewStatus | None, limit: int | None, cursor: str | None
) -> tuple[list[Any], str | None]:
    size = check_limit(limit)
    position = decode_cursor(cursor)
    after = None
    if position:
        try:
            after = (datetime.fromisoformat(str(position["t"])), str(position["id"]))
        except (KeyError, ValueError):
            raise Unprocessable("cursor is not valid", code="invalid-cursor") from None
    async with uow:
        rows = await repository.list_reviews(
            uow.session, status.value if status else None, after, size + 1
        )
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = (
        encode_cursor({"t": rows[-1].created_at.isoformat(), "id": rows[-1].review_id})
        if more
        else None
    )
    return rows, next_cursor


async def get_review(uow: UnitOfWork, review_id: str) -> Any:
    async with uow:
        row = await repository.get_review(uow.session, review_id)
    if row is None:
        raise NotFound(f"review {review_id} not found")
    return row


async def decide_review(
    uow: UnitOfWork, review_id: str, decision: ReviewDecision, note: str, analyst: str
) -> Any:
    async with uow:
        now = utcnow()
        row = await repository.resolve_review(
            uow.session, review_id, decision.value, analyst, note, now
        )
        if row is None:
            current = await repository.get_review(uow.session, review_id)
            if current is None:
                raise NotFound(f"review {review_id} not found")
            ensure_open(
                ReviewStatus(current.status), current.decision, review_id, current.close_reason
            )
            raise AssertionError("unreachable: an open case is always resolved")
        await repository.set_final_decision(uow.session, row.assessment_id, decision.value)
        uow.add_event(events.review_resolved(row._mapping), key=row.order_id, occurred_at=now)
        await uow.commit()
    return row


# --- labels -----------------------------------------------------------------------------------


async def create_label(
    uow: UnitOfWork,
    order_id: str,
    label: LabelValue,
    source: LabelSource,
    amount_minor: int | None,
    by: str,
) -> dict[str, Any]:
    values = {
        "label_id": str(uuid.uuid4()),
        "order_id": order_id,
        "label": label.value,
        "source": source.value,
        "amount_minor": amount_minor,
        "created_by": by,
        "created_at": utcnow(),
    }
    async with uow:
        await repository.insert_label(uow.session, values)
        await uow.commit()
    return values


# --- models -----------------------------------------------------------------------------------


def model_views(ctx: RiskContext) -> list[dict[str, Any]]:
    active = ctx.models.current.manifest.version if ctx.models.current else None
    return [
        {
            "version": m.version,
            "algorithm": m.algorithm,
            "features": list(m.features),
            "metrics": dict(m.metrics),
            "sha256": m.sha256,
            "active": m.version == active,
            "created_at": m.created_at,
        }
        for m in list_manifests(ctx.models.model_dir)
    ]


async def activate_model(
    uow: UnitOfWork, ctx: RiskContext, version: str, by: str
) -> dict[str, Any]:
    try:
        loaded = await asyncio.to_thread(load_artifact, ctx.models.model_dir, version)
    except ModelLoadError as exc:
        if "no manifest" in str(exc) or "invalid model version" in str(exc):
            raise NotFound(str(exc)) from None
        raise Unprocessable(str(exc), code="model-invalid", title="Model refused") from None
    async with uow:
        await repository.activate_model(uow.session, version, loaded.manifest.sha256, by, utcnow())
        await uow.commit()
    await asyncio.to_thread(ctx.models.use, version)
    for view in model_views(ctx):
        if view["version"] == version:
            return view
    raise NotFound(f"model {version} not found")  # pragma: no cover - listed just above


async def refresh_model(uow: UnitOfWork, ctx: RiskContext) -> None:
    """Periodic, per replica: use the version activated last (any replica may have done it)."""
    async with uow:
        row = await repository.active_model(uow.session)
    wanted = row.version if row is not None else None
    if wanted != ctx.models.wanted:
        await asyncio.to_thread(ctx.models.use, wanted)


# --- KPIs -------------------------------------------------------------------------------------


def _rate(numerator: int, denominator: int) -> str | None:
    if denominator == 0:
        return None
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.000001")))


async def kpis(
    uow: UnitOfWork, from_time: datetime | None, to_time: datetime | None
) -> dict[str, Any]:
    end = to_time or utcnow()
    start = from_time or end - timedelta(days=30)
    if start >= end:
        raise Unprocessable("'from' must be before 'to'", code="invalid-period")
    async with uow:
        rows = await repository.kpi_rows(uow.session, start, end)
    total = sum(r.n for r in rows)
    by_decision = {d.value: sum(r.n for r in rows if r.decision == d.value) for d in Decision}
    labelled = sum(r.n for r in rows if r.label is not None)

    def precision(decision: str) -> str | None:
        with_label = sum(r.n for r in rows if r.decision == decision and r.label is not None)
        fraud = sum(r.n for r in rows if r.decision == decision and r.label == "fraud")
        return _rate(fraud, with_label)

    losses = []
    for currency in sorted({r.currency for r in rows}):
        approved = [r for r in rows if r.currency == currency and r.final == "approve"]
        gmv = sum(int(r.amount) for r in approved)
        fraud = sum(int(r.fraud) for r in approved)
        losses.append(
            {
                "currency": currency,
                "gmv_approved_minor": gmv,
                "fraud_loss_minor": fraud,
                "fraud_loss_rate": _rate(fraud, gmv) or "0",
            }
        )
    return {
        "from": start,
        "to": end,
        "assessments": total,
        "approval_rate": _rate(by_decision["approve"], total) or "0",
        "review_rate": _rate(by_decision["review"], total) or "0",
        "reject_rate": _rate(by_decision["reject"], total) or "0",
        "reject_precision": precision("reject"),
        "review_precision": precision("review"),
        "fraud_loss": losses,
        "labelled": labelled,
    }


# --- order events -----------------------------------------------------------------------------


async def record_order_activity(
    uow: UnitOfWork, order_id: str, keys: dict[Any, str], at: datetime
) -> None:
    """Velocity from order events (already inside the consumer's unit of work)."""
    await repository.record_velocity(uow.session, order_id, keys, at, lock=False)


async def record_paid_order(uow: UnitOfWork, values: dict[str, Any]) -> None:
    await repository.record_payment(uow.session, **values)


async def record_cancelled_order(
    uow: UnitOfWork, order_id: str, was_paid: bool, reason: str = ""
) -> None:
    """OrderCancelled: a refunded payment leaves the amount history, and a review case still
    open for the order (cancelled or expired while in review) is closed with the order's reason
    and leaves the queue. Idempotent: only open cases are closed."""
    if was_paid:
        await repository.mark_refunded(uow.session, order_id)
    closed = await repository.close_reviews_of_order(
        uow.session, order_id, (reason or "cancelled")[:200], utcnow()
    )
    for row in closed:
        log.info("review %s closed: order %s cancelled (%s)", row.review_id, order_id, reason)


async def prune(uow: UnitOfWork, retention_seconds: int) -> int:
    async with uow:
        removed = await repository.prune_velocity(
            uow.session, utcnow() - timedelta(seconds=retention_seconds)
        )
        await uow.commit()
    return removed
