"""Issue 18, points 5 and 6, over the rendered chart: the alert rules and the Grafana dashboard
name only metrics the platform exports; promtool checks and unit-tests the rules; `helm test`
Pods, extra volumes/env, the preStop drain and the Gateway API routes render as documented; and
the `helm test` script itself passes against a real server and fails against one not serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from ecomops_platform import metrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "k8s" / "ecomops"
DASHBOARD = CHART / "files" / "dashboards" / "ecomops.json"
OPERABILITY = ROOT / "k8s" / "examples" / "operability.yaml"
COMPONENTS = ("order", "inventory", "pricing", "recommendation", "risk", "support")
RULES_ON = ("metrics.prometheusRule.enabled=true",)
ALERTS = {
    "EcomopsOutboxStalled",
    "EcomopsConsumerLagHigh",
    "EcomopsDeadLettersGrowing",
    "EcomopsHighErrorRatio",
    "EcomopsHighLatencyP99",
    "EcomopsErrorBudgetBurnFast",
    "EcomopsErrorBudgetBurnSlow",
}
# A metric name in PromQL: not part of a recording rule's name (`level:metric:operation`).
METRIC_IN_PROMQL = re.compile(r"(?<![:\w])(ecomops_[a-z0-9_]+)(?![:\w])")


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def component_of(doc: dict[str, Any]) -> str | None:
    return doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")


def exported_series() -> set[str]:
    """Every series name the platform's metrics module exports (with the suffixes Prometheus
    sees: ``_total`` for counters, ``_bucket``/``_count``/``_sum`` for histograms)."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name = value._name
        if isinstance(value, Counter):
            names.add(f"{name}_total")
        elif isinstance(value, Histogram):
            names.update(f"{name}_{suffix}" for suffix in ("bucket", "count", "sum"))
        elif isinstance(value, Gauge):
            names.add(name)
    return names


def test_every_platform_metric_is_prefixed_ecomops() -> None:
    names = exported_series()
    assert len(names) > 20
    assert all(name.startswith("ecomops_") for name in names), sorted(
        n for n in names if not n.startswith("ecomops_")
    )


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def test_the_dashboard_is_json_and_names_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = _dashboard_exprs(dashboard)
    used = {m for e in exprs for m in METRIC_IN_PROMQL.findall(e)}
    assert used - exported_series() == set(), "the dashboard names metrics nobody exports"
    titles = {p["title"] for p in dashboard["panels"]}
    for needed in (
        "Request rate",
        "Error ratio",
        "Latency p50 / p99",
        "Outbox: oldest unpublished event",
        "Consumer lag",
        "Dead letters (last hour)",
    ):
        assert needed in titles
    # Every query is split per service and follows the dashboard's service selector.
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert "by (service" in target["expr"], target["expr"]
            assert 'service=~"$service"' in target["expr"], target["expr"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_dashboard_check_catches_an_unknown_metric() -> None:
    """The name check above is not vacuous: a renamed metric is found."""
    dashboard = json.loads(DASHBOARD.read_text())
    dashboard["panels"][1]["targets"][0]["expr"] = "sum by (service) (kafka_consumer_lag)"
    dashboard["panels"][2]["targets"][0]["expr"] = "sum by (service) (ecomops_outbox_age)"
    used = {m for e in _dashboard_exprs(dashboard) for m in METRIC_IN_PROMQL.findall(e)}
    assert used - exported_series() == {"ecomops_outbox_age"}


def test_the_dashboard_ships_in_a_configmap_only_when_asked(render: Any) -> None:
    assert by_kind(render(), "ConfigMap") == []
    (config_map,) = by_kind(render((OPERABILITY,)), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "ecomops"}
    assert json.loads(config_map["data"]["ecomops.json"]) == json.loads(DASHBOARD.read_text())


def _rule(render: Any, *args: Any) -> dict[str, Any]:
    (rule,) = by_kind(render(*args), "PrometheusRule")
    return rule


def test_the_prometheus_rule_is_optional_and_names_only_exported_metrics(render: Any) -> None:
    assert by_kind(render(), "PrometheusRule") == []
    rule = _rule(render, (), RULES_ON)
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules if "record" in r}
    used = {m for r in rules for m in METRIC_IN_PROMQL.findall(r["expr"])}
    assert used - exported_series() == set()
    # Recording rules used by the alerts are defined in the same object.
    for r in rules:
        for name in re.findall(r"[a-z_]+:ecomops_[a-z0-9_]+:[a-z0-9_]+", r["expr"]):
            assert name in recorded, name
    # Probes never count as requests.
    for r in rules:
        if "ecomops_http_request" in r["expr"]:
            assert 'route!~"/healthz|/readyz|/metrics"' in r["expr"], r.get("record")


