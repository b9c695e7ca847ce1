"""The five services: names, default ports, and how to load one (by its import root)."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import Service


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    http_port: int
    grpc_port: int

    @property
    def package(self) -> str:
        return f"{self.name}_service"

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper()}_"

    @property
    def database(self) -> str:
        return f"ecomops_{self.name}"


SERVICES: dict[str, ServiceInfo] = {
    info.name: info
    for info in (
        ServiceInfo("order", 8001, 9001),
        ServiceInfo("inventory", 8002, 9002),
        ServiceInfo("pricing", 8003, 9003),
        ServiceInfo("recommendation", 8004, 9004),
        ServiceInfo("risk", 8005, 9005),
    )
}


def implemented() -> list[str]:
    """Services whose package has a bootstrap module (the others are not built yet)."""
    return [
        name
        for name, info in SERVICES.items()
        if importlib.util.find_spec(info.package) is not None
        and importlib.util.find_spec(f"{info.package}.bootstrap") is not None
    ]


def load(name: str) -> Service:
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(SERVICES)}")
    module = importlib.import_module(f"{SERVICES[name].package}.bootstrap")
    service: Service = module.create_service()
    return service


def database_url(name: str) -> str:
    module = importlib.import_module(f"{SERVICES[name].package}.bootstrap")
    settings = module.load_settings()
    return str(settings.database_url)
