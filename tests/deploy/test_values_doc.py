"""docs/deploy.md's values reference is generated from the chart schema and kept up to date."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "ecomops_gen_values_doc", ROOT / "deploy" / "gen_values_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_values_reference_is_up_to_date() -> None:
    gen = _generator()
    assert gen.main(["--check"]) == 0, "run: python deploy/gen_values_doc.py"


def test_every_schema_leaf_is_documented() -> None:
    gen = _generator()
    table = gen.render_table()
    schema = json.loads((ROOT / "k8s" / "ecomops" / "values.schema.json").read_text())
    for key in schema["properties"]["default"]["properties"]:
        assert f"`default.{key}" in table, key
    for key in (
        "kafka.bootstrap",
        "auth.jwt.jwksUrl",
        "ingress.rest.routes.order",
        "components.order.enabled",
        "components.risk.grpcPort",
    ):
        assert f"`{key}`" in table, key
