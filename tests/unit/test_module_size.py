"""Modules that fit on a few screens: no hand-written module under services/ or src/ over 400 lines
(issue 12). The generated protobuf code (src/kingpost/v1) is not hand-written."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 400


def test_no_hand_written_module_is_over_the_limit() -> None:
    modules = [p for folder in ("services", "src") for p in (ROOT / folder).rglob("*.py")
               if "kingpost/v1" not in p.as_posix() and ".venv" not in p.parts]
    assert len(modules) > 100, "the walk found the services' and kingpost's modules"
    over = {str(p.relative_to(ROOT)): n for p in modules if (n := len(p.read_text().splitlines())) > LIMIT}
    assert over == {}, f"split these modules (over {LIMIT} lines): {over}"
