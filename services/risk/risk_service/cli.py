"""``ecomops risk <command>``: train (offline model training and evaluation)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .adapters.model_store import save_artifact
from .service_layer.training import TrainingError, train, write_scores


def _train(args: argparse.Namespace) -> int:
    try:
        result = train(
            Path(args.csv), args.label, args.time_column, seed=args.seed, max_iter=args.max_iter
        )
    except (TrainingError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    split = "time order" if args.time_column else "row order"
    print(
        f"rows {result.rows}: train {result.train_rows}, held out {result.test_rows} "
        f"(last 20% in {split}), {result.test_positives} positives held out"
    )
    print(f"{'':24}{'ROC-AUC':>10}{'PR-AUC':>10}{'recall@1%FPR':>14}")
    for name, ev in (
        ("model (HistGB balanced)", result.model),
        ("baseline (prior)", result.baseline),
    ):
        print(f"{name:24}{ev.roc_auc:10.4f}{ev.pr_auc:10.4f}{ev.recall_at_1pct_fpr:14.4f}")
    if args.scores:
        write_scores(Path(args.scores), result)
        print(f"held-out scores written to {args.scores}")
    output = Path(args.output or os.environ.get("RISK_MODEL_DIR", ".local/models/risk"))
    manifest = save_artifact(
        output,
        result.estimator,
        algorithm="HistGradientBoostingClassifier",
        features=result.features,
        metrics={**result.model.as_dict(), **result.baseline.as_dict("baseline_")},
        extra={"rows": result.rows, "label": args.label, "time_column": args.time_column},
    )
    print(
        f"model {manifest.version} saved to {output / manifest.version} (sha256 {manifest.sha256})"
    )
    print(f"activate with: POST /v1/models/{manifest.version}/activate")
    return 0


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
    p.set_defaults(func=_train)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
