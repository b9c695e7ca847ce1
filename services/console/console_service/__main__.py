"""``python -m console_service``: serve the console (``CONSOLE_HTTP_HOST``/``_PORT``, default
127.0.0.1:8000) until SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from ecomops_platform.cli import _load_local_env
from ecomops_platform.logging import configure_logging
from ecomops_platform.settings import CommonSettings

from .app import create_console
from .settings import ConsoleSettings


def main() -> None:
    _load_local_env()
    settings = ConsoleSettings()
    common = CommonSettings()
    configure_logging("console", common.log_level)
    uvicorn.run(
        create_console(settings, common),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        http="httptools",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
