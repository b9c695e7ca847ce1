"""The console as a component of the Helm chart: off by default; when on, a Deployment running
the image's `ecomops console`, a Service, and a NetworkPolicy whose egress reaches only DNS and
the five services' HTTP ports (no database, no Kafka)."""

from __future__ import annotations

from typing import Any

import pytest

from ecomops_platform import cli

SERVICES = ("order", "inventory", "pricing", "recommendation", "risk", "support")
ON = ("console.enabled=true", "console.sessionSecret.secretName=console-session")


def _console(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        d
        for d in docs
        if d.get("kind") == kind
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "console"
    ]


def test_the_console_is_off_by_default(render: Any) -> None:
    docs = render()
    assert not [d for d in docs if d["metadata"]["name"].endswith("-console")]


def test_the_console_needs_its_session_secret(render: Any) -> None:
    with pytest.raises(RuntimeError, match=r"console\.sessionSecret\.secretName is required"):
        render((), ("console.enabled=true",))


def test_the_console_deployment_runs_ecomops_console(render: Any, kube_validate: Any) -> None:
    docs = render((), ON)
    (deploy,) = _console(docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert "command" not in container
    parsed = cli.build_parser().parse_args(container["args"])
    assert parsed.func is cli.cmd_console
    env = {e["name"]: e for e in container["env"]}
    for svc in SERVICES:
        assert env[f"CONSOLE_{svc.upper()}_URL"]["value"] == (
            f"http://ecomops-{svc}:{8001 + SERVICES.index(svc)}"
        )
    assert env["CONSOLE_SESSION_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "console-session",
        "key": "session-secret",
    }
    assert env["CONSOLE_HTTP_HOST"]["value"] == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (service,) = _console(docs, "Service")
    assert service["spec"]["ports"][0]["port"] == 8000
    assert list(kube_validate.validate_documents(_console(docs, "Deployment"))) == []


def test_the_console_reaches_only_the_services_http_ports(render: Any) -> None:
    docs = render((), ON)
    (policy,) = _console(docs, "NetworkPolicy")
    egress = policy["spec"]["egress"]
    ports = sorted(p["port"] for rule in egress for p in rule.get("ports", []))
    assert ports == [53, 53, 8001, 8002, 8003, 8004, 8005, 8006]
    targets = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in egress
        for peer in rule.get("to", [])
        if "podSelector" in peer
        and "app.kubernetes.io/component" in peer["podSelector"].get("matchLabels", {})
    }
    assert targets == set(SERVICES)


def test_a_disabled_service_is_not_a_console_egress(render: Any) -> None:
    docs = render((), (*ON, "components.risk.enabled=false"))
    (policy,) = _console(docs, "NetworkPolicy")
    ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", []))
    assert 8005 not in ports


def test_oidc_settings_reach_the_console(render: Any) -> None:
    docs = render(
        (),
        (
            *ON,
            "console.oidc.issuer=https://id.example.com",
            "console.oidc.clientId=ecomops-console",
            "console.oidc.redirectUrl=https://console.example.com/api/oidc/callback",
            "console.oidc.clientSecret.secretName=console-oidc",
        ),
    )
    (deploy,) = _console(docs, "Deployment")
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CONSOLE_OIDC_ISSUER"]["value"] == "https://id.example.com"
    assert env["CONSOLE_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "console-oidc"
