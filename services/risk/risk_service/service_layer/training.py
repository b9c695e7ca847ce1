"""Offline training and evaluation of the risk model (scikit-learn), run off the event loop.

Input: a labeled table of numeric features, split in time order (or row order, without a time
column) into three consecutive parts: *fit* (the first 60%: the learner is trained here),
*validation* (the next 20%: the imbalance strategy is chosen, the calibrator is fitted and the
review thresholds are set here) and *test* (the last 20%, held out: every reported figure).

- Class imbalance: each strategy — ``none``, ``class_weight`` (balanced weights) and
  ``undersample`` (every fraud, ``UNDERSAMPLE_RATIO`` legitimate rows per fraud) — is trained
  and reported side by side; the one with the best validation PR-AUC is kept (or the one asked).
- Calibration: the kept learner's raw score is mapped to a probability by a sigmoid (Platt,
  the default: strictly increasing, so every review rate gets its own threshold) or isotonic
  regression (steps: neighbouring scores tie), fitted on the validation part; the Brier score
  of the raw score and of both calibrations on the test part, and a reliability table, are
  reported.
- Thresholds: for review rates of 0.5%, 1%, 2% and 5%, the threshold on the calibrated
  probability is the validation part's quantile (deployable: it is known before the test
  period), and the test part's achieved review rate, precision and recall at it are reported.
- A trivial baseline (the training fraud rate as a constant score) is reported beside.

The saved artifact is a :class:`CalibratedModel`: the learner and its calibrator, whose
``predict_proba`` is the calibrated probability the service scores with.
"""

from __future__ import annotations

import itertools
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


STRATEGIES = ("none", "class_weight", "undersample")
CALIBRATIONS = ("isotonic", "sigmoid")
REVIEW_RATES = (0.005, 0.01, 0.02, 0.05)
#: Edges of the reliability table's bins of predicted probability (fraud is rare: most
#: orders fall in the first bins, so they are narrow).
RELIABILITY_EDGES = (0.0, 0.001, 0.01, 0.05, 0.2, 0.5, 1.0)
#: Legitimate rows kept per fraud by the ``undersample`` strategy.
UNDERSAMPLE_RATIO = 10


@dataclass(frozen=True)
class StrategyResult:
    """One imbalance strategy: ranking quality on validation and test, Brier on test."""

    name: str
    validation_pr_auc: float
    test: Evaluation
    brier_raw: float
    brier_isotonic: float
    brier_sigmoid: float


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    rows: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class ThresholdRow:
    """Review the orders whose probability is at least ``threshold`` (set on validation for
    ``review_rate``); what that does on the test part."""

    review_rate: float
    threshold: float
    test_review_rate: float
    precision: float
    recall: float
    frauds_caught: int


@dataclass(frozen=True)
class TrainingResult:
    features: list[str]
    rows: int
    train_rows: int  # fit + validation (everything before the held-out part)
    fit_rows: int
    validation_rows: int
    test_rows: int
    test_positives: int
    strategy: str
    calibration: str
    model: Evaluation  # the kept model's calibrated probability on the test part
    baseline: Evaluation
    brier: float  # the kept model's calibrated probability on the test part
    brier_baseline: float
    strategies: list[StrategyResult]
    reliability: list[ReliabilityBin]
    thresholds: list[ThresholdRow]
    estimator: Any  # a CalibratedModel
    test_index: Any
    test_labels: Any
    test_scores: Any  # calibrated probabilities


class Calibrator:
    """A raw score → probability map fitted on held-out rows (isotonic or sigmoid)."""

    def __init__(self, method: str, raw: Any, labels: Any) -> None:
        import numpy as np
        from sklearn.isotonic import IsotonicRegression
        from sklearn.linear_model import LogisticRegression

        if method not in CALIBRATIONS:
            raise TrainingError(f"unknown calibration {method!r}; known: {CALIBRATIONS}")
        self.method = method
        raw = np.asarray(raw, dtype=float)
        if method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self._model: Any = iso.fit(raw, labels)
        else:
            platt = LogisticRegression(C=1e6, max_iter=1000)
            self._model = platt.fit(_logit(raw).reshape(-1, 1), labels)

    def __call__(self, raw: Any) -> Any:
        import numpy as np

        raw = np.asarray(raw, dtype=float)
        if self.method == "isotonic":
            return np.clip(self._model.predict(raw), 0.0, 1.0)
        return self._model.predict_proba(_logit(raw).reshape(-1, 1))[:, 1]


class CalibratedModel:
    """The learner and its calibrator: ``predict_proba`` gives calibrated probabilities (what
    the service's model store calls)."""

    def __init__(self, estimator: Any, calibrator: Calibrator) -> None:
        self.estimator = estimator
        self.calibrator = calibrator

    def raw_score(self, x: Any) -> Any:
        return self.estimator.predict_proba(x)[:, 1]

    def predict_proba(self, x: Any) -> Any:
        import numpy as np

        p = self.calibrator(self.raw_score(x))
        return np.column_stack([1.0 - p, p])


def _logit(p: Any) -> Any:
    import numpy as np

    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def brier(labels: Any, probabilities: Any) -> float:
    import numpy as np

    return float(np.mean((np.asarray(probabilities, dtype=float) - np.asarray(labels)) ** 2))


def reliability(labels: Any, probabilities: Any) -> list[ReliabilityBin]:
    """Mean predicted probability beside the observed fraud rate, per bin (empty bins left
    out): a calibrated model has the two close in every bin."""
    import numpy as np

    labels, probabilities = np.asarray(labels), np.asarray(probabilities, dtype=float)
    out = []
    edges = RELIABILITY_EDGES
    for i, (low, high) in enumerate(itertools.pairwise(edges)):
        below = probabilities <= high if i == len(edges) - 2 else probabilities < high
        inside = (probabilities >= low) & below
        n = int(inside.sum())
        if n:
            out.append(
                ReliabilityBin(
                    low, high, n, float(probabilities[inside].mean()), float(labels[inside].mean())
                )
            )
    return out


