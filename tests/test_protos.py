"""The checked-in generated code is what scripts/generate_protos.py makes from protos/ now."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_generated_code_matches_the_protos(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_protos.py"), str(tmp_path)], check=True, capture_output=True)
    generated = sorted(p.name for p in (tmp_path / "gbair" / "v1").iterdir())
    checked_in = ROOT / "services" / "gbair" / "v1"
    assert generated == sorted(p.name for p in checked_in.iterdir() if p.is_file())
    for name in generated:
        assert (tmp_path / "gbair" / "v1" / name).read_bytes() == (checked_in / name).read_bytes(), name
