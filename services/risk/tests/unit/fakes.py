"""In-memory risk repositories and model store behind the service layer's ports, for handler
tests without PostgreSQL: ``FakeRiskUnitOfWork`` and ``FakeModelStore``, and ``bus()``."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ecomops_platform.bus import MessageBus, handlers_in
from ecomops_platform.errors import NotFound, Unprocessable
from ecomops_testing.fakes import FakeUnitOfWork
from risk_service.domain.models import BlocklistKind, CustomerHistory, Dimension
from risk_service.domain.rules import RuleSet, parse_rule_set
from risk_service.domain.scoring import ModelManifest, ModelOutput
from risk_service.service_layer import (
    assessments,
    blocklist,
    kpis,
    model_versions,
    order_activity,
    reviews,
    rules,
)
from risk_service.service_layer.ports import AssessmentRecord, Deps, KpiRow, PaidOrder
from risk_service.service_layer.views import BlocklistEntryView, LabelView, ReviewView

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeRuleSets:
    def __init__(self) -> None:
        self.rows: dict[int, tuple[dict[str, Any], str, datetime]] = {}

    def _rule_set(self, version: int) -> RuleSet:
        definition, by, at = self.rows[version]
        return parse_rule_set(definition, version=version, created_by=by, created_at=at)

    async def get(self, version: int | None = None) -> RuleSet | None:
        if version is None:
            version = max(self.rows, default=None)
        return None if version not in self.rows else self._rule_set(version)

    async def list(self, *, before_version: int | None, limit: int) -> list[RuleSet]:
        versions = sorted(
            (v for v in self.rows if before_version is None or v < before_version), reverse=True
        )
        return [self._rule_set(v) for v in versions[:limit]]

    async def add(self, definition: Mapping[str, Any], created_by: str, now: datetime) -> int:
        version = max(self.rows, default=0) + 1
        self.rows[version] = (copy.deepcopy(dict(definition)), created_by, now)
        return version

    async def ensure_default(self, definition: Mapping[str, Any], now: datetime) -> None:
        self.rows.setdefault(1, (copy.deepcopy(dict(definition)), "system", now))


class FakeAssessments:
    def __init__(self) -> None:
        self.rows: dict[str, AssessmentRecord] = {}

    async def by_order(self, order_id: str) -> AssessmentRecord | None:
        return next((r for r in self.rows.values() if r.order_id == order_id), None)

    async def get(self, assessment_id: str) -> AssessmentRecord | None:
        return self.rows.get(assessment_id)

    async def add(self, record: AssessmentRecord) -> bool:
        if await self.by_order(record.order_id) is not None:
            return False
        self.rows[record.assessment_id] = record
        return True

    async def set_final_decision(self, assessment_id: str, decision: str) -> None:
        row = self.rows[assessment_id]
        self.rows[assessment_id] = dataclasses.replace(row, final_decision=decision)


class FakeReviews:
    def __init__(self) -> None:
        self.rows: dict[str, ReviewView] = {}

    async def add(self, review: ReviewView) -> None:
        assert review.review_id not in self.rows
        self.rows[review.review_id] = review

    async def get(self, review_id: str) -> ReviewView | None:
        return self.rows.get(review_id)

    async def resolve(
        self, review_id: str, decision: str, analyst: str, note: str, now: datetime
    ) -> ReviewView | None:
        row = self.rows.get(review_id)
        if row is None or row.status != "open":
            return None
        row = dataclasses.replace(
            row, status="resolved", decision=decision, analyst=analyst, note=note, resolved_at=now
        )
        self.rows[review_id] = row
        return row

    async def close_for_order(self, order_id: str, reason: str, now: datetime) -> list[ReviewView]:
        closed = []
        for review_id, row in list(self.rows.items()):
            if row.order_id == order_id and row.status == "open":
                row = dataclasses.replace(
                    row, status="closed", close_reason=reason, resolved_at=now
                )
                self.rows[review_id] = row
                closed.append(row)
        return closed

    async def list(
        self, status: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[ReviewView]:
        rows = sorted(self.rows.values(), key=lambda r: (r.created_at, r.review_id))
        rows = [r for r in rows if status is None or r.status == status]
        if after is not None:
            rows = [r for r in rows if (r.created_at, r.review_id) > after]
        return rows[:limit]


class FakeVelocity:
    def __init__(self) -> None:
        #: (dimension, value, order id) -> time
        self.rows: dict[tuple[Dimension, str, str], datetime] = {}
        self.locked: list[list[str]] = []

    async def record(
        self, order_id: str, keys: Mapping[Dimension, str], at: datetime, *, lock: bool
    ) -> None:
        if lock:
            self.locked.append(sorted(f"{d.value}:{v}" for d, v in keys.items()))
        for dim, value in keys.items():
            self.rows.setdefault((dim, value, order_id), at)

    async def counts(
        self,
        keys: Mapping[Dimension, str],
        windows: Mapping[Dimension, Iterable[int]],
        now: datetime,
    ) -> dict[tuple[Dimension, int], int]:
        out = {}
        for dim, value in keys.items():
            for window in set(windows.get(dim, ())):
                since = now - timedelta(seconds=window)
                out[(dim, window)] = sum(
                    1
                    for (d, v, _), at in self.rows.items()
                    if d == dim and v == value and at > since
                )
        return out

    async def prune(self, before: datetime) -> int:
        old = [key for key, at in self.rows.items() if at < before]
        for key in old:
            del self.rows[key]
        return len(old)


class FakePayments:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[PaidOrder, bool]] = {}

    async def history(self, customer_id: str, currency: str, exclude_order: str) -> CustomerHistory:
        amounts = [
            p.amount_minor
            for p, refunded in self.rows.values()
            if p.customer_id == customer_id
            and p.currency == currency
            and not refunded
            and p.order_id != exclude_order
        ]
        if not amounts:
            return CustomerHistory()
        return CustomerHistory(len(amounts), Decimal(sum(amounts)) / len(amounts), max(amounts))

    async def record(self, payment: PaidOrder) -> None:
        self.rows.setdefault(payment.order_id, (payment, False))

    async def mark_refunded(self, order_id: str) -> None:
        if order_id in self.rows:
            self.rows[order_id] = (self.rows[order_id][0], True)


class FakeBlocklist:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], BlocklistEntryView] = {}

    async def hits(self, keys: Mapping[BlocklistKind, str]) -> frozenset[BlocklistKind]:
        return frozenset(k for k, v in keys.items() if (k.value, v) in self.rows)

    async def put(
        self, kind: BlocklistKind, value: str, reason: str, by: str, now: datetime
    ) -> BlocklistEntryView:
        old = self.rows.get((kind.value, value))
        entry = (
            dataclasses.replace(old, reason=reason)
            if old
            else BlocklistEntryView(kind.value, value, reason, by, now)
        )
        self.rows[(kind.value, value)] = entry
        return entry

    async def delete(self, kind: BlocklistKind, value: str) -> bool:
        return self.rows.pop((kind.value, value), None) is not None

    async def list(
        self, kind: BlocklistKind | None, after: tuple[str, str] | None, limit: int
    ) -> list[BlocklistEntryView]:
        keys = sorted(k for k in self.rows if kind is None or k[0] == kind.value)
        if after is not None:
            keys = [k for k in keys if k > after]
        return [self.rows[k] for k in keys[:limit]]


class FakeLabels:
    def __init__(self) -> None:
        self.rows: list[LabelView] = []

    async def add(self, label: LabelView) -> None:
        self.rows.append(label)


class FakeModelActivations:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, datetime]] = []

    async def active(self) -> str | None:
        return self.rows[-1][0] if self.rows else None

    async def activate(self, version: str, sha256: str, by: str, now: datetime) -> None:
        self.rows.append((version, sha256, by, now))


class FakeKpis:
    """The KPI grouping of the SQL query, over the fake assessments and labels."""

    def __init__(self, uow: FakeRiskUnitOfWork) -> None:
        self.uow = uow

    async def rows(self, from_time: datetime, to_time: datetime) -> list[KpiRow]:
        groups: dict[tuple[str, str, str | None, str | None], list[int]] = {}
        for a in self.uow.assessments.rows.values():
            if not from_time <= a.assessed_at < to_time:
                continue
            labels = sorted(
                (x for x in self.uow.labels.rows if x.order_id == a.order_id),
                key=lambda x: (x.source == "chargeback", x.created_at),
            )
            label = labels[-1] if labels else None
            final = a.final_decision or ("approve" if a.decision == "approve" else None)
            key = (a.currency, a.decision, final, label.label if label else None)
            fraud = 0
            if label is not None and label.label == "fraud":
                fraud = label.amount_minor if label.amount_minor is not None else a.amount_minor
            n, amount, loss = groups.get(key, [0, 0, 0])
            groups[key] = [n + 1, amount + a.amount_minor, loss + fraud]
        return [
            KpiRow(currency, decision, final, label, n, amount, fraud)
            for (currency, decision, final, label), (n, amount, fraud) in groups.items()
        ]


class FakeRiskUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        self.rule_sets = FakeRuleSets()
        self.assessments = FakeAssessments()
        self.reviews = FakeReviews()
        self.velocity = FakeVelocity()
        self.payments = FakePayments()
        self.blocklist = FakeBlocklist()
        self.labels = FakeLabels()
        self.model_activations = FakeModelActivations()
        self.kpis = FakeKpis(self)
        super().__init__()

    _STATE = (
        "rule_sets",
        "assessments",
        "reviews",
        "velocity",
        "payments",
        "blocklist",
        "labels",
        "model_activations",
    )

    def snapshot(self) -> Any:
        return (
            super().snapshot(),
            {name: copy.deepcopy(getattr(self, name).rows) for name in self._STATE},
        )

    def restore(self, state: Any) -> None:
        base, rows = state
        super().restore(base)
        for name, value in rows.items():
            getattr(self, name).rows = value


class FakeModel:
    def __init__(self, manifest: ModelManifest, probability: Decimal | None) -> None:
        self.manifest = manifest
        #: None: the model raises at scoring time.
        self.probability = probability


class FakeModelStore:
    """Versions in a dict; ``refused`` versions fail verification like a tampered artifact."""

    def __init__(self) -> None:
        self.versions: dict[str, FakeModel] = {}
        self.refused: set[str] = set()
        self.current: FakeModel | None = None
        self.wanted: str | None = None
        self.last_error: str | None = None
        self.loads: list[str | None] = []

    def add(self, version: str, probability: Decimal | None = Decimal("0.5")) -> ModelManifest:
        manifest = ModelManifest(
            version=version,
            algorithm="Fake",
            features=("log_amount",),
            metrics={"roc_auc": "0.900000"},
            sha256="0" * 64,
            created_at=NOW,
        )
        self.versions[version] = FakeModel(manifest, probability)
        return manifest

    @property
    def active_version(self) -> str | None:
        return None if self.current is None else self.current.manifest.version

    def predict(self, features: Mapping[str, float]) -> tuple[ModelOutput | None, str | None]:
        if self.current is None:
            return None, None
        if self.current.probability is None:
            return None, f"model {self.current.manifest.version} failed at scoring time"
        return ModelOutput(self.current.manifest.version, self.current.probability), None

    def use(self, version: str | None) -> None:
        self.loads.append(version)
        self.wanted = version
        model = self.versions.get(version) if version else None
        if version is not None and (model is None or version in self.refused):
            self.current, self.last_error = None, f"model {version} cannot be loaded"
            return
        self.current, self.last_error = model, None

    def verify(self, version: str) -> ModelManifest:
        if version not in self.versions:
            raise NotFound(f"model {version}: no manifest")
        if version in self.refused:
            raise Unprocessable(f"model {version}: sha256 mismatch", code="model-invalid")
        return self.versions[version].manifest

    def manifests(self) -> list[ModelManifest]:
        return [m.manifest for m in self.versions.values()]


def bus(
    uow: FakeRiskUnitOfWork, models: FakeModelStore | None = None, clock: Clock | None = None
) -> MessageBus[FakeRiskUnitOfWork, Deps]:
    deps = Deps(models=models or FakeModelStore(), clock=clock or Clock())
    return MessageBus(
        service="risk",
        uow=lambda: uow,
        deps=deps,
        handlers=handlers_in(
            assessments, rules, blocklist, reviews, model_versions, kpis, order_activity
        ),
    )
