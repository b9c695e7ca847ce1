"""The ``ecomops`` command line for developers and SREs."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import registry

LOCAL_ENV_FILE = Path(".local/run/env")


def _load_local_env() -> None:
    """Outside a configured environment, use the local stack's generated settings."""
    if os.environ.get("ECOMOPS_KAFKA_BOOTSTRAP") or not LOCAL_ENV_FILE.exists():
        return
    for line in LOCAL_ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export ") :]
        if "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            os.environ.setdefault(name.strip(), value.strip().strip("'\""))


def _services(names: list[str]) -> list[str]:
    available = registry.implemented()
    if not names:
        return available
    for name in names:
        if name not in registry.SERVICES:
            raise SystemExit(f"unknown service {name!r}; one of: {', '.join(registry.SERVICES)}")
        if name not in available:
            raise SystemExit(f"service {name!r} is not built in this version")
    return names


def cmd_serve(args: argparse.Namespace) -> int:
    from .runtime import run

    service = registry.load(args.service)
    run(service.serve_forever())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from .migrations import upgrade

    for name in _services([] if args.service == "all" else [args.service]):
        upgrade(name, registry.database_url(name), args.revision)
        print(f"{name}: database at {args.revision}")
    return 0


def cmd_topics_create(args: argparse.Namespace) -> int:
    from .events import create_topics
    from .registry import all_topics
    from .settings import CommonSettings

    created = asyncio.run(create_topics(CommonSettings()))
    for topic in all_topics():
        print(f"{topic}: {'created' if topic in created else 'exists'}")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    from .openapi import write_documents

    for path in write_documents(Path(args.output), _services(args.services)):
        print(path)
    return 0


def _dlq_topics(topic: str | None) -> list[str] | None:
    """The dead-letter topic of ``topic`` (given with or without .dlq); None means all."""
    if topic is None:
        return None
    return [topic if topic.endswith(".dlq") else f"{topic}.dlq"]


def cmd_dlq_list(args: argparse.Namespace) -> int:
    import json

    from .dlq import read_dead_letters
    from .settings import CommonSettings

    letters = asyncio.run(read_dead_letters(CommonSettings(), _dlq_topics(args.topic)))
    if args.json:
        for letter in letters:
            print(json.dumps(letter.summary()))
        return 0
    if not letters:
        print("no dead letters")
        return 0
    print(f"{'age':>8}  {'topic':<30} {'position':<10} {'id':<36}  consumer / attempts / error")
    for letter in letters:
        row = letter.summary()
        print(
            f"{_age(row['age_seconds']):>8}  {row['topic']:<30} {row['position']:<10} "
            f"{row['id']:<36}  {row['consumer']} / {row['attempts']} / {row['error']}"
        )
    print(f"{len(letters)} dead letter(s)")
    return 0


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from .dlq import read_dead_letters, replay
    from .settings import CommonSettings

    settings = CommonSettings()
    letters = asyncio.run(read_dead_letters(settings, _dlq_topics(args.topic)))
    if not args.all:
        letters = [d for d in letters if d.id == args.id or f"{d.partition}:{d.offset}" == args.id]
        if not letters:
            print(f"no dead letter {args.id!r} in {args.topic}", file=sys.stderr)
            return 1
    from .cards import PAYLOAD_DROPPED_HEADER

    for letter in [d for d in letters if PAYLOAD_DROPPED_HEADER in d.headers]:
        print(f"skipped {letter.id}: its payload carried a card number and was dropped")
    letters = [d for d in letters if PAYLOAD_DROPPED_HEADER not in d.headers]
    sent = asyncio.run(replay(settings, letters))
    for letter in letters:
        print(f"replayed {letter.id} to {letter.original_topic}")
    print(f"{sent} dead letter(s) replayed; consumers apply each event once (inbox)")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .auth import mint_token

    secret = os.environ.get("ECOMOPS_JWT_SECRET")
    if not secret:
        print(
            "ECOMOPS_JWT_SECRET is not set and no local stack env was found (.local/run/env);"
            " start the stack with 'make run' first",
            file=sys.stderr,
        )
        return 2
    print(
        mint_token(
            secret,
            args.sub,
            args.role,
            ttl_seconds=args.ttl,
            issuer=os.environ.get("ECOMOPS_JWT_ISSUER", "ecomops"),
            audience=os.environ.get("ECOMOPS_JWT_AUDIENCE", "ecomops"),
        )
    )
    return 0


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local URL
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


