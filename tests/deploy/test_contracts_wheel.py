"""The partners' package, ecomops-contracts, as a partner installs it: built from libs/contracts
into a wheel, installed into a fresh virtualenv with nothing but its dependencies (offline, from
uv's cache), then the quickstart client of docs/partners.md (docs/examples/partner_client.py)
imported from there, type-checked with mypy --strict against the package's typing stubs, and
run against a gRPC server that serves the package's own stubs in that virtualenv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import shipped

ROOT = shipped.ROOT
CLIENT = ROOT / "docs" / "examples" / "partner_client.py"

# A stand-in inventory service built from the installed package only.
SERVER = """
import sys
from concurrent import futures

import grpc
from ecomops.inventory.v1 import inventory_service_pb2 as pb
from ecomops.inventory.v1 import inventory_service_pb2_grpc as pb_grpc


class Inventory(pb_grpc.InventoryServiceServicer):
    def GetAvailability(self, request, context):
        if dict(context.invocation_metadata()).get("authorization") != "Bearer t0ken":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        return pb.GetAvailabilityResponse(
            items=[
                pb.SkuAvailability(sku=s, available=3, status=pb.SKU_STATUS_ACTIVE)
                for s in request.skus
            ]
        )


server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
pb_grpc.add_InventoryServiceServicer_to_server(Inventory(), server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
"""


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    env = shipped.clean_env(
        os.environ,
        UV_CACHE_DIR=str(ROOT / ".local" / "cache" / "uv"),
        UV_PYTHON_DOWNLOADS="never",
    )
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    return env


@pytest.fixture(scope="module")
def wheel(uv: str, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("contracts-dist")
    shipped.run_ok(
        [uv, "build", "--wheel", "--out-dir", str(out), str(ROOT / "libs" / "contracts")], env=env
    )
    (path,) = out.glob("ecomops_contracts-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(
    uv: str, env: dict[str, str], wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    base = tmp_path_factory.mktemp("contracts-venv")
    venv = base / "venv"
    shipped.run_ok([uv, "venv", "--quiet", "--python", "3.11", str(venv)], cwd=base, env=env)
    py = str(venv / "bin" / "python")
    # The wheel with what it declares, and the protobuf typing stubs a typed client uses.
    for offline in (["--offline"], []):  # the cache first; the index if the cache lacks a file
        install = [uv, "pip", "install", "--quiet", *offline, "--python", py]
        proc = subprocess.run(
            [*install, str(wheel), "types-protobuf"],
            cwd=base,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            break
    assert proc.returncode == 0, proc.stderr
    shipped.run_ok([uv, "pip", "check", "--python", py], cwd=base, env=env)
    return venv


def test_the_wheel_holds_the_contracts_and_depends_on_protobuf_and_grpcio_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(meta).decode()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"ecomops"}
    generated = {
        p.relative_to(ROOT / "libs" / "contracts").as_posix()
        for p in (ROOT / "libs" / "contracts" / "ecomops").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert generated == set(names) - {n for n in names if ".dist-info/" in n}
    assert "ecomops/py.typed" in names and "ecomops/order/v1/order_service_pb2.pyi" in names
    requires = sorted(
        line.split(":", 1)[1].strip().split(">")[0].split("<")[0].split(";")[0]
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    )
    assert requires == ["grpcio", "protobuf"], requires


def test_only_protobuf_and_grpcio_came_with_it(venv: Path, uv: str, env: dict[str, str]) -> None:
    listed = shipped.run_ok(
        [uv, "pip", "list", "--python", str(venv / "bin" / "python")], env=env
    ).stdout
    names = {line.split()[0].lower() for line in listed.splitlines()[2:] if line.strip()}
    # grpcio brings typing-extensions; types-protobuf is the client's choice, for mypy.
    expected = {"ecomops-contracts", "grpcio", "protobuf", "types-protobuf"}
    assert names - {"typing-extensions"} == expected, names


def test_the_quickstart_client_type_checks_against_the_package(venv: Path, tmp_path: Path) -> None:
    config = tmp_path / "mypy.ini"
    # grpcio ships no typing stubs: the client annotates what the stub answers instead.
    config.write_text("[mypy]\nstrict = True\n\n[mypy-grpc.*]\nignore_missing_imports = True\n")
    mypy = [
        sys.executable, "-m", "mypy", "--config-file", str(config), "--no-incremental",
        "--python-executable", str(venv / "bin" / "python"),
    ]  # fmt: skip
    client = tmp_path / "partner_client.py"
    client.write_text(CLIENT.read_text())
    shipped.run_ok([*mypy, str(client)], cwd=tmp_path)
    # The check has teeth: a field the message does not have is refused.
    broken = tmp_path / "broken_client.py"
    broken.write_text(
        CLIENT.read_text().replace("GetAvailabilityRequest(skus=", "GetAvailabilityRequest(sku=")
    )
    proc = subprocess.run(
        [*mypy, str(broken)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and 'Unexpected keyword argument "sku"' in proc.stdout, proc.stdout


def test_the_quickstart_client_calls_a_server_from_the_installed_package(
    venv: Path, tmp_path: Path
) -> None:
    py = str(venv / "bin" / "python")
    env = shipped.clean_env(os.environ)
    server = subprocess.Popen(
        [py, "-I", "-c", SERVER], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        assert port.isdigit(), port
        client_env = {
            **env,
            "ECOMOPS_GRPC": f"127.0.0.1:{port}",
            "ECOMOPS_GRPC_PLAINTEXT": "1",
            "ECOMOPS_TOKEN": "t0ken",
        }
        started = time.monotonic()
        ok = shipped.run_ok([py, "-I", str(CLIENT), "SKU-1", "SKU-2"], cwd=tmp_path, env=client_env)
        assert ok.stdout.splitlines() == [
            "SKU-1: 3 available (SKU_STATUS_ACTIVE)",
            "SKU-2: 3 available (SKU_STATUS_ACTIVE)",
        ]
        refused = subprocess.run(
            [py, "-I", str(CLIENT), "SKU-1"],
            cwd=tmp_path,
            env={**client_env, "ECOMOPS_TOKEN": "bad"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 1
        assert "refused: UNAUTHENTICATED: missing bearer token" in refused.stderr
        assert time.monotonic() - started < 60
    finally:
        server.kill()
        server.wait()