def test_every_alert_has_a_severity_and_a_runbook(render: Any) -> None:
    rule = _rule(render, (OPERABILITY,))
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert set(alerts) == ALERTS
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in ("critical", "warning"), name
        assert alert["labels"]["team"] == "shop", name
        annotations = alert["annotations"]
        assert {"summary", "description", "runbook", "runbook_url"} <= set(annotations), name
        assert len(annotations["runbook"]) > 80, name
        assert annotations["runbook_url"] == (
            f"https://runbooks.example.com/ecomops#{name.lower()}"
        ), name
    # The example's thresholds reach the expressions.
    assert alerts["EcomopsOutboxStalled"]["expr"].endswith("> 60")
    assert alerts["EcomopsConsumerLagHigh"]["expr"].endswith("> 2000")
    assert alerts["EcomopsHighErrorRatio"]["expr"].endswith("> 0.02")
    assert alerts["EcomopsHighLatencyP99"]["expr"].endswith("> 0.5")
    # Multiwindow burn rates: a long and a short window, both over the same multiple.
    fast = alerts["EcomopsErrorBudgetBurnFast"]["expr"]
    assert "ratio_rate1h > (14.4 * (1 - 0.999))" in fast
    assert "ratio_rate5m > (14.4 * (1 - 0.999))" in fast
    slow = alerts["EcomopsErrorBudgetBurnSlow"]["expr"]
    assert "ratio_rate6h > (6 * (1 - 0.999))" in slow and "ratio_rate30m" in slow


def _promtool() -> str | None:
    candidates = [os.environ.get("PROMTOOL"), str(ROOT / ".local" / "bin" / "promtool")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("promtool")


@pytest.fixture(scope="session")
def promtool() -> str:
    path = _promtool()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "promtool not found (deploy/local/fetch-tools.sh promtool; required under CI)"
            )
        pytest.skip("promtool not found: build it with deploy/local/fetch-tools.sh promtool")
    assert path is not None
    return path


def _write_rules(render: Any, tmp_path: Path, *args: Any) -> tuple[Path, Path]:
    sys.path.insert(0, str(Path(__file__).parent))
    import prom_rules

    text = "\n---\n".join(json.dumps(d) for d in render(*args))
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(text)
    assert (
        prom_rules.main([str(tmp_path / "out"), str(rendered), "--for-tests", str(rendered)]) == 0
    )
    (full,) = (tmp_path / "out").glob("*.rules.yaml")
    return full, tmp_path / "out" / "alerts-test.yaml"


