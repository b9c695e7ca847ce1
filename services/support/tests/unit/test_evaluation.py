"""The offline evaluation: figures, threshold, CSV errors with their line, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from support_service.cli import main
from support_service.domain.knowledge import CONFIDENCE_MODEL, Article, KnowledgeIndex
from support_service.knowledge_base import data_path, load_starter_articles
from support_service.service_layer.evaluation import (
    EvaluationError,
    evaluate,
    fit_confidence,
    format_report,
    load_questions,
)

ARTICLES = [
    Article("refund", "When will I get my refund?", "Refunds take 5 days to your card.", "return",
            "en", ("refund", "money back")),
    Article("password", "Forgot password", "Reset your password from the sign-in page.",
            "account", "en", ("reset password", "cannot log in")),
    Article("refund-zh", "退款多久到账", "退款会在5天内退回银行卡。", "return", "zh", ("退款",)),
]  # fmt: skip


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "questions.csv"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """question,expected_article_id,language
when do i get my refund,refund,en
i forgot my password,password,en
"is there a refund, please",refund,en
退款什么时候到,refund-zh,zh
do you sell umbrellas,,en
"""


def test_figures_per_language_and_overall(tmp_path: Path) -> None:
    report = evaluate(write(tmp_path, GOOD), ARTICLES, threshold=0.0)
    assert report.overall.questions == 5
    assert report.overall.answerable == 4
    assert report.overall.top1_accuracy == 1.0
    assert report.overall.top3_accuracy == 1.0
    # At threshold 0 every question with a hit is answered; "umbrellas" has none.
    assert report.overall.auto_answer_rate == 1.0
    assert report.overall.precision == 1.0
    assert report.overall.unanswerable_answered == 0.0
    assert report.by_language["zh"].questions == 1
    assert report.by_language["en"].questions == 4
    assert math.isnan(report.by_language["zh"].unanswerable_answered)
    text = format_report(report)
    assert "top-1" in text and "zh" in text


def test_threshold_decides_what_is_answered(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    none = evaluate(path, ARTICLES, threshold=1.0)
    assert none.overall.auto_answered == 0
    assert math.isnan(none.overall.precision)
    index = KnowledgeIndex.build(ARTICLES)
    confidences = sorted(o.confidence for o in evaluate(path, ARTICLES, 0.0, index).outcomes)
    middle = confidences[len(confidences) // 2]
    some = evaluate(path, ARTICLES, threshold=middle, index=index)
    assert all(o.auto_answered == (o.confidence >= middle and bool(o.top)) for o in some.outcomes)
    assert 0 < some.overall.auto_answered < 5
    with pytest.raises(EvaluationError, match="between 0 and 1"):
        evaluate(path, ARTICLES, threshold=1.5)


def test_an_unanswerable_question_answered_is_a_wrong_answer(tmp_path: Path) -> None:
    path = write(tmp_path, "question,expected_article_id,language\nrefund please,,en\n")
    report = evaluate(path, ARTICLES, threshold=0.0)
    assert report.overall.auto_answered == 1
    assert report.overall.precision == 0.0
    assert report.overall.unanswerable_answered == 1.0
    assert math.isnan(report.overall.top1_accuracy)


H = "question,expected_article_id,language\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("q,id,lang\nrefund,refund,en\n", r":1: the header must be"),
        ("", r":1: the header must be .* an empty file"),
        (H + "refund,refund,en\nrefund,refund\n", r":3: expected 3 fields"),
        (H + "refund, money back,refund,en\n", r":2: expected 3 fields"),
        (H + "refund,refund,en\n\nrefund,refund,fr\n", r":4: language 'fr'"),
        (H + "refund,nope,en\n", r":2: no article has the id 'nope'"),
        (H + "  ,refund,en\n", r":2: the question is empty"),
        (H + "", r"no questions"),
        (H + '"refund,refund,en\n', r"questions.csv:\d+: "),
    ],
)  # fmt: skip
def test_bad_rows_name_their_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        load_questions(write(tmp_path, text), [a.article_id for a in ARTICLES])


def test_missing_and_non_utf8_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="cannot read"):
        load_questions(tmp_path / "nope.csv", [])
    path = tmp_path / "latin1.csv"
    path.write_bytes("question,expected_article_id,language\ncaf\xe9,,en\n".encode("latin-1"))
    with pytest.raises(EvaluationError, match="not UTF-8"):
        load_questions(path, [])


def test_shipped_question_sets_load() -> None:
    ids = [a.article_id for a in load_starter_articles()]
    assert len(load_questions(data_path("questions_dev.csv"), ids)) >= 150
    assert len(load_questions(data_path("questions_calibration.csv"), ids)) >= 100
    assert len(load_questions(data_path("questions_heldout.csv"), ids)) >= 100


def test_committed_confidence_model_is_the_fit_on_the_calibration_set() -> None:
    fitted = fit_confidence(data_path("questions_calibration.csv"), load_starter_articles())
    assert fitted.intercept == pytest.approx(CONFIDENCE_MODEL.intercept, abs=0.002)
    assert fitted.coverage == pytest.approx(CONFIDENCE_MODEL.coverage, abs=0.002)
    assert fitted.sqrt_margin == pytest.approx(CONFIDENCE_MODEL.sqrt_margin, abs=0.002)
    assert fitted.single_match == pytest.approx(CONFIDENCE_MODEL.single_match, abs=0.002)


def test_cli_evaluate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = data_path("questions_dev.csv")
    monkeypatch.setenv("SUPPORT_AUTO_ANSWER_CONFIDENCE", "0.5")
    assert main(["evaluate", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "threshold (confidence) 0.50" in out and "top-1" in out
    assert main(["evaluate", "--csv", str(path), "--threshold", "0.9", "--show-errors"]) == 0
    out = capsys.readouterr().out
    assert "threshold (confidence) 0.90" in out and "line " in out

    bad = write(tmp_path, "question,expected_article_id,language\nrefund,nope,en\n")
    assert main(["evaluate", "--csv", str(bad)]) == 2
    assert "questions.csv:2: no article has the id 'nope'" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--csv", str(path), "--threshold", "2"])
    assert exit_info.value.code == 2
    monkeypatch.setenv("SUPPORT_AUTO_ANSWER_CONFIDENCE", "high")
    with pytest.raises(SystemExit, match="not a number"):
        main(["evaluate", "--csv", str(path)])
