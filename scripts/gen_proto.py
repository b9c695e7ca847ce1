"""Generate the Python contracts (messages, gRPC stubs, typing stubs) from ``proto/``.

``python scripts/gen_proto.py`` writes ``libs/contracts``; ``--check`` regenerates into a
temporary folder and fails when the committed code differs (run by ``make test``).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "libs" / "contracts"


def generate(out: Path) -> None:
    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    plugin = Path(sys.executable).parent / "protoc-gen-mypy"
    grpc_plugin = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={PROTO}",
        f"--proto_path={include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={plugin}",
        f"--mypy_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={grpc_plugin}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    subprocess.run(cmd, check=True, cwd=PROTO)  # noqa: S603 - fixed arguments
    for folder in [out / "ecomops", *(p for p in (out / "ecomops").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (out / "ecomops" / "py.typed").touch()


def sync(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    for rel in sorted(wanted):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != (src / rel).read_bytes():
            shutil.copyfile(src / rel, target)
    for path in sorted(dst.rglob("*"), reverse=True):
        rel = path.relative_to(dst)
        if path.is_file() and rel not in wanted and "__pycache__" not in rel.parts:
            path.unlink()
        elif path.is_dir() and path.name != "__pycache__" and not any(path.iterdir()):
            path.rmdir()


def tree_differs(a: Path, b: Path) -> list[str]:
    diffs: list[str] = []
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    diffs += [f"only in committed: {x}" for x in cmp.left_only]
    diffs += [f"missing: {x}" for x in cmp.right_only]
    diffs += [f"stale: {x}" for x in cmp.diff_files]
    for name in cmp.common_dirs:
        diffs += tree_differs(a / name, b / name)
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if libs/contracts is stale")
    args = parser.parse_args()
    if not args.check:
        # Generate aside, then copy only what changed: other processes may be importing the
        # contracts while this runs.
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            sync(Path(tmp) / "ecomops", OUT / "ecomops")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        diffs = tree_differs(OUT / "ecomops", Path(tmp) / "ecomops")
    if diffs:
        print("generated contracts are stale; run 'make proto':\n  " + "\n  ".join(diffs))
        return 1
    print("generated contracts are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