def test_promtool_checks_the_rules_and_their_unit_tests_pass(
    promtool: str, render: Any, tmp_path: Path
) -> None:
    full, tests = _write_rules(render, tmp_path, (), RULES_ON)
    check = subprocess.run(
        [promtool, "check", "rules", str(full)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr
    run = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_unit_tests_fail_when_a_threshold_moves(
    promtool: str, render: Any, tmp_path: Path
) -> None:
    """The promtool tests are not vacuous: with the outbox threshold at 10 minutes the
    outbox alert does not fire when the tests expect it."""
    _, tests = _write_rules(
        render, tmp_path, (), (*RULES_ON, "metrics.prometheusRule.outboxAgeSeconds=600")
    )
    run = subprocess.run(
        [promtool, "test", "rules", str(tests)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode != 0
    assert "EcomopsOutboxStalled" in run.stdout + run.stderr


# ---------------------------------------------------------------------------------------------
# the chart: helm test, extra volumes, drain, Gateway API


def test_one_helm_test_pod_per_enabled_service(render: Any) -> None:
    pods = by_kind(render(), "Pod")
    assert {component_of(p) for p in pods} == {f"{c}-test" for c in COMPONENTS}
    for pod in pods:
        annotations = pod["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "test"
        assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
        assert pod["spec"]["restartPolicy"] == "Never"
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        comp = component_of(pod).removesuffix("-test")  # type: ignore[union-attr]
        port = {
            "order": 1,
            "inventory": 2,
            "pricing": 3,
            "recommendation": 4,
            "risk": 5,
            "support": 6,
        }[comp]
        assert env["ECOMOPS_TEST_HTTP"] == f"http://ecomops-{comp}:800{port}"
        assert env["ECOMOPS_TEST_GRPC"] == f"ecomops-{comp}:900{port}"
        assert container["command"] == ["python", "-c"]
        assert "/readyz" in container["args"][0] and "HealthStub" in container["args"][0]
    assert by_kind(render((), ("tests.enabled=false",)), "Pod") == []


def test_helm_test_skips_grpc_health_where_grpc_is_tls(render: Any) -> None:
    sets = (
        "components.risk.grpcTLS.enabled=true",
        "components.risk.grpcTLS.secretName=risk-tls",
    )
    pods = {component_of(p): p for p in by_kind(render((), sets), "Pod")}
    env = {e["name"]: e["value"] for e in pods["risk-test"]["spec"]["containers"][0]["env"]}
    assert env["ECOMOPS_TEST_GRPC"] == ""


def test_extra_volumes_mounts_and_env_reach_the_container(render: Any) -> None:
    deploys = {component_of(d): d for d in by_kind(render((OPERABILITY,)), "Deployment")}
    risk = deploys["risk"]["spec"]["template"]["spec"]
    (container,) = risk["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RISK_MODEL_DIR"] == "/var/lib/ecomops/models/risk"
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "deployment.environment=production"  # default's
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["risk-models"]["mountPath"] == "/var/lib/ecomops/models/risk"
    assert mounts["risk-models"]["readOnly"] is True
    assert mounts["tmp"]["mountPath"] == "/tmp"
    volumes = {v["name"]: v for v in risk["volumes"]}
    assert volumes["risk-models"]["persistentVolumeClaim"]["claimName"] == "risk-models"
    # Only risk has the model; every service gets the default's variable.
    order = deploys["order"]["spec"]["template"]["spec"]
    assert "risk-models" not in {v["name"] for v in order["volumes"]}
    order_env = {e["name"] for e in order["containers"][0]["env"]}
    assert "OTEL_RESOURCE_ATTRIBUTES" in order_env and "RISK_MODEL_DIR" not in order_env


@pytest.mark.parametrize(
    "bad",
    [
        "components.risk.extraVolumes[0].emptyDir.medium=Memory",  # a volume needs a name
        "components.risk.extraVolumeMounts[0].name=x",  # and a mount its path
        "default.preStopSleepSeconds=-1",
        "default.shutdownGraceSeconds=ten",
    ],
)
def test_schema_refuses_malformed_extras(render: Any, bad: str) -> None:
    with pytest.raises(RuntimeError, match="schema"):
        render((), (bad,))


def test_prestop_drain_and_grace_period_cover_the_service_shutdown(render: Any) -> None:
    for docs, grace, sleep, period in (
        (render(), 10, 5, 45),
        (render((OPERABILITY,)), 20, 10, 75),
    ):
        for deploy in by_kind(docs, "Deployment"):
            spec = deploy["spec"]["template"]["spec"]
            (container,) = spec["containers"]
            assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(sleep)]
            assert spec["terminationGracePeriodSeconds"] == period
            prefix = component_of(deploy).upper()  # type: ignore[union-attr]
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env[f"{prefix}_SHUTDOWN_GRACE_SECONDS"] == str(grace)
            # runtime.Service.stop(): HTTP drain grace + 2, gRPC grace, 5 s tasks, 10 s consumers.
            assert period >= sleep + (grace + 2) + grace + 5 + 10
    no_hook = by_kind(render((), ("default.preStopSleepSeconds=0",)), "Deployment")[0]
    assert "lifecycle" not in no_hook["spec"]["template"]["spec"]["containers"][0]
    with pytest.raises(RuntimeError, match="terminationGracePeriodSeconds"):
        render((), ("components.order.terminationGracePeriodSeconds=30",))


def test_access_log_setting_reaches_every_process(render: Any) -> None:
    for docs, expected in ((render(), "true"), (render((), ("config.accessLog=false",)), "false")):
        for deploy in by_kind(docs, "Deployment"):
            env = {
                e["name"]: e.get("value")
                for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]
            }
            assert env["ECOMOPS_ACCESS_LOG"] == expected


def test_http_route_sends_each_prefix_to_its_owner(render: Any) -> None:
    assert by_kind(render(), "HTTPRoute") == []
    (route,) = by_kind(render((OPERABILITY,)), "HTTPRoute")
    spec = route["spec"]
    assert spec["parentRefs"] == [{"name": "shop", "namespace": "gateway", "sectionName": "https"}]
    assert spec["hostnames"] == ["api.shop.example.com"]
    owners = {}
    for rule in spec["rules"]:
        (backend,) = rule["backendRefs"]
        for match in rule["matches"]:
            assert match["path"]["type"] == "PathPrefix"
            owners[match["path"]["value"]] = (backend["name"], backend["port"])
    assert owners["/v1/orders"] == ("ecomops-order", 8001)
    assert owners["/v1/quotes"] == ("ecomops-pricing", 8003)
    assert owners["/v1/assessments"] == ("ecomops-risk", 8005)
    assert owners["/v1/recommendations"] == ("ecomops-recommendation", 8004)
    assert owners["/v1/reservations"] == ("ecomops-inventory", 8002)


def test_grpc_routes_expose_reflection_and_health_on_service_hosts(render: Any) -> None:
    routes = {component_of(r): r for r in by_kind(render((OPERABILITY,)), "GRPCRoute")}
    assert set(routes) == set(COMPONENTS)
    reflection = {
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.health.v1.Health",
    }
    for comp, route in routes.items():
        spec = route["spec"]
        (rule,) = spec["rules"]
        services = {m["method"]["service"] for m in rule["matches"]}
        own = f"ecomops.{comp}.v1.{comp.capitalize()}Service"
        assert own in services
        (backend,) = rule["backendRefs"]
        assert backend["name"] == f"ecomops-{comp}"
        if comp in ("order", "inventory"):
            assert spec["hostnames"] == [f"{comp}-grpc.shop.example.com"]
            assert reflection <= services
        else:
            # On the shared host reflection would be ambiguous: not routed.
            assert spec["hostnames"] == ["grpc.shop.example.com"]
            assert not reflection & services
    # The Gateway reaches the gRPC ports through the NetworkPolicy.
    for policy in by_kind(render((OPERABILITY,)), "NetworkPolicy"):
        first = policy["spec"]["ingress"][0]
        assert {p["port"] for p in first["ports"]} == {"http", "grpc"}
        assert first["from"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "gateway"
        }


def test_routes_need_a_gateway(render: Any) -> None:
    with pytest.raises(RuntimeError, match=r"gateway\.parentRefs is required"):
        render((), ("gateway.http.enabled=true",))
    with pytest.raises(RuntimeError, match=r"gateway\.parentRefs is required"):
        render((), ("gateway.grpc.enabled=true",))


# ---------------------------------------------------------------------------------------------
# the `helm test` script against real servers


async def _serve(ready: bool) -> tuple[Any, Any, Any]:
    import uvicorn

    from ecomops_platform.auth import TokenVerifier
    from ecomops_platform.grpc_server import GrpcServer
    from ecomops_platform.rest import create_app
    from ecomops_platform.settings import CommonSettings

    verifier = TokenVerifier(CommonSettings(jwt_secret="x" * 48, env="test"))

    async def readiness() -> dict[str, Any]:
        return {"status": "ready" if ready else "not_ready", "ready": ready}

    app = create_app(
        service="probe",
        title="t",
        description="d",
        version="1",
        verifier=verifier,
        readiness=readiness,
        routers=[],
        max_body_bytes=4096,
        rate_limit_per_minute=100,
    )
    grpc_server = GrpcServer(
        service="probe",
        verifier=verifier,
        registrars=[],
        service_names=[],
        host="127.0.0.1",
        port=0,
    )
    await grpc_server.start()
    await grpc_server.set_serving(ready)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    return server, task, grpc_server


async def _run_helm_test(render: Any, ready: bool) -> tuple[int, str]:
    (pod,) = [p for p in by_kind(render(), "Pod") if component_of(p) == "order-test"]
    (container,) = pod["spec"]["containers"]
    server, task, grpc_server = await _serve(ready)
    try:
        http_port = server.servers[0].sockets[0].getsockname()[1]
        env = {
            **os.environ,
            "ECOMOPS_TEST_HTTP": f"http://127.0.0.1:{http_port}",
            "ECOMOPS_TEST_GRPC": f"127.0.0.1:{grpc_server.port}",
            "ECOMOPS_TEST_TIMEOUT": "4",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *container["command"][1:],
            *container["args"],
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode()
    finally:
        server.should_exit = True
        await task
        await grpc_server.stop(0)


async def test_the_helm_test_script_passes_against_a_serving_service(render: Any) -> None:
    code, out = await _run_helm_test(render, ready=True)
    assert code == 0, out
    assert "ok:" in out and "SERVING" in out


async def test_the_helm_test_script_fails_against_a_service_not_ready(render: Any) -> None:
    code, out = await _run_helm_test(render, ready=False)
    assert code == 1, out
    assert "FAILED" in out and "NOT_SERVING" in out
