"""Extract the rule groups of rendered PrometheusRule objects into plain Prometheus rule files,
for `promtool check rules` and `promtool test rules` (deploy/k8s-check.sh).

    python tests/deploy/prom_rules.py OUT_DIR rendered.yaml [...]

Writes OUT_DIR/<case>-<name>.rules.yaml for every PrometheusRule (the groups as rendered), and
prints their paths. With ``--for-tests FILE`` it also writes OUT_DIR/rules.yaml from the one
PrometheusRule of FILE with annotations reduced to ``summary`` (what
tests/deploy/promtool/alerts-test.yaml compares; the full annotations are checked by
``promtool check rules``), and copies the promtool tests beside it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

TESTS = Path(__file__).resolve().parent / "promtool" / "alerts-test.yaml"


def rule_objects(text: str) -> list[dict[str, Any]]:
    return [
        doc
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule"
    ]


def summary_only(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for group in groups:
        rules = []
        for rule in group["rules"]:
            rule = dict(rule)
            if "annotations" in rule:
                rule["annotations"] = {
                    k: v for k, v in rule["annotations"].items() if k == "summary"
                }
            rules.append(rule)
        out.append({**group, "rules": rules})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--for-tests", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        for doc in rule_objects(path.read_text()):
            target = args.out / f"{path.stem}-{doc['metadata']['name']}.rules.yaml"
            target.write_text(yaml.safe_dump({"groups": doc["spec"]["groups"]}, sort_keys=False))
            print(target)
    if args.for_tests is not None:
        docs = rule_objects(args.for_tests.read_text())
        if len(docs) != 1:
            print(
                f"{args.for_tests}: expected one PrometheusRule, got {len(docs)}", file=sys.stderr
            )
            return 1
        groups = summary_only(docs[0]["spec"]["groups"])
        (args.out / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        shutil.copy(TESTS, args.out / TESTS.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
