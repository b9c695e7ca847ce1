"""Tests over the rendered Helm chart (k8s/ecomops): what an SRE relies on when installing it.

Each test renders the chart with `helm template` (defaults, every example under k8s/examples/,
and targeted `--set` overrides) and asserts on the manifests, so a template regression (a
dropped securityContext, a probe, a NetworkPolicy rule, a Secret rendered from defaults) fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "k8s" / "ecomops"
EXAMPLES = sorted((ROOT / "k8s" / "examples").glob("*.yaml"))
MANAGED = ROOT / "k8s" / "examples" / "managed-postgres-kafka.yaml"
MINIMAL = ROOT / "k8s" / "examples" / "minimal.yaml"
COMPONENTS = ("order", "inventory", "pricing", "recommendation", "risk", "support")
PORTS = {  # docs/conventions.md
    "order": (8001, 9001),
    "inventory": (8002, 9002),
    "pricing": (8003, 9003),
    "recommendation": (8004, 9004),
    "risk": (8005, 9005),
    "support": (8006, 9006),
}
# Everything optional switched on, to check the optional templates too.
ALL_ON = (
    "metrics.serviceMonitor.enabled=true",
    "ingress.rest.enabled=true",
    "ingress.grpc.enabled=true",
    "kafka.topics.create=true",
    "components.risk.grpcTLS.enabled=true",
    "components.risk.grpcTLS.secretName=risk-tls",
    "components.risk.grpcTLS.clientAuth=true",
    "auth.serviceToken.secretName=svc-token",
    "metrics.prometheusRule.enabled=true",
    "metrics.grafanaDashboard.enabled=true",
    "gateway.parentRefs[0].name=shop",
    "gateway.http.enabled=true",
    "gateway.grpc.enabled=true",
    "gateway.grpc.serviceHostnames.order[0]=order-grpc.example.com",
    "default.extraVolumes[0].name=extra",
    "default.extraVolumes[0].emptyDir.sizeLimit=1Mi",
    "default.extraVolumeMounts[0].name=extra",
    "default.extraVolumeMounts[0].mountPath=/var/extra",
    "default.extraEnv[0].name=EXTRA",
    "default.extraEnv[0].value=on",
)
CASES = [
    pytest.param((), (), id="defaults"),
    pytest.param((), ALL_ON, id="all-optional-on"),
    *[pytest.param((f,), (), id=f"example-{f.stem}") for f in EXAMPLES],
]
SECRET_ENV = re.compile(r"(DATABASE_URL|SECRET|PASSWORD|TOKEN)$")


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def component_of(doc: dict[str, Any]) -> str | None:
    return doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component")


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {component_of(d): d for d in by_kind(docs, "Deployment")}
    assert None not in out, "every Deployment carries app.kubernetes.io/component"
    return out  # type: ignore[return-value]


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload that runs pods."""
    out = []
    for d in docs:
        kind = d.get("kind")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            out.append((f"{kind}/{d['metadata']['name']}", d["spec"]["template"]["spec"]))
        elif kind == "CronJob":
            spec = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            out.append((f"CronJob/{d['metadata']['name']}", spec))
        elif kind == "Pod":
            out.append((f"Pod/{d['metadata']['name']}", d["spec"]))
    return out


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"unexpected selector form {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def enabled_components(values_files: tuple[Path, ...]) -> set[str]:
    import yaml

    enabled = set(COMPONENTS)
    for f in values_files:
        comps = (yaml.safe_load(f.read_text()) or {}).get("components", {})
        for name, comp in comps.items():
            if comp and comp.get("enabled") is False:
                enabled.discard(name)
    return enabled


# ---------------------------------------------------------------------------------------------
# lint, render, validate


