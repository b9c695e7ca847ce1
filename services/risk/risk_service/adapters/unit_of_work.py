"""The risk unit of work: the platform's (one transaction, outbox, idempotency keys) with the
risk repositories on its session."""

from __future__ import annotations

from ecomops_platform.db import UnitOfWork

from .queries import SqlKpiQueries, SqlModelActivationRepository
from .repositories import (
    SqlAssessmentRepository,
    SqlBlocklistRepository,
    SqlLabelRepository,
    SqlPaymentRepository,
    SqlReviewRepository,
    SqlRuleSetRepository,
    SqlVelocityRepository,
)


class SqlRiskUnitOfWork(UnitOfWork):
    @property
    def rule_sets(self) -> SqlRuleSetRepository:
        return SqlRuleSetRepository(self.session)

    @property
    def assessments(self) -> SqlAssessmentRepository:
        return SqlAssessmentRepository(self.session)

    @property
    def reviews(self) -> SqlReviewRepository:
        return SqlReviewRepository(self.session)

    @property
    def velocity(self) -> SqlVelocityRepository:
        return SqlVelocityRepository(self.session)

    @property
    def payments(self) -> SqlPaymentRepository:
        return SqlPaymentRepository(self.session)

    @property
    def blocklist(self) -> SqlBlocklistRepository:
        return SqlBlocklistRepository(self.session)

    @property
    def labels(self) -> SqlLabelRepository:
        return SqlLabelRepository(self.session)

    @property
    def model_activations(self) -> SqlModelActivationRepository:
        return SqlModelActivationRepository(self.session)

    @property
    def kpis(self) -> SqlKpiQueries:
        return SqlKpiQueries(self.session)
