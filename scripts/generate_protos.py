"""Regenerate the checked-in Python code for protos/gbair/v1/*.proto into services/gbair/v1/.

The proto package path gbair/v1 is also the Python package gbair.v1, so the generated imports need no
rewriting. tests/test_protos.py checks that running this gives the files in the repository.
Usage: python scripts/generate_protos.py [OUT_ROOT]   (OUT_ROOT defaults to services/)
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"


def generate(out_root: Path) -> list[Path]:
    sources = sorted(PROTOS.glob("gbair/v1/*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    arguments = [
        "protoc", f"-I{PROTOS}", f"-I{well_known}",
        f"--python_out={out_root}", f"--pyi_out={out_root}", f"--grpc_python_out={out_root}",
        *map(str, sources),
    ]
    if protoc.main(arguments) != 0:
        raise SystemExit("protoc failed")
    package = out_root / "gbair" / "v1"
    (package / "__init__.py").write_text('"""Generated from protos/gbair/v1 by scripts/generate_protos.py; do not edit."""\n')
    return sorted(package.iterdir())


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "services"
    for path in generate(out):
        print(path)