@pytest.mark.parametrize(
    "values_files", [(), *[(f,) for f in EXAMPLES]], ids=["defaults", *[f.stem for f in EXAMPLES]]
)
def test_helm_lint_is_clean(helm: str, values_files: tuple[Path, ...]) -> None:
    cmd = [helm, "lint", str(CHART), "--strict", "--kube-version", "1.27.0"]
    for f in values_files:
        cmd += ["-f", str(f)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_examples_exist() -> None:
    assert MANAGED in EXAMPLES and MINIMAL in EXAMPLES


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_rendered_manifests_match_kubernetes_schemas(
    render: Any, kube_validate: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    docs = render(values_files, sets)
    assert docs, "the chart rendered nothing"
    errors = list(kube_validate.validate_documents(docs))
    assert errors == []


def test_validator_rejects_a_broken_manifest(render: Any, kube_validate: Any) -> None:
    """The offline validation is not vacuous: a misspelt field and a wrong type are caught."""
    typo = by_kind(render(), "Deployment")[0]
    typo["spec"]["template"]["spec"]["containers"][0]["securityContext"][
        "readOnlyRootFilesytem"
    ] = True
    wrong_type = by_kind(render(), "Deployment")[0]
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80"
    assert list(kube_validate.validate_documents(by_kind(render(), "Deployment"))) == []
    errors = list(kube_validate.validate_documents([typo]))
    assert errors and all("readOnlyRootFilesytem" in e for e in errors), errors
    errors = list(kube_validate.validate_documents([wrong_type]))
    assert errors and all("containerPort" in e for e in errors), errors


# ---------------------------------------------------------------------------------------------
# security


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_every_container_is_non_root_read_only_and_unprivileged(
    render: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    specs = pod_specs(render(values_files, sets))
    assert specs, "no workloads rendered"
    for where, spec in specs:
        pod_sc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, where
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        containers = spec.get("initContainers", []) + spec["containers"]
        for c in containers:
            sc = c.get("securityContext", {})
            who = f"{where} container {c['name']}"
            assert (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))) is True, who
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            assert uid is None or uid > 0, who
            assert sc.get("readOnlyRootFilesystem") is True, who
            assert sc.get("allowPrivilegeEscalation") is False, who
            assert sc.get("privileged", False) is False, who
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), who
            assert not sc.get("capabilities", {}).get("add"), who
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", who
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1, f"{who}: /tmp must be a writable emptyDir"
            assert "emptyDir" in volumes[tmp[0]["name"]], who


