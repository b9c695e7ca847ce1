"""The services this installation has, found through the ``ecomops.services`` entry points.

Each service names its ``bootstrap`` module in ``pyproject.toml``::

    [project.entry-points."ecomops.services"]
    order = "order_service.bootstrap:SPEC"

``SPEC`` being the service's :class:`~ecomops_platform.spec.ServiceSpec`. Names are read
from the installed metadata without importing anything; a service's code is imported only when
it is needed (``serve``, ``migrate``, its ports for the URL table).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import Service
    from .spec import ServiceSpec

from .topics import BEHAVIOR_TOPIC, dlq_topic, service_topic

GROUP = "ecomops.services"


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    #: The module exporting the spec (``<name>_service.bootstrap``) and the spec's name there.
    module: str
    attribute: str = "SPEC"

    @property
    def package(self) -> str:
        return self.module.split(".", 1)[0]

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper()}_"

    @property
    def database(self) -> str:
        return f"ecomops_{self.name}"

    @property
    def spec(self) -> ServiceSpec[Any, Any]:
        spec: ServiceSpec[Any, Any] = getattr(importlib.import_module(self.module), self.attribute)
        if spec.name != self.name:
            raise SystemExit(f"entry point {self.name!r} names a spec called {spec.name!r}")
        return spec

    @property
    def http_port(self) -> int:
        return self._port("http_port")

    @property
    def grpc_port(self) -> int:
        return self._port("grpc_port")

    def _port(self, field: str) -> int:
        module = importlib.import_module(self.module)
        if not hasattr(module, self.attribute):  # TRANSITION, see _legacy
            from .settings import ServiceSettings

            settings_module = importlib.import_module(f"{self.package}.settings")
            cls = next(
                v
                for v in vars(settings_module).values()
                if isinstance(v, type)
                and issubclass(v, ServiceSettings)
                and v is not ServiceSettings
            )
            return int(cls.model_fields[field].default)
        return int(self.spec.settings.model_fields[field].default)


def _discover() -> dict[str, ServiceInfo]:
    found: dict[str, ServiceInfo] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            raise SystemExit(f"two services are called {ep.name!r} ({ep.value}, {found[ep.name]})")
        found[ep.name] = ServiceInfo(ep.name, ep.module, ep.attr or "SPEC")
    return found


SERVICES: dict[str, ServiceInfo] = _discover()


def implemented() -> list[str]:
    """Every installed service, in the order of the entry points."""
    return list(SERVICES)


def info(name: str) -> ServiceInfo:
    if name not in SERVICES:
        raise SystemExit(f"unknown service {name!r}; one of: {', '.join(SERVICES)}")
    return SERVICES[name]


def all_topics() -> list[str]:
    """Every topic of this installation: each installed service's, the behaviour topic, and
    their dead-letter topics."""
    base = [service_topic(s) for s in SERVICES] + [BEHAVIOR_TOPIC]
    return base + [dlq_topic(t) for t in base]


def load(name: str) -> Service:
    return info(name).spec.create()


def database_url(name: str) -> str:
    return str(info(name).spec.load_settings().database_url)
