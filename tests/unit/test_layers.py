"""The layering contracts in pyproject.toml hold on the code, and they can fail: a copy of the
package with one forbidden import added is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    if not LINT.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache", str(tree / "pyproject.toml")], cwd=tree,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _copy(tmp_path: Path) -> Path:
    for name in ("panelql", "panelql_sim"):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_code_keeps_its_layers(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("panelql/providers/errors.py", "import panelql_sim.framework",
     "The product never imports the simulators"),
    ("panelql/domain/records.py", "import panelql.providers.http",
     "Layers point one way"),
    ("panelql/schema/enums.py", "import panelql.db.repositories",
     "The schema reaches the database only through the application layer"),
    ("panelql/events/webhooks.py", "import panelql.providers.stripe.adapter",
     "Events know the provider contract, no concrete provider"),
])
def test_a_forbidden_import_fails(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = _copy(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    done = _lint(tree)
    assert done.returncode != 0
    assert f"{contract} BROKEN" in done.stdout, done.stdout
