"""The layering of DESIGN.md, checked on the import graph of every production module.

Every ``import`` in a module counts, also those inside functions (a lazy import is still a
dependency). Rules, each a test:

- ``schemas`` imports nothing of Warren;
- ``store`` imports only ``schemas`` and ``core``;
- ``sandboxes`` and ``integrations`` never import ``actors``, ``store``, ``api`` or
  ``serve_app``, nor each other (two adapters; the actor hands one's client to the other);
- the in-sandbox agent (``sandboxes.agent``) imports nothing of the control plane but
  ``schemas`` (it is installed in the sandbox on its own);
- ``actors`` never import ``api`` or ``serve_app``;
- no production module imports ``tests`` (``bench`` included).

A known break that is another area's to fix is listed in :data:`EXCEPTIONS` with why; an
exception that no longer occurs fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = frozenset(
    {
        "actors",
        "api",
        "artifacts",
        "bench",
        "core",
        "deploy",
        "integrations",
        "llm",
        "sandboxes",
        "schemas",
        "security",
        "serve_app",
        "store",
        "tests",
        "web",
    }
)
"""Warren's top-level packages (and ``serve_app.py``): an import of one is Warren's."""
_SKIP_PARTS = frozenset({"node_modules", "__pycache__"})

Graph = Mapping[str, frozenset[str]]
"""Module → the Warren modules it imports."""


@dataclass(frozen=True)
class Rule:
    """Modules under ``importer`` may not import modules under any of ``forbidden``,
    except those under ``allowed`` (checked first)."""

    name: str
    importer: str
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()


_ALL = tuple(sorted(PACKAGES))
RULES = (
    Rule("schemas imports nothing of Warren", "schemas", _ALL, allowed=("schemas",)),
    Rule("store imports only schemas and core", "store", _ALL, ("store", "schemas", "core")),
    Rule(
        "sandboxes are an adapter",
        "sandboxes",
        ("actors", "store", "api", "serve_app", "integrations"),
    ),
    Rule(
        "integrations are an adapter",
        "integrations",
        ("actors", "store", "api", "serve_app", "sandboxes"),
    ),
    Rule(
        "the in-sandbox agent stands alone",
        "sandboxes.agent",
        _ALL,
        allowed=("sandboxes.agent", "schemas"),
    ),
    Rule("actors never import the ingress", "actors", ("api", "serve_app")),
    Rule("production never imports tests", "", ("tests",)),
    Rule("bench imports no tests", "bench", ("tests",)),
)

EXCEPTIONS: dict[tuple[str, str], str] = {}
"""(importer, imported) pairs that break a rule today, with why and whose they are."""


def _under(module: str, prefix: str) -> bool:
    return prefix == "" or module == prefix or module.startswith(prefix + ".")


def module_name(path: Path) -> str:
    """``sandboxes/git_ops.py`` → ``sandboxes.git_ops``; a package is its ``__init__``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files() -> Iterator[Path]:
    """Every Python file of Warren's packages, ``tests/`` included."""
    for top in sorted(PACKAGES):
        single = ROOT / f"{top}.py"
        if single.is_file():
            yield single
        for folder, subfolders, names in os.walk(ROOT / top):
            subfolders[:] = sorted(d for d in subfolders if d not in _SKIP_PARTS)
            yield from (Path(folder) / n for n in sorted(names) if n.endswith(".py"))


def imports_of(path: Path) -> set[str]:
    """The Warren names ``path`` imports (relative imports resolved), wherever they occur:
    a module, or for ``from m import x`` also ``m.x`` (which may be a submodule)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _owning_module(name: str, modules: frozenset[str]) -> str:
    """The longest known module ``name`` is or lies in (``m.Class`` → ``m``)."""
    while name not in modules and "." in name:
        name = name.rpartition(".")[0]
    return name


@functools.cache
def import_graph() -> Graph:
    """Every production module (all but ``tests``) and the Warren modules it imports."""
    files = {module_name(path): path for path in python_files()}
    modules = frozenset(files)
    return {
        name: frozenset(_owning_module(n, modules) for n in imports_of(path))
        for name, path in files.items()
        if not _under(name, "tests")
    }


def violations(graph: Graph, rule: Rule) -> set[tuple[str, str]]:
    """The (importer, imported) pairs of ``graph`` that break ``rule``."""
    broken: set[tuple[str, str]] = set()
    for importer, imported in graph.items():
        if not _under(importer, rule.importer):
            continue
        for name in imported:
            if any(_under(name, allowed) for allowed in rule.allowed):
                continue
            if any(_under(name, forbidden) for forbidden in rule.forbidden):
                broken.add((importer, name))
    return broken


def _check(rule: Rule) -> None:
    graph = import_graph()
    found = violations(graph, rule)
    unexpected = sorted(found - EXCEPTIONS.keys())
    assert not unexpected, f"{rule.name}: " + ", ".join(f"{a} → {b}" for a, b in unexpected)


def test_the_graph_covers_the_tree() -> None:
    graph = import_graph()
    assert {"schemas.sessions", "sandboxes.agent.app", "serve_app", "bench.harness"} <= set(graph)
    # Lazy and relative imports count.
    assert "serve_app" in graph["deploy.serve"]
    assert "sandboxes.git_repo" in graph["sandboxes.git_ops"]
    assert not any(_under(name, "tests") for name in graph)


def test_a_break_is_found() -> None:
    graph = {
        "sandboxes.git_pr": frozenset({"integrations.github_client", "schemas.git"}),
        "sandboxes.agent.app": frozenset({"schemas.sandbox", "sandboxes.errors"}),
        "store.runs": frozenset({"schemas.runs", "core.db", "actors.runs"}),
        "bench.relay": frozenset({"tests.fakes.opencode"}),
    }
    by_name = {rule.name: rule for rule in RULES}
    assert violations(graph, by_name["sandboxes are an adapter"]) == {
        ("sandboxes.git_pr", "integrations.github_client")
    }
    assert violations(graph, by_name["the in-sandbox agent stands alone"]) == {
        ("sandboxes.agent.app", "sandboxes.errors")
    }
    assert violations(graph, by_name["store imports only schemas and core"]) == {
        ("store.runs", "actors.runs")
    }
    assert violations(graph, by_name["bench imports no tests"]) == {
        ("bench.relay", "tests.fakes.opencode")
    }


def test_every_exception_still_occurs() -> None:
    graph = import_graph()
    found = set().union(*(violations(graph, rule) for rule in RULES))
    stale = sorted(set(EXCEPTIONS) - found)
    assert not stale, f"remove these exceptions, the imports are gone: {stale}"


def test_schemas_import_nothing_of_warren() -> None:
    _check(RULES[0])


def test_store_imports_only_schemas_and_core() -> None:
    _check(RULES[1])


def test_sandboxes_and_integrations_are_adapters() -> None:
    _check(RULES[2])
    _check(RULES[3])


def test_the_in_sandbox_agent_stands_alone() -> None:
    _check(RULES[4])


def test_actors_never_import_the_ingress() -> None:
    _check(RULES[5])


def test_nothing_imports_tests() -> None:
    _check(RULES[6])
    _check(RULES[7])
