"""Generate the Python stubs of proto/pyjit/v1 into pyjit/v1 with grpcio-tools.

`python -m pyjit.rpc.codegen` writes them (scripts/setup runs it); `--check` regenerates into
a scratch directory and exits 1, listing the files, when the package's copies differ, so a
stale or hand-edited stub fails the test command. Typed stubs (.pyi) come from mypy-protobuf.
"""

import argparse
import filecmp
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
PACKAGE = Path("pyjit") / "v1"
INIT = '"""Generated from proto/pyjit/v1 by pyjit.rpc.codegen; do not edit."""\n'


def protos() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Write every generated file under `out` (as `out`/pyjit/v1/...) and list them."""
    from grpc_tools import protoc

    plugin_dir = Path(sysconfig.get_path("scripts"))
    (out / PACKAGE).mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{_well_known_protos()}",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(path.relative_to(PROTO_ROOT)) for path in protos()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on proto/pyjit/v1")
    (out / PACKAGE / "__init__.py").write_text(INIT)
    return sorted(path.relative_to(out) for path in (out / PACKAGE).iterdir() if path.is_file())


def _well_known_protos() -> Path:
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def check() -> list[str]:
    """The generated files that are missing, extra or different in the package."""
    with tempfile.TemporaryDirectory(prefix="pyjit-codegen-") as scratch:
        fresh = set(generate(Path(scratch)))
        present = {
            path.relative_to(ROOT)
            for path in (ROOT / PACKAGE).iterdir()
            if path.is_file() and path.suffix in {".py", ".pyi"}
        }
        problems = [f"missing {path}" for path in sorted(fresh - present)]
        problems += [f"not generated from proto/: {path}" for path in sorted(present - fresh)]
        problems += [
            f"differs from proto/: {path}"
            for path in sorted(fresh & present)
            if not filecmp.cmp(Path(scratch) / path, ROOT / path, shallow=False)
        ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        for problem in problems:
            print(f"codegen: {problem}", file=sys.stderr)
        return 1 if problems else 0
    target = ROOT / PACKAGE
    shutil.rmtree(target, ignore_errors=True)
    generate(ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