def cmd_run(args: argparse.Namespace) -> int:
    from .migrations import upgrade

    names = _services(args.services)
    if not names:
        print("no service is built yet", file=sys.stderr)
        return 1
    cmd_topics_create(args)
    for name in names:
        upgrade(name, registry.database_url(name), "head")
        print(f"{name}: migrated")
    exe = shutil.which("ecomops") or sys.argv[0]
    log_dir = Path(os.environ.get("ECOMOPS_LOG_DIR", ".local/run/logs"))
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        for name in names:
            log_file = (log_dir / f"{name}.log").open("ab")
            procs[name] = subprocess.Popen(  # noqa: S603 - our own executable
                [exe, "serve", name],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        rows = []
        for name in names:
            info = registry.SERVICES[name]
            http = int(os.environ.get(f"{info.env_prefix}HTTP_PORT", info.http_port))
            grpc_port = int(os.environ.get(f"{info.env_prefix}GRPC_PORT", info.grpc_port))
            ok = _wait_ready(f"http://127.0.0.1:{http}/readyz", procs[name], args.timeout)
            if not ok:
                print(
                    f"{name} did not become ready; see {log_dir / (name + '.log')}", file=sys.stderr
                )
                return 1
            rows.append(
                (
                    name,
                    f"http://127.0.0.1:{http}/v1",
                    f"http://127.0.0.1:{http}/docs",
                    f"127.0.0.1:{grpc_port}",
                )
            )
        console_url = None
        if not args.services and importlib.util.find_spec("console_service") is not None:
            console_url = _start_console(procs, log_dir, rows, args.timeout)
            if console_url is None:
                return 1
        print()
        print(f"{'service':<16}{'REST':<32}{'OpenAPI docs':<36}gRPC")
        for row in rows:
            print(f"{row[0]:<16}{row[1]:<32}{row[2]:<36}{row[3]}")
        if console_url:
            print(f"{'console':<16}{console_url:<32}{'(sign in with an ops token)':<36}-")
        print()
        print("Get a token:   .venv/bin/ecomops token --sub ops-1 --role ops")
        print("               (roles: customer, ops, partner, service; --ttl SECONDS)")
        print(f"Logs:          {log_dir}/<service>.log        Ctrl-C stops everything.")
        sys.stdout.flush()
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(
                        f"{name} exited with {proc.returncode}; see {log_dir / (name + '.log')}",
                        file=sys.stderr,
                    )
                    stopping = True
            time.sleep(0.5)
        return 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            print(f"{name}: stopped")


def cmd_console(args: argparse.Namespace) -> int:
    """Serve the operations console in this process (what the image runs for it)."""
    if importlib.util.find_spec("console_service") is None:
        print("the console (services/console) is not installed", file=sys.stderr)
        return 2
    os.execv(sys.executable, [sys.executable, "-m", "console_service"])  # noqa: S606
    return 0  # pragma: no cover - execv does not return


def _start_console(
    procs: dict[str, subprocess.Popen[bytes]],
    log_dir: Path,
    rows: list[tuple[str, str, str, str]],
    timeout: float,
) -> str | None:
    """The operations console (``python -m console_service``) beside the services it calls;
    its URL once ready, None when it did not start."""
    env = dict(os.environ)
    for name, rest, _docs, _grpc in rows:
        env.setdefault(f"CONSOLE_{name.upper()}_URL", rest.removesuffix("/v1"))
    port = int(env.get("CONSOLE_HTTP_PORT", "8000"))
    log_file = (log_dir / "console.log").open("ab")
    procs["console"] = subprocess.Popen(
        [sys.executable, "-m", "console_service"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    if not _wait_ready(f"http://127.0.0.1:{port}/readyz", procs["console"], timeout):
        print(f"console did not become ready; see {log_dir / 'console.log'}", file=sys.stderr)
        return None
    return f"http://127.0.0.1:{port}/"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecomops",
        description="ecomops: run, migrate and operate the e-commerce operations services.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = list(registry.SERVICES)

    p = sub.add_parser(
        "run",
        help="migrate and run services in the foreground until Ctrl-C",
        description="Create topics, migrate, start the given services (default: "
        "all that are built), wait until ready, print their URLs.",
    )
    p.add_argument("services", nargs="*", metavar="SERVICE", help=f"one of {names}")
    p.add_argument("--timeout", type=float, default=90, help="seconds to wait for readiness")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "serve",
        help="serve one service (REST and gRPC) in this process",
        description="Serve one service until SIGTERM/SIGINT; configuration from "
        "ECOMOPS_* and <SERVICE>_* environment variables.",
    )
    p.add_argument("service", choices=names)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "console",
        help="serve the operations console (web page and BFF) in this process",
        description="Serve the console until SIGTERM/SIGINT; configuration from CONSOLE_* "
        "and ECOMOPS_JWT_* environment variables (docs/services/console.md).",
    )
    p.set_defaults(func=cmd_console)

    p = sub.add_parser(
        "migrate",
        help="apply database migrations of a service",
        description="Upgrade the service's database (its <SERVICE>_DATABASE_URL).",
    )
    p.add_argument("service", choices=[*names, "all"])
    p.add_argument("--revision", default="head", help="target revision (default: head)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("topics", help="manage Kafka topics")
    tsub = p.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    t = tsub.add_parser(
        "create",
        help="create every ecomops topic and its dead-letter topic",
        description="Idempotent: existing topics are left as they are.",
    )
    t.set_defaults(func=cmd_topics_create)

    p = sub.add_parser("dlq", help="inspect and replay dead letters")
    dsub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    d = dsub.add_parser(
        "list",
        help="show dead letters with their error, consumer and age",
        description="Reads the dead-letter topics from the beginning (nothing is consumed).",
    )
    d.add_argument("--topic", help="one topic (e.g. ecomops.order.v1 or its .dlq); default all")
    d.add_argument("--json", action="store_true", help="one JSON object per line")
    d.set_defaults(func=cmd_dlq_list)
    d = dsub.add_parser(
        "replay",
        help="re-publish dead letters to their original topic",
        description="Fix the cause first. Replaying twice is harmless: consumers apply an "
        "event id once.",
    )
    d.add_argument("--topic", required=True, help="the topic (or its .dlq) to replay from")
    which = d.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="a dead letter's id (ce_id, or partition:offset)")
    which.add_argument("--all", action="store_true", help="every dead letter of the topic")
    d.set_defaults(func=cmd_dlq_replay)

    p = sub.add_parser(
        "openapi",
        help="write every service's OpenAPI document and a combined one",
        description="Write <service>.json for each service (what it serves at /openapi.json) "
        "and ecomops.json (every service's /v1/ operations in one document) into --output. "
        "Renders offline: connects to nothing.",
    )
    p.add_argument("services", nargs="*", metavar="SERVICE", help=f"one of {names}; default all")
    p.add_argument("--output", "-o", required=True, help="directory to write into")
    p.set_defaults(func=cmd_openapi)

    p = sub.add_parser(
        "token",
        help="print a bearer token for the local stack",
        description="Sign an HS256 token with ECOMOPS_JWT_SECRET (the local stack's "
        "generated secret).",
    )
    p.add_argument("--sub", required=True, help="subject: the customer id for customers")
    p.add_argument("--role", required=True, choices=["customer", "ops", "partner", "service"])
    p.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    p.set_defaults(func=cmd_token)

    for name, info in registry.SERVICES.items():
        if importlib.util.find_spec(f"{info.package}.cli") is None:
            continue
        p = sub.add_parser(name, help=f"{name} service commands", add_help=False)
        p.set_defaults(func=lambda a, _n=name: _service_cli(_n, a.service_args))
    return parser


def _service_cli(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"{registry.SERVICES[name].package}.cli")
    return int(module.main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    _load_local_env()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in registry.SERVICES and argv[0] not in ("run", "serve", "migrate"):
        # Service commands parse their own arguments, --help included.
        args = parser.parse_args(argv[:1])
        args.service_args = argv[1:]
    else:
        args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