def threshold_table(
    validation_probabilities: Any, test_probabilities: Any, test_labels: Any
) -> list[ThresholdRow]:
    """Per review rate: the validation part's quantile of the calibrated probability (what the
    service scores with, so the threshold can be configured) and the test part's review rate,
    precision and recall at it. A calibration with flat steps (isotonic) ties neighbours: two
    rates may then get the same threshold."""
    import numpy as np

    test_probabilities = np.asarray(test_probabilities)
    test_labels = np.asarray(test_labels)
    frauds = int(test_labels.sum())
    rows = []
    for rate in REVIEW_RATES:
        cut = float(np.quantile(validation_probabilities, 1.0 - rate, method="higher"))
        flagged = test_probabilities >= cut
        caught = int(test_labels[flagged].sum())
        n = int(flagged.sum())
        rows.append(
            ThresholdRow(
                review_rate=rate,
                threshold=cut,
                test_review_rate=n / len(test_probabilities),
                precision=caught / n if n else 0.0,
                recall=caught / frauds if frauds else 0.0,
                frauds_caught=caught,
            )
        )
    return rows


def _learner(strategy: str, *, seed: int, max_iter: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        class_weight="balanced" if strategy == "class_weight" else None,
        max_iter=max_iter,
        learning_rate=0.1,
        random_state=seed,
    )


def _fit_rows(strategy: str, labels: Any, *, seed: int) -> Any:
    """Row positions of the fit part the strategy trains on."""
    import numpy as np

    everything = np.arange(len(labels))
    if strategy != "undersample":
        return everything
    positives = everything[labels == 1]
    negatives = everything[labels == 0]
    keep = min(len(negatives), UNDERSAMPLE_RATIO * len(positives))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(negatives, size=keep, replace=False)
    return np.sort(np.concatenate([positives, chosen]))


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
    csv: Path,
    label: str,
    time_column: str | None = None,
    *,
    seed: int = 0,
    max_iter: int = 200,
    strategy: str | None = None,
    calibration: str = "sigmoid",
) -> TrainingResult:
    """Train every imbalance strategy (or only ``strategy``), keep the best on validation,
    calibrate it, and evaluate on the held-out last 20%."""
    import numpy as np
    import pandas as pd

    if strategy is not None and strategy not in STRATEGIES:
        raise TrainingError(f"unknown imbalance strategy {strategy!r}; known: {STRATEGIES}")
    if calibration not in CALIBRATIONS:
        raise TrainingError(f"unknown calibration {calibration!r}; known: {CALIBRATIONS}")
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
    fit_cut = int(len(order) * 0.6)
    fit_idx, val_idx, test_idx = order[:fit_cut], order[fit_cut:cut], order[cut:]
    x = frame[features].to_numpy(dtype=float)
    y_fit, y_val, y_test = y_all[fit_idx], y_all[val_idx], y_all[test_idx]
    for name, part in (("fit", y_fit), ("validation", y_val)):
        if len(part) == 0 or part.min() == part.max():
            raise TrainingError(f"the {name} part (of the first 80%) has a single class")

    compared: list[StrategyResult] = []
    kept: tuple[float, str, Any, Any, Any] | None = None
    for name in (strategy,) if strategy else STRATEGIES:
        rows = fit_idx[_fit_rows(name, y_fit, seed=seed)]
        learner = _learner(name, seed=seed, max_iter=max_iter).fit(x[rows], y_all[rows])
        val_raw = learner.predict_proba(x[val_idx])[:, 1]
        test_raw = learner.predict_proba(x[test_idx])[:, 1]
        val_pr = evaluate(y_val, val_raw).pr_auc
        calibrated = {m: Calibrator(m, val_raw, y_val)(test_raw) for m in CALIBRATIONS}
        compared.append(
            StrategyResult(
                name=name,
                validation_pr_auc=val_pr,
                test=evaluate(y_test, test_raw),
                brier_raw=brier(y_test, test_raw),
                brier_isotonic=brier(y_test, calibrated["isotonic"]),
                brier_sigmoid=brier(y_test, calibrated["sigmoid"]),
            )
        )
        if kept is None or val_pr > kept[0]:
            kept = (val_pr, name, learner, val_raw, test_raw)
    assert kept is not None
    _, chosen, learner, val_raw, test_raw = kept
    calibrator = Calibrator(calibration, val_raw, y_val)
    model = CalibratedModel(learner, calibrator)
    scores = calibrator(test_raw)
    prior = float(np.concatenate([y_fit, y_val]).mean())
    baseline_scores = np.full(len(test_idx), prior)
    ranked = evaluate(y_test, test_raw)
    return TrainingResult(
        features=features,
        rows=len(frame),
        train_rows=len(fit_idx) + len(val_idx),
        fit_rows=len(fit_idx),
        validation_rows=len(val_idx),
        test_rows=len(test_idx),
        test_positives=int(y_test.sum()),
        strategy=chosen,
        calibration=calibration,
        # Ranking figures of the raw score: the calibration keeps the order (isotonic may tie
        # neighbours, which would only blur them).
        model=ranked,
        baseline=evaluate(y_test, baseline_scores),
        brier=brier(y_test, scores),
        brier_baseline=brier(y_test, baseline_scores),
        strategies=compared,
        reliability=reliability(y_test, scores),
        thresholds=threshold_table(calibrator(val_raw), scores, y_test),
        estimator=model,
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
