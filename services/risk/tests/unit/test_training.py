from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from risk_service.adapters.model_store import (
    ModelHolder,
    ModelLoadError,
    load_artifact,
    save_artifact,
)
from risk_service.cli import main
from risk_service.domain.features import FEATURES
from risk_service.service_layer.training import TrainingError, train


def synthetic(path: Path, n: int = 2000, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logit = -5 + 2.5 * x[:, 0] + 1.5 * (x[:, 1] > 1)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "log_amount": x[:, 0],
            "line_count": x[:, 1],
            "total_quantity": x[:, 2],
            "ts": rng.permutation(n),
            "is_fraud": y.astype(int),
            "note": "x",
        }
    )
    frame.to_csv(path, index=False)


def test_train_holds_out_the_last_20_percent_in_time_and_beats_the_baseline(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    synthetic(csv)
    result = train(csv, "is_fraud", "ts", max_iter=30, strategy="class_weight")
    assert result.test_rows == 400 and result.train_rows == 1600
    frame = pd.read_csv(csv)
    assert (
        frame["ts"].iloc[result.test_index].min()
        >= frame["ts"].iloc[~frame.index.isin(result.test_index)].max()
    )
    assert result.features == ["log_amount", "line_count", "total_quantity"]
    assert result.baseline.roc_auc == pytest.approx(0.5)
    assert result.model.roc_auc > 0.8


def test_cli_writes_scores_and_a_loadable_verified_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "t.csv"
    synthetic(csv)
    out, scores = tmp_path / "models", tmp_path / "scores.csv"
    code = main(
        [
            "train",
            "--csv",
            str(csv),
            "--label",
            "is_fraud",
            "--time-column",
            "ts",
            "--output",
            str(out),
            "--scores",
            str(scores),
            "--max-iter",
            "30",
            "--imbalance",
            "class_weight",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "ROC-AUC" in printed and "baseline" in printed
    assert "review thresholds" in printed and "reliability (sigmoid)" in printed
    table = pd.read_csv(scores)
    assert list(table.columns) == ["row", "label", "score"]
    assert len(table) == 400 and set(table["label"]) == {0, 1}
    version = next(out.iterdir()).name
    loaded = load_artifact(out, version)
    p = loaded.predict(dict.fromkeys(FEATURES, 0.0))
    assert 0 <= p.probability <= 1


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2, 3, 4, 5], "y": ["maybe"] * 5}).to_csv(csv, index=False)
    with pytest.raises(TrainingError):
        train(csv, "y")
    with pytest.raises(TrainingError):
        train(csv, "missing")


def _model(tmp_path: Path, version: str = "v1", features: tuple[str, ...] = FEATURES[:3]) -> Path:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, len(features)))
    est = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    save_artifact(tmp_path, est, algorithm="lr", features=features, metrics={}, version=version)
    return tmp_path / version


def test_tampered_artifact_is_refused_and_holder_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = _model(tmp_path)
    holder = ModelHolder(tmp_path)
    holder.use("v1")
    assert holder.current is not None
    (target / "model.joblib").write_bytes(b"\x80\x04evil")
    holder2 = ModelHolder(tmp_path)
    with caplog.at_level("ERROR"):
        holder2.use("v1")
    assert holder2.current is None and "sha256" in (holder2.last_error or "")
    assert any("fallback" in r.message for r in caplog.records)
    holder2.use("missing")
    assert holder2.current is None and "no manifest" in (holder2.last_error or "")


def test_model_with_foreign_features_is_refused(tmp_path: Path) -> None:
    _model(tmp_path, "v2", features=("V1", "V2"))
    with pytest.raises(ModelLoadError, match="does not produce"):
        load_artifact(tmp_path, "v2")
    manifest = json.loads((tmp_path / "v2" / "manifest.json").read_text())
    assert len(manifest["sha256"]) == 64


def test_imbalance_strategies_are_compared_calibrated_and_thresholded(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    synthetic(csv, n=6000, seed=3)
    result = train(csv, "is_fraud", "ts", max_iter=30)
    assert (result.fit_rows, result.validation_rows, result.test_rows) == (3600, 1200, 1200)
    assert [s.name for s in result.strategies] == ["none", "class_weight", "undersample"]
    best = max(result.strategies, key=lambda s: s.validation_pr_auc)
    assert result.strategy == best.name
    weighted = next(s for s in result.strategies if s.name == "class_weight")
    # Balanced weights inflate the raw probability of the rare class: calibration fixes it.
    assert weighted.brier_isotonic < weighted.brier_raw
    assert weighted.brier_sigmoid < weighted.brier_raw
    assert result.brier < result.brier_baseline
    # Reliability: bins cover every held-out row; predicted and observed rates are close.
    assert sum(b.rows for b in result.reliability) == result.test_rows
    predicted = sum(b.mean_predicted * b.rows for b in result.reliability) / result.test_rows
    observed = sum(b.observed_rate * b.rows for b in result.reliability) / result.test_rows
    assert abs(predicted - observed) < 0.03
    # Thresholds: more review → more recall, review rates near the asked ones.
    rates = [t.review_rate for t in result.thresholds]
    assert rates == [0.005, 0.01, 0.02, 0.05]
    recalls = [t.recall for t in result.thresholds]
    assert recalls == sorted(recalls) and recalls[-1] > 0
    for t in result.thresholds:
        assert t.test_review_rate < 4 * t.review_rate + 0.01
        assert 0 <= t.precision <= 1 and 0 <= t.threshold <= 1
        # The threshold is on the calibrated probability the service scores with.
        flagged = result.test_scores >= t.threshold
        assert flagged.mean() == pytest.approx(t.test_review_rate)
        assert int(result.test_labels[flagged].sum()) == t.frauds_caught
    # The artifact scores calibrated probabilities, the same as the reported ones.
    x = pd.read_csv(csv)[result.features].to_numpy(dtype=float)[result.test_index]
    assert np.allclose(result.estimator.predict_proba(x)[:, 1], result.test_scores)


def test_one_strategy_and_isotonic_calibration_can_be_asked_for(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    synthetic(csv)
    result = train(
        csv, "is_fraud", "ts", max_iter=20, strategy="undersample", calibration="isotonic"
    )
    assert [s.name for s in result.strategies] == ["undersample"]
    assert (result.strategy, result.calibration) == ("undersample", "isotonic")
    with pytest.raises(TrainingError):
        train(csv, "is_fraud", "ts", strategy="smote")
