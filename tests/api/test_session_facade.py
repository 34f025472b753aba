"""The ingress reaches session actors only through the facade (``actors.session_client``):
an import-graph check over every module of ``api/``."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
FACADE = "actors.session_client"
ALLOWED = {FACADE, "actors.bootstrap", "actors.pool_metrics"}
"""``actors.bootstrap`` starts the background pools at start-up and ``actors.pool_metrics``
reads their figures at a scrape; neither is a session internal."""


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (``from a import b`` counts as ``a.b`` and ``a``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _actor_imports(path: Path, root: Path = API.parent) -> list[str]:
    """The ``actors`` modules ``path`` imports that are not allowed."""
    bad: list[str] = []
    for line, name in _imports(path):
        if name != "actors" and not name.startswith("actors."):
            continue
        if name == "actors" or any(name == a or name.startswith(a + ".") for a in ALLOWED):
            continue
        # ``from actors.session_client import X`` also yields ``actors.session_client.X``.
        bad.append(f"{path.relative_to(root)}:{line} imports {name}")
    return bad


def test_api_imports_no_actor_module_but_the_facade() -> None:
    modules = sorted(API.rglob("*.py"))
    assert len(modules) > 20
    bad = [problem for module in modules for problem in _actor_imports(module)]
    assert bad == []


def test_the_check_sees_an_internal_import(tmp_path: Path) -> None:
    module = API / "routes" / "sessions.py"
    assert any(name.startswith(FACADE) for _, name in _imports(module))
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from actors.session.core import SessionCore\n"
        "import actors.session.log\n"
        "from actors import session_client, session\n"
    )
    assert _actor_imports(probe, tmp_path) == [
        "probe.py:1 imports actors.session.core",
        "probe.py:1 imports actors.session.core.SessionCore",
        "probe.py:2 imports actors.session.log",
        "probe.py:3 imports actors.session",
    ]
