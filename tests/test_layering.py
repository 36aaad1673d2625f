"""The package's imports follow the pipeline: no stage imports a later one, and nothing imports in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "audioset_tools"
# Lower rank = imported by more. Units of equal rank must not import each other.
RANKS = {
    "__init__": 0, "errors": 0,  # the package root holds only __version__
    "atomic": 1, "tables": 1, "logs": 1,
    "legacy_config": 2, "config": 3,
    "dataset": 4,
    "select": 5, "sources": 5,
    "download": 6,
    "post": 7,
    "loaders": 8,
    "commands": 9, "cli": 9, "demo": 9, "__main__": 9,
}
ENTRY_POINTS = ("commands", "cli", "demo", "__main__")
# The scheduler must stay ignorant of any particular source.
SOURCE_NEUTRAL = ("audioset_tools.download.runner",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                for alias in node.names:
                    targets.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_stage_imports_a_later_one():
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            here, there = _unit(module), _unit(target)
            if here == there:
                continue
            # Entry points may call each other (the demo drives the CLI); stages of equal rank may not.
            if RANKS[there] > RANKS[here] or (RANKS[there] == RANKS[here] and here not in ENTRY_POINTS):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the pipeline's direction:\n" + "\n".join(sorted(wrong))


def test_every_unit_has_a_rank():
    assert {_unit(m) for m in _graph()} <= set(RANKS)


def test_the_scheduler_knows_no_particular_source():
    graph = _graph()
    for module in SOURCE_NEUTRAL:
        specific = sorted(t for t in graph[module] if t.startswith(("audioset_tools.sources.youtube",
                                                                     "audioset_tools.sources.archive")))
        assert not specific, f"{module} imports {specific}"


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))
