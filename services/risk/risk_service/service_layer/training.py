"""Offline training and evaluation of the risk model (scikit-learn), run off the event loop.

Input: a labeled table of numeric features. The last 20% in time order (or of the rows, without
a time column) is held out. Reported for the model and a trivial baseline (the training fraud
rate as a constant score): ROC-AUC, PR-AUC (average precision) and recall at a 1% false-positive
rate. Heavy imbalance is handled with balanced class weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

POSITIVE = {"1", "true", "yes", "fraud", "t", "y"}
NEGATIVE = {"0", "false", "no", "legitimate", "legit", "f", "n"}


class TrainingError(Exception):
    """The input cannot be trained on (the message says why)."""


@dataclass(frozen=True)
class Evaluation:
    roc_auc: float
    pr_auc: float
    recall_at_1pct_fpr: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}roc_auc": self.roc_auc,
            f"{prefix}pr_auc": self.pr_auc,
            f"{prefix}recall_at_1pct_fpr": self.recall_at_1pct_fpr,
        }


@dataclass(frozen=True)
class TrainingResult:
    features: list[str]
    rows: int
    train_rows: int
    test_rows: int
    test_positives: int
    model: Evaluation
    baseline: Evaluation
    estimator: Any
    test_index: Any
    test_labels: Any
    test_scores: Any


def evaluate(labels: Any, scores: Any) -> Evaluation:
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    labels = np.asarray(labels)
    if labels.min() == labels.max():
        raise TrainingError("the held-out split has a single class; cannot evaluate")
    fpr, tpr, _ = roc_curve(labels, scores)
    recall = float(tpr[fpr <= 0.01].max()) if (fpr <= 0.01).any() else 0.0
    return Evaluation(
        float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores)), recall
    )


def _labels(series: Any) -> Any:
    import numpy as np

    values = series.astype(str).str.strip().str.lower()
    positive = values.isin(POSITIVE)
    negative = values.isin(NEGATIVE)
    unknown = ~(positive | negative)
    if unknown.any():
        try:
            numeric = series.astype(float)
        except (TypeError, ValueError):
            bad = sorted(set(values[unknown]))[:5]
            raise TrainingError(f"label values not understood: {bad}") from None
        return (numeric > 0).astype(int).to_numpy()
    return np.where(positive, 1, 0)


def train(
    csv: Path, label: str, time_column: str | None = None, *, seed: int = 0, max_iter: int = 200
) -> TrainingResult:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = pd.read_csv(csv)
    if label not in frame.columns:
        raise TrainingError(f"no column {label!r}; columns: {', '.join(frame.columns[:20])}")
    if time_column is not None and time_column not in frame.columns:
        raise TrainingError(f"no time column {time_column!r}")
    y_all = _labels(frame[label])
    drop = [label] + ([time_column] if time_column else [])
    features = [
        c for c in frame.columns if c not in drop and pd.api.types.is_numeric_dtype(frame[c])
    ]
    if not features:
        raise TrainingError("no numeric feature columns")
    order = np.arange(len(frame))
    if time_column is not None:
        times = frame[time_column]
        if not pd.api.types.is_numeric_dtype(times):
            times = pd.to_datetime(times, utc=True, errors="coerce")
            if times.isna().any():
                raise TrainingError(f"time column {time_column!r} has unparseable values")
        order = np.argsort(times.to_numpy(), kind="stable")
    cut = int(len(order) * 0.8)
    train_idx, test_idx = order[:cut], order[cut:]
    x = frame[features].to_numpy(dtype=float)
    y_train, y_test = y_all[train_idx], y_all[test_idx]
    if y_train.min() == y_train.max():
        raise TrainingError("the training split has a single class")
    estimator = HistGradientBoostingClassifier(
        class_weight="balanced", max_iter=max_iter, learning_rate=0.1, random_state=seed
    )
    estimator.fit(x[train_idx], y_train)
    scores = estimator.predict_proba(x[test_idx])[:, 1]
    baseline_scores = np.full(len(test_idx), float(y_train.mean()))
    return TrainingResult(
        features=features,
        rows=len(frame),
        train_rows=len(train_idx),
        test_rows=len(test_idx),
        test_positives=int(y_test.sum()),
        model=evaluate(y_test, scores),
        baseline=evaluate(y_test, baseline_scores),
        estimator=estimator,
        test_index=test_idx,
        test_labels=y_test,
        test_scores=scores,
    )


def write_scores(path: Path, result: TrainingResult) -> None:
    with path.open("w") as fh:
        fh.write("row,label,score\n")
        for row, lab, score in zip(
            result.test_index, result.test_labels, result.test_scores, strict=True
        ):
            fh.write(f"{int(row)},{int(lab)},{float(score):.6f}\n")
