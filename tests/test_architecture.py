"""The arrows between the apps (docs/architecture.md), read from the source itself.

Every import of the project's own modules counts, at module level or deferred inside a function,
with one exception the house style prescribes: a Celery task imports its service inside its body
(the service imports the enqueue helper beside the task at module level), so a task module's
function-level imports are left out of the cycle check.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("notifyhub", "events", "subscriptions", "devices", "streams")
CHANNEL_APPS = ("subscriptions", "devices", "streams")
# Which apps each app must never import (the plumbing imports no app, events knows no channel,
# channel apps never import each other).
FORBIDDEN = {
    "notifyhub": set(APPS) - {"notifyhub"},
    "events": set(CHANNEL_APPS),
    **{app: set(CHANNEL_APPS) - {app} for app in CHANNEL_APPS},
}


def modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, *, deferred: bool) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file; function-level ones only when
    `deferred`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nested: set[int] = set()
    if not deferred:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                nested.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        if id(node) in nested:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def project_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        is_tasks = name.endswith(".tasks")
        graph[name] = {
            target
            for target, _ in imports(path, deferred=not is_tasks)
            if target in known and target != name
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_no_app_imports_what_it_must_never_import(app):
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in modules().items()
        if name.split(".")[0] == app
        for target, line in imports(path, deferred=True)
        if target.split(".")[0] in FORBIDDEN[app]
    ]
    assert wrong == []


def test_there_are_no_import_circles():
    assert cycles(project_graph()) == []


def test_the_cycle_check_finds_a_circle():
    """The check itself can fail: two modules importing each other are one circle."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


# docs/architecture.md, "Inside streams/": each module imports only those before it.
STREAMS_LAYERS = [
    "streams.models",
    "streams.messages",
    "streams.frames",
    "streams.rules",
    "streams.principals",
    "streams.selectors",
    "streams.services",
    "streams.tickets",
    "streams.channels",
    "streams.receivers",
    "streams.hub",
    "streams.connection",
    "streams.api",
    "streams.admin",
    "streams.tasks",
    "streams.urls",
]


def test_the_streams_modules_import_only_the_layers_below_them():
    known = modules()
    assert sorted(name for name in known if name.startswith("streams.")) == sorted(
        [*STREAMS_LAYERS, "streams.apps"]
    )
    upward = [
        f"{known[name].relative_to(ROOT)}:{line} imports {target}"
        for position, name in enumerate(STREAMS_LAYERS)
        for target, line in imports(known[name], deferred=not name.endswith(".tasks"))
        if target in STREAMS_LAYERS and STREAMS_LAYERS.index(target) >= position and target != name
    ]
    assert upward == []
