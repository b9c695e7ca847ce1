"""Offline evaluation of the knowledge base's automatic answers on a labelled question set.

The CSV has the header ``question,expected_article_id,language`` (an empty expected id means no
article should answer). For each question the index is searched as a new ticket would be (with
the row's language), and the first hit is an automatic answer when its confidence reaches the
threshold.

Figures, overall and per language:

* top-1 / top-3 accuracy: among the questions that have an expected article, the share whose
  article is the first hit / among the first three;
* auto-answer rate: among the questions that have an expected article, the share answered
  automatically (right or wrong) — the brief's "common questions answered automatically";
* correct auto-answer rate: the same, counting only the right article;
* precision: among all automatic answers (questions without an article included), the share
  with the right article; a question without an article that is answered is a wrong answer;
* unanswerable answered: the share of the questions without an article that were answered.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..domain.knowledge import (
    LANGUAGES,
    Article,
    ConfidenceModel,
    KnowledgeIndex,
)

HEADER = ("question", "expected_article_id", "language")


class EvaluationError(ValueError):
    """The question set cannot be evaluated (missing file, bad header or row)."""


@dataclass(frozen=True, slots=True)
class LabelledQuestion:
    line: int
    question: str
    expected_article_id: str | None
    language: str


@dataclass(frozen=True, slots=True)
class Outcome:
    question: LabelledQuestion
    top: tuple[str, ...]  # article ids, best first (at most three)
    confidence: float  # of the first hit; 0 without any hit
    auto_answered: bool

    @property
    def correct_top1(self) -> bool:
        expected = self.question.expected_article_id
        return expected is not None and bool(self.top) and self.top[0] == expected


@dataclass(frozen=True, slots=True)
class Figures:
    questions: int
    answerable: int
    top1_accuracy: float
    top3_accuracy: float
    auto_answered: int
    auto_answer_rate: float
    correct_auto_answer_rate: float
    precision: float  # nan when nothing was answered
    unanswerable_answered: float  # nan when every question has an article


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    threshold: float
    overall: Figures
    by_language: dict[str, Figures]
    outcomes: tuple[Outcome, ...]


def load_questions(csv_path: str | Path, article_ids: Iterable[str]) -> list[LabelledQuestion]:
    """The labelled questions; any bad row raises :class:`EvaluationError` naming its line."""
    known = set(article_ids)
    path = Path(csv_path)
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read ({exc.strerror})") from None
    questions: list[LabelledQuestion] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HEADER:
                raise EvaluationError(
                    f"{path}:1: the header must be {','.join(HEADER)}, got "
                    f"{','.join(header) if header else 'an empty file'}"
                )
            for row in reader:
                line = reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                questions.append(_parse_row(path, line, row, known))
        except UnicodeDecodeError:
            raise EvaluationError(f"{path}: not UTF-8 text") from None
        except csv.Error as exc:
            raise EvaluationError(f"{path}:{reader.line_num}: {exc}") from None
    if not questions:
        raise EvaluationError(f"{path}: no questions")
    return questions


def _parse_row(path: Path, line: int, row: list[str], known: set[str]) -> LabelledQuestion:
    if len(row) != len(HEADER):
        raise EvaluationError(
            f"{path}:{line}: expected {len(HEADER)} fields ({','.join(HEADER)}), got {len(row)}"
            " (quote a question that contains a comma)"
        )
    question, expected, language = (cell.strip() for cell in row)
    if not question:
        raise EvaluationError(f"{path}:{line}: the question is empty")
    if language not in LANGUAGES:
        raise EvaluationError(
            f"{path}:{line}: language {language!r} is not one of {', '.join(LANGUAGES)}"
        )
    if expected and expected not in known:
        raise EvaluationError(f"{path}:{line}: no article has the id {expected!r}")
    return LabelledQuestion(line, question, expected or None, language)


def run(
    questions: Sequence[LabelledQuestion], index: KnowledgeIndex, threshold: float
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for q in questions:
        hits = index.search(q.question, q.language, k=3)
        confidence = hits[0].score if hits else 0.0
        outcomes.append(
            Outcome(
                question=q,
                top=tuple(h.article_id for h in hits),
                confidence=confidence,
                auto_answered=bool(hits) and confidence >= threshold,
            )
        )
    return outcomes


def figures(outcomes: Sequence[Outcome]) -> Figures:
    answerable = [o for o in outcomes if o.question.expected_article_id is not None]
    unanswerable = [o for o in outcomes if o.question.expected_article_id is None]
    answered = [o for o in outcomes if o.auto_answered]
    return Figures(
        questions=len(outcomes),
        answerable=len(answerable),
        top1_accuracy=_share(o.correct_top1 for o in answerable),
        top3_accuracy=_share(o.question.expected_article_id in o.top for o in answerable),
        auto_answered=len(answered),
        auto_answer_rate=_share(o.auto_answered for o in answerable),
        correct_auto_answer_rate=_share(o.auto_answered and o.correct_top1 for o in answerable),
        precision=_share(o.correct_top1 for o in answered),
        unanswerable_answered=_share(o.auto_answered for o in unanswerable),
    )


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else math.nan


def evaluate(
    csv_path: str | Path,
    articles: Sequence[Article],
    threshold: float,
    index: KnowledgeIndex | None = None,
) -> EvaluationReport:
    """Search every question of ``csv_path`` and measure the answers at ``threshold``."""
    if not 0.0 <= threshold <= 1.0:
        raise EvaluationError(f"the threshold must be between 0 and 1, got {threshold}")
    questions = load_questions(csv_path, (a.article_id for a in articles))
    index = index if index is not None else KnowledgeIndex.build(articles)
    outcomes = run(questions, index, threshold)
    by_language = {
        language: figures([o for o in outcomes if o.question.language == language])
        for language in LANGUAGES
        if any(o.question.language == language for o in outcomes)
    }
    return EvaluationReport(threshold, figures(outcomes), by_language, tuple(outcomes))


def format_report(report: EvaluationReport) -> str:
    rows = [("all", report.overall), *report.by_language.items()]
    lines = [
        f"threshold (confidence) {report.threshold:.2f}",
        f"{'':6}{'questions':>10}{'with art.':>10}{'top-1':>8}{'top-3':>8}{'auto':>8}"
        f"{'auto ok':>9}{'precis.':>9}{'no-art. answered':>18}",
    ]
    for name, f in rows:
        lines.append(
            f"{name:6}{f.questions:>10}{f.answerable:>10}{_pct(f.top1_accuracy):>8}"
            f"{_pct(f.top3_accuracy):>8}{_pct(f.auto_answer_rate):>8}"
            f"{_pct(f.correct_auto_answer_rate):>9}{_pct(f.precision):>9}"
            f"{_pct(f.unanswerable_answered):>18}"
        )
    lines.append(
        "top-1/top-3/auto/auto ok: shares of the questions that have an article; precision: "
        "share of the automatic answers that are right; no-art. answered: share of the "
        "questions without an article that were answered anyway."
    )
    return "\n".join(lines)


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


# ---- calibration ---------------------------------------------------------------------------


def fit_confidence(
    csv_path: str | Path, articles: Sequence[Article], l2: float = 0.1
) -> ConfidenceModel:
    """Fit :class:`ConfidenceModel` by L2-regularised logistic regression (Newton's method).

    One example per question that has any hit: the features of its first hit, the target
    whether that hit is the expected article (a question without one is a negative). Use the
    development set only; the figures reported come from a set this never saw.
    """
    questions = load_questions(csv_path, (a.article_id for a in articles))
    index = KnowledgeIndex.build(articles)
    features: list[tuple[float, float, float]] = []
    targets: list[float] = []
    for q in questions:
        hits = index.explain(q.question, q.language, k=1)
        if not hits:
            continue
        margin = hits[0].margin
        features.append(
            (
                hits[0].coverage,
                math.copysign(math.sqrt(abs(margin)), margin),
                1.0 if hits[0].single else 0.0,
            )
        )
        targets.append(1.0 if hits[0].article_id == q.expected_article_id else 0.0)
    if len(set(targets)) < 2:
        raise EvaluationError(f"{csv_path}: need both right and wrong first hits to calibrate")
    x = np.column_stack([np.ones(len(features)), np.asarray(features)])
    y = np.asarray(targets)
    penalty = np.diag([0.0, l2, l2, l2])  # the intercept is not penalised
    w = np.zeros(4)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x.T * (p * (1.0 - p))) @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return ConfidenceModel(
        intercept=round(float(w[0]), 3),
        coverage=round(float(w[1]), 3),
        sqrt_margin=round(float(w[2]), 3),
        single_match=round(float(w[3]), 3),
    )