def test_service_accounts_do_not_mount_api_tokens(render: Any) -> None:
    sas = by_kind(render(), "ServiceAccount")
    assert {component_of(sa) for sa in sas} == set(COMPONENTS)
    assert all(sa.get("automountServiceAccountToken") is False for sa in sas)
    for comp, deploy in deployments(render()).items():
        spec = deploy["spec"]["template"]["spec"]
        names = {sa["metadata"]["name"] for sa in sas if component_of(sa) == comp}
        assert spec["serviceAccountName"] in names


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_no_secret_values_rendered(
    render: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    docs = render(values_files, sets)
    assert by_kind(docs, "Secret") == [], "the chart must only reference existing Secrets"
    checked = 0
    for where, spec in pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            for name, e in env_of(c).items():
                if SECRET_ENV.search(name):
                    checked += 1
                    assert "value" not in e, f"{where}: {name} is rendered as a plain value"
                    assert "secretKeyRef" in e.get("valueFrom", {}), f"{where}: {name}"
    assert checked > 0, "no secret-bearing variable was found: the check would be vacuous"


# ---------------------------------------------------------------------------------------------
# workloads


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_every_deployment_has_probes_resources_and_spread(
    render: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    docs = render(values_files, sets)
    deploys = deployments(docs)
    assert set(deploys) == enabled_components(values_files)
    for comp, d in deploys.items():
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports == {"http": PORTS[comp][0], "grpc": PORTS[comp][1]}, comp
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", comp
        assert c["readinessProbe"]["httpGet"]["port"] in ("http", PORTS[comp][0]), comp
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", comp
        startup = c["startupProbe"]
        tls = "_GRPC_TLS_CERT_FILE" in " ".join(env_of(c))
        if tls:  # kubelet's gRPC probe speaks plaintext only
            assert startup["httpGet"]["path"] == "/healthz", comp
        else:
            assert startup["grpc"]["port"] == PORTS[comp][1], comp
        res = c["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"], comp
        assert res["limits"]["memory"], comp
        assert spec["topologySpreadConstraints"], comp
        for tsc in spec["topologySpreadConstraints"]:
            assert matches(tsc["labelSelector"], d["spec"]["template"]["metadata"]["labels"])
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, comp
        assert spec["enableServiceLinks"] is False, comp


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_services_follow_the_conventions(
    render: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    docs = render(values_files, sets)
    services = {component_of(s): s for s in by_kind(docs, "Service")}
    for comp, d in deployments(docs).items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        env = env_of(c)
        p = comp.upper()
        assert c["args"] == ["serve", comp]
        assert env["ECOMOPS_ENV"]["value"] == "production"
        assert env[f"{p}_HTTP_PORT"]["value"] == str(PORTS[comp][0])
        assert env[f"{p}_GRPC_PORT"]["value"] == str(PORTS[comp][1])
        assert env[f"{p}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
        assert ("ECOMOPS_JWT_SECRET" in env) != ("ECOMOPS_JWT_JWKS_URL" in env), comp
        assert env["ECOMOPS_KAFKA_BOOTSTRAP"]["value"]
        svc = services[comp]
        assert matches(
            {"matchLabels": svc["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"]
        )
        assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {
            "http": PORTS[comp][0],
            "grpc": PORTS[comp][1],
        }
    if "order" in services:
        env = env_of(deployments(docs)["order"]["spec"]["template"]["spec"]["containers"][0])
        for dep in ("inventory", "pricing", "risk"):
            target = env[f"ORDER_{dep.upper()}_TARGET"]["value"]
            if dep in services:
                assert target == f"{services[dep]['metadata']['name']}:{PORTS[dep][1]}"
    if "support" in services:
        env = env_of(deployments(docs)["support"]["spec"]["template"]["spec"]["containers"][0])
        for dep in ("order", "pricing"):
            target = env[f"SUPPORT_{dep.upper()}_TARGET"]["value"]
            if dep in services:
                assert target == f"{services[dep]['metadata']['name']}:{PORTS[dep][1]}"


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_pdb_and_hpa_for_every_enabled_service(
    render: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    docs = render(values_files, sets)
    deploys = deployments(docs)
    pdbs = by_kind(docs, "PodDisruptionBudget")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    if values_files == (MINIMAL,):  # the minimal example switches both off, one replica each
        assert pdbs == [] and hpas == []
        assert all(d["spec"]["replicas"] == 1 for d in deploys.values())
        return
    for comp, d in deploys.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        own_pdbs = [p for p in pdbs if matches(p["spec"]["selector"], labels)]
        assert len(own_pdbs) == 1, comp
        assert d["apiVersion"] == "apps/v1"
        own_hpas = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == d["metadata"]["name"]]
        assert len(own_hpas) == 1, comp
        assert own_hpas[0]["apiVersion"] == "autoscaling/v2"
        assert own_hpas[0]["spec"]["minReplicas"] >= 2, comp
        assert "replicas" not in d["spec"], f"{comp}: the HPA owns the replica count"
    assert len(pdbs) == len(hpas) == len(deploys)
    assert all(p["apiVersion"] == "policy/v1" for p in pdbs)


# ---------------------------------------------------------------------------------------------
# network policy


def _grpc_peers(policy: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    key = "from" if direction == "ingress" else "to"
    return [peer for rule in policy["spec"].get(direction, []) for peer in rule.get(key, [])]


@pytest.mark.parametrize(("values_files", "sets"), CASES)
def test_network_policies_allow_only_what_each_service_needs(
    render: Any, values_files: tuple[Path, ...], sets: tuple[str, ...]
) -> None:
    docs = render(values_files, sets)
    deploys = deployments(docs)
    policies = by_kind(docs, "NetworkPolicy")
    assert len(policies) == len(deploys)
    for comp, d in deploys.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        (policy,) = [p for p in policies if matches(p["spec"]["podSelector"], labels)]
        assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"], comp
        egress = policy["spec"]["egress"]
        egress_ports = {p["port"] for rule in egress for p in rule.get("ports", [])}
        assert 53 in egress_ports, f"{comp}: DNS"
        # no rule may open every port to everyone
        for rule in egress + policy["spec"]["ingress"]:
            assert rule.get("ports"), f"{comp}: a rule without ports allows all ports"
        # calls to other ecomops pods: only order → inventory, pricing, risk gRPC and
        # support → order, pricing gRPC
        peer_components = {
            peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            for peer in _grpc_peers(policy, "egress")
            if "namespaceSelector" not in peer
        } - {None}
        calls = {"order": {"inventory", "pricing", "risk"}, "support": {"order", "pricing"}}
        expected = calls.get(comp, set()) & set(deploys)
        assert peer_components == expected, comp
        callers = {
            peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
            for peer in _grpc_peers(policy, "ingress")
            if "namespaceSelector" not in peer and "ipBlock" not in peer
        } - {None}
        allowed_callers = {c for c, deps in calls.items() if comp in deps} & set(deploys)
        # Its own `helm test` Pod (tests.enabled, the default) checks /readyz and gRPC health.
        allowed_callers |= {f"{comp}-test"}
        assert callers == allowed_callers, comp


@pytest.mark.parametrize("sets", [(), ALL_ON], ids=["defaults", "all-optional-on"])
def test_network_policies_absent_when_disabled(render: Any, sets: tuple[str, ...]) -> None:
    docs = render((), (*sets, "networkPolicy.enabled=false"))
    assert by_kind(docs, "NetworkPolicy") == []
    assert len(by_kind(docs, "Deployment")) == len(COMPONENTS)


def test_managed_example_egress_uses_the_configured_cidrs(render: Any) -> None:
    docs = render((MANAGED,))
    policies = {component_of(p): p for p in by_kind(docs, "NetworkPolicy")}
    for comp in COMPONENTS:
        cidrs = {
            peer["ipBlock"]["cidr"]
            for peer in _grpc_peers(policies[comp], "egress")
            if "ipBlock" in peer
        }
        assert {"10.10.0.0/24", "10.10.1.0/24", "10.20.0.0/22"} <= cidrs, comp


# ---------------------------------------------------------------------------------------------
# enable / disable


@pytest.mark.parametrize("disabled", COMPONENTS)
def test_a_disabled_service_renders_nothing(render: Any, disabled: str) -> None:
    docs = render((), (*ALL_ON, f"components.{disabled}.enabled=false"))
    for d in docs:
        name = d["metadata"]["name"]
        assert component_of(d) not in (disabled, f"{disabled}-migrate"), name
        assert not re.search(rf"-{disabled}(-|$)", name), name
    for ing in by_kind(docs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert not path["backend"]["service"]["name"].endswith(f"-{disabled}")
    assert len(by_kind(docs, "Deployment")) == len(COMPONENTS) - 1


def test_minimal_example_runs_only_inventory_and_pricing(render: Any) -> None:
    docs = render((MINIMAL,))
    rendered = {component_of(d) for d in docs}
    assert rendered >= {"inventory", "pricing"}
    assert not rendered & {"order", "recommendation", "risk", "support"}


# ---------------------------------------------------------------------------------------------
# hooks, ingress, monitoring, TLS


def test_migration_jobs_are_pre_install_and_pre_upgrade_hooks(render: Any) -> None:
    jobs = {component_of(j): j for j in by_kind(render(), "Job")}
    assert set(jobs) == {f"{c}-migrate" for c in COMPONENTS}, "topics Job is off by default"
    for comp in COMPONENTS:
        job = jobs[f"{comp}-migrate"]
        ann = job["metadata"]["annotations"]
        assert set(ann["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
        assert "before-hook-creation" in ann["helm.sh/hook-delete-policy"]
        (c,) = job["spec"]["template"]["spec"]["containers"]
        assert c["args"] == ["migrate", comp]
        assert f"{comp.upper()}_DATABASE_URL" in env_of(c)
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_topic_job_is_optional_and_runs_topics_create(render: Any) -> None:
    jobs = [
        j
        for j in by_kind(render((), ("kafka.topics.create=true",)), "Job")
        if component_of(j) == "topics"
    ]
    assert len(jobs) == 1
    (c,) = jobs[0]["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["topics", "create"]
    assert "pre-install" in jobs[0]["metadata"]["annotations"]["helm.sh/hook"]


ROUTES = {
    "order": ["/v1/orders", "/v1/carts", "/v1/returns"],
    "inventory": [
        "/v1/skus",
        "/v1/warehouses",
        "/v1/stock",
        "/v1/reservations",
        "/v1/replenishment",
        "/v1/inventory",
    ],
    "pricing": [
        "/v1/prices",
        "/v1/promotions",
        "/v1/quotes",
        "/v1/competitor-prices",
        "/v1/pricing",
    ],
    "recommendation": ["/v1/behavior-events", "/v1/recommendations", "/v1/segments", "/v1/funnel"],
    "risk": [
        "/v1/assessments",
        "/v1/rules",
        "/v1/blocklist",
        "/v1/models",
        "/v1/reviews",
        "/v1/labels",
        "/v1/risk",
    ],
    "support": ["/v1/tickets", "/v1/articles", "/v1/support"],
}


def test_rest_ingress_routes_each_prefix_to_its_owner(render: Any) -> None:
    docs = render((), ("ingress.rest.enabled=true",))
    services = {s["metadata"]["name"]: component_of(s) for s in by_kind(docs, "Service")}
    (ing,) = [i for i in by_kind(docs, "Ingress") if i["metadata"]["name"].endswith("-rest")]
    routed = {}
    for rule in ing["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            assert p["pathType"] == "Prefix"
            assert p["backend"]["service"]["port"] == {"name": "http"}
            routed[p["path"]] = services[p["backend"]["service"]["name"]]
    assert routed == {path: comp for comp, paths in ROUTES.items() for path in paths}
    assert not [i for i in by_kind(render(), "Ingress")], "ingress is opt-in"


def test_grpc_ingress_per_service_uses_grpc_backends(render: Any) -> None:
    docs = render((), ALL_ON)
    services = {s["metadata"]["name"]: component_of(s) for s in by_kind(docs, "Service")}
    grpc = [i for i in by_kind(docs, "Ingress") if i["metadata"]["name"].endswith("-grpc")]
    assert {component_of(i) for i in grpc} == set(COMPONENTS)
    for ing in grpc:
        comp = component_of(ing)
        proto = ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"]
        assert proto == ("GRPCS" if comp == "risk" else "GRPC"), comp
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                if p["path"].startswith("/grpc."):  # reflection/health on a service's own host
                    assert rule["host"] != "grpc.example.com", comp
                    continue
                assert p["path"].startswith(f"/ecomops.{comp}.v1."), p["path"]
                assert services[p["backend"]["service"]["name"]] == comp
                assert p["backend"]["service"]["port"] == {"name": "grpc"}


def test_grpc_ingress_routes_reflection_and_health_only_on_a_service_host(render: Any) -> None:
    sets = ("ingress.grpc.enabled=true", "ingress.grpc.hosts.order=order-grpc.example.com")
    grpc = {
        component_of(i): i
        for i in by_kind(render((), sets), "Ingress")
        if i["metadata"]["name"].endswith("-grpc")
    }
    extra = {
        "/grpc.reflection.v1.ServerReflection",
        "/grpc.reflection.v1alpha.ServerReflection",
        "/grpc.health.v1.Health",
    }
    for comp, ing in grpc.items():
        (rule,) = ing["spec"]["rules"]
        paths = {p["path"] for p in rule["http"]["paths"]}
        if comp == "order":
            assert rule["host"] == "order-grpc.example.com"
            assert paths == {"/ecomops.order.v1.OrderService"} | extra
        else:
            assert rule["host"] == "grpc.example.com"
            assert not paths & extra, comp


def test_service_monitor_is_optional(render: Any) -> None:
    assert by_kind(render(), "ServiceMonitor") == []
    monitors = by_kind(render((MANAGED,)), "ServiceMonitor")
    assert {component_of(m) for m in monitors} == set(COMPONENTS)
    for m in monitors:
        assert m["apiVersion"] == "monitoring.coreos.com/v1"
        assert m["spec"]["endpoints"][0]["path"] == "/metrics"
        assert m["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_managed_example_wires_sasl_jwks_and_partner_mtls(render: Any) -> None:
    docs = render((MANAGED,))
    deploys = deployments(docs)
    for d in deploys.values():
        env = env_of(d["spec"]["template"]["spec"]["containers"][0])
        assert env["ECOMOPS_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert env["ECOMOPS_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        ref = env["ECOMOPS_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "ecomops-kafka", "key": "password"}
        assert env["ECOMOPS_JWT_JWKS_URL"]["value"].startswith("https://")
        assert "ECOMOPS_JWT_SECRET" not in env
        assert env["ECOMOPS_SERVICE_TOKEN_FILE"]["value"]
    spec = deploys["order"]["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    env = env_of(c)
    files = {
        k: env[k]["value"]
        for k in (
            "ORDER_GRPC_TLS_CERT_FILE",
            "ORDER_GRPC_TLS_KEY_FILE",
            "ORDER_GRPC_TLS_CLIENT_CA_FILE",
        )
    }
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path in files.values():
        (mount,) = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
        assert mount.get("readOnly") is True
        assert volumes[mount["name"]]["secret"]["secretName"] == "ecomops-order-grpc-tls"
    for comp in ("inventory", "pricing", "recommendation", "risk"):
        env = env_of(deploys[comp]["spec"]["template"]["spec"]["containers"][0])
        assert f"{comp.upper()}_GRPC_TLS_CERT_FILE" not in env


# ---------------------------------------------------------------------------------------------
# values schema


@pytest.mark.parametrize(
    "bad",
    [
        "bogus=1",
        "components.order.replicaz=3",
        "components.shipping.enabled=true",
        "default.autoscaling.maxReplica=3",
        "kafka.sasl.passwrd=hunter2",
        "ingress.rest.routes.billing={/v1/bills}",
    ],
)
def test_schema_rejects_unknown_keys(render: Any, bad: str) -> None:
    with pytest.raises(RuntimeError, match="additional propert"):
        render((), (bad,))


@pytest.mark.parametrize(
    "bad",
    [
        "components.order.httpPort=eighty",
        "components.order.httpPort=70000",
        "default.autoscaling.enabled=sometimes",
        "default.replicas=two",
        "config.env=staging",
        "kafka.securityProtocol=TLS",
        "networkPolicy.enabled=1",
    ],
)
def test_schema_rejects_wrong_types_and_values(render: Any, bad: str) -> None:
    with pytest.raises(RuntimeError, match="schema"):
        render((), (bad,))


def test_notes_render(helm: str, render: Any, tmp_path: Path) -> None:
    """NOTES.txt renders (helm template skips it: render a copy as a regular template)."""
    chart = tmp_path / "ecomops"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "zz-notes.yaml").write_text(
        "notes: |\n" + "".join(f"  {line}\n" for line in notes.splitlines())
    )
    docs = render((MANAGED,), (), chart=chart)
    (text,) = [d["notes"] for d in docs if "notes" in d]
    assert "order: ecomops-order (8001 / 9001), gRPC over TLS with client certificates" in text
    assert "ecomops-kafka (key password)" in text
    assert "helm test ecomops -n shop --logs" in text
