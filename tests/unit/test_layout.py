"""The layout's one rule: imports point one way (README: the development map).

ui, actions and delivery -> analytics -> core; collectors -> core. The drivers at the top (cli.py, jobs.py,
dashboard.py, demo/, spark/) may import anything below them, and nothing imports a driver. Every import
counts, also one inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# package -> the first-party packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "collectors": {"core"},
    "analytics": {"core"},
    "actions": {"analytics", "core"},
    "delivery": {"analytics", "core"},
    "ui": {"analytics", "core"},
    "spark": set(),  # a standalone job: it runs on a cluster without caa installed
    "demo": {"collectors", "analytics", "ui", "core"},
    "dashboard": {"ui", "analytics", "core"},
    "jobs": {"collectors", "analytics", "delivery", "ui", "core"},
    "cli": {"collectors", "analytics", "actions", "delivery", "ui", "demo", "jobs", "core"},
}


def first_party_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level first-party name) of every import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out += [(node.lineno, n.split(".")[0]) for n in names if n.split(".")[0] in ALLOWED]
    return out


def modules() -> list[tuple[str, Path]]:
    found = [(p.stem, p) for p in ROOT.glob("*.py") if p.stem in ALLOWED]
    found += [(pkg, p) for pkg in ALLOWED for p in sorted((ROOT / pkg).rglob("*.py")) if (ROOT / pkg).is_dir()]
    return found


def test_every_package_and_driver_is_in_the_map():
    tops = {p.stem for p in ROOT.glob("*.py")} | {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert tops - {"bench", "tests"} == set(ALLOWED)


@pytest.mark.parametrize("package", list(ALLOWED))
def test_imports_point_one_way(package):
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for pkg, path in modules() if pkg == package
             for line, name in first_party_imports(path) if name != package and name not in ALLOWED[package]]
    assert wrong == [], f"{package} may import only {sorted(ALLOWED[package]) or 'nothing of caa'}"


def test_the_check_sees_a_lazy_import(tmp_path):
    bad = tmp_path / "late.py"
    bad.write_text("def f():\n    from ui import views\n    import analytics.costs\n")
    assert first_party_imports(bad) == [(2, "ui"), (3, "analytics")]
