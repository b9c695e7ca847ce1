"""``ecomops risk <command>``: train (offline model training and evaluation)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .adapters.model_store import save_artifact
from .service_layer.training import (
    CALIBRATIONS,
    STRATEGIES,
    TrainingError,
    TrainingResult,
    train,
    write_scores,
)


def _train(args: argparse.Namespace) -> int:
    try:
        result = train(
            Path(args.csv),
            args.label,
            args.time_column,
            seed=args.seed,
            max_iter=args.max_iter,
            strategy=args.imbalance,
            calibration=args.calibration,
        )
    except (TrainingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in report(result, time_ordered=bool(args.time_column)):
        print(line)
    if args.scores:
        write_scores(Path(args.scores), result)
        print(f"held-out scores (calibrated) written to {args.scores}")
    output = Path(args.output or os.environ.get("RISK_MODEL_DIR", ".local/models/risk"))
    manifest = save_artifact(
        output,
        result.estimator,
        algorithm=f"HistGradientBoostingClassifier ({result.strategy}) + {result.calibration}",
        features=result.features,
        metrics={
            **result.model.as_dict(),
            "brier": result.brier,
            **result.baseline.as_dict("baseline_"),
            "baseline_brier": result.brier_baseline,
        },
        extra={
            "rows": result.rows,
            "label": args.label,
            "time_column": args.time_column,
            "imbalance": result.strategy,
            "calibration": result.calibration,
            "thresholds": [
                {"review_rate": t.review_rate, "probability": round(t.threshold, 6)}
                for t in result.thresholds
            ],
        },
    )
    print(
        f"model {manifest.version} saved to {output / manifest.version} (sha256 {manifest.sha256})"
    )
    print(f"activate with: POST /v1/models/{manifest.version}/activate")
    return 0


def report(result: TrainingResult, *, time_ordered: bool) -> list[str]:
    """The training report: split, imbalance strategies compared, calibration, reliability,
    review thresholds."""
    split = "time order" if time_ordered else "row order"
    out = [
        f"rows {result.rows} in {split}: fit {result.fit_rows} (first 60%), validation "
        f"{result.validation_rows} (next 20%), held out {result.test_rows} (last 20%, "
        f"{result.test_positives} positives); every figure below is on the held-out part",
        "",
        "class imbalance (raw scores; kept: best validation PR-AUC)",
        f"{'strategy':16}{'val PR-AUC':>11}{'ROC-AUC':>9}{'PR-AUC':>8}{'rec@1%FPR':>10}"
        f"{'Brier raw':>11}{'isotonic':>10}{'sigmoid':>10}",
    ]
    for st in result.strategies:
        mark = " *" if st.name == result.strategy else ""
        out.append(
            f"{st.name + mark:16}{st.validation_pr_auc:11.4f}{st.test.roc_auc:9.4f}"
            f"{st.test.pr_auc:8.4f}{st.test.recall_at_1pct_fpr:10.4f}{st.brier_raw:11.6f}"
            f"{st.brier_isotonic:10.6f}{st.brier_sigmoid:10.6f}"
        )
    out += [
        "",
        f"{'':28}{'ROC-AUC':>10}{'PR-AUC':>10}{'recall@1%FPR':>14}{'Brier':>11}",
        f"{'model (' + result.strategy + ', ' + result.calibration + ')':28}"
        f"{result.model.roc_auc:10.4f}{result.model.pr_auc:10.4f}"
        f"{result.model.recall_at_1pct_fpr:14.4f}{result.brier:11.6f}",
        f"{'baseline (prior)':28}{result.baseline.roc_auc:10.4f}{result.baseline.pr_auc:10.4f}"
        f"{result.baseline.recall_at_1pct_fpr:14.4f}{result.brier_baseline:11.6f}",
        "",
        f"reliability ({result.calibration}): predicted vs observed fraud rate",
        f"{'probability':>17}{'rows':>9}{'mean predicted':>16}{'observed':>10}",
    ]
    for b in result.reliability:
        out.append(
            f"{f'[{b.low:g}, {b.high:g})':>17}{b.rows:9d}{b.mean_predicted:16.4f}"
            f"{b.observed_rate:10.4f}"
        )
    out += [
        "",
        "review thresholds (set on validation; precision and recall on the held-out part)",
        f"{'review rate':>12}{'p >=':>10}{'reviewed':>10}{'precision':>11}{'recall':>8}"
        f"{'frauds':>8}",
    ]
    for t in result.thresholds:
        out.append(
            f"{t.review_rate:12.1%}{t.threshold:10.4f}{t.test_review_rate:10.2%}"
            f"{t.precision:11.4f}{t.recall:8.4f}{t.frauds_caught:8d}"
        )
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ecomops risk")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train and evaluate the risk model on a labeled CSV")
    p.add_argument("--csv", required=True, help="labeled table of numeric features")
    p.add_argument(
        "--label", required=True, help="label column (1/0, true/false, fraud/legitimate)"
    )
    p.add_argument("--time-column", help="hold out the last 20%% in this column's order")
    p.add_argument("--output", help="model directory (default: RISK_MODEL_DIR)")
    p.add_argument("--scores", help="write held-out scores as row,label,score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-iter", type=int, default=200, help="boosting iterations")
    p.add_argument(
        "--imbalance",
        choices=STRATEGIES,
        help="train only this class-imbalance strategy (default: compare all, keep the best)",
    )
    p.add_argument(
        "--calibration",
        choices=CALIBRATIONS,
        default="sigmoid",
        help=(
            "probability calibration fitted on the validation part (default: sigmoid, strictly "
            "increasing; isotonic ties neighbouring scores)"
        ),
    )
    p.set_defaults(func=_train)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
