"""The tree keeps its shape: one writer of job and chunk rows, core holds only shared code, and
bench and tests stand apart (read from the source with `ast`, nothing imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "api", "worker", "cli")
STATE_MODULE = "core.state"
STATE_COLUMNS = {"status", "stage", "lease_until", "attempt", "stage_attempts", "enqueued_at"}
# Columns only jobs and chunks have: a write of one is a job or chunk write whatever the name.
ONLY_JOBS_AND_CHUNKS = {"stage", "stage_attempts", "enqueued_at", "input_file_id", "chunks_done"}


def _modules(*packages: str) -> Iterator[tuple[str, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _state_writes(tree: ast.Module) -> list[str]:
    """`update(Job)` / `update(Chunk)` statements and `job.status = ...`-style assignments."""
    writes = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "update"
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in {"Job", "Chunk"}
        ):
            writes.append(f"line {node.lineno}: update({node.args[0].id})")
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and (
                    target.attr in ONLY_JOBS_AND_CHUNKS
                    or (
                        isinstance(target.value, ast.Name)
                        and target.value.id in {"job", "chunk"}
                        and target.attr in STATE_COLUMNS
                    )
                ):
                    writes.append(f"line {node.lineno}: .{target.attr} = ...")
    return writes


def test_only_the_state_module_writes_job_and_chunk_rows() -> None:
    """No module outside the core/state/ package UPDATEs jobs or chunks or sets their state
    columns."""
    found = {
        name: writes
        for name, tree in _modules(*PACKAGES)
        if not _in_state(name) and (writes := _state_writes(tree))
    }
    assert found == {}
    parts = [tree for name, tree in _modules("core") if _in_state(name) and name != STATE_MODULE]
    assert parts and all(map(_state_writes, parts)), "the check must see the package's writes"


def _in_state(module: str) -> bool:
    return module == STATE_MODULE or module.startswith(STATE_MODULE + ".")


def test_no_core_module_serves_only_the_workers() -> None:
    """Every core module the workers reach is reached from the API too (or from the CLI alone)."""
    trees = dict(_modules(*PACKAGES))
    edges = {name: {m for m in _imports(tree) if m in trees} for name, tree in trees.items()}

    def reach(package: str) -> set[str]:
        seen: set[str] = set()
        todo = [name for name in trees if name.split(".")[0] == package]
        while todo:
            name = todo.pop()
            for target in edges[name]:
                if target.startswith("core") and target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    from_api, from_worker = reach("api"), reach("worker")
    core = {name for name in trees if name.split(".")[0] == "core"}
    assert len(from_worker) > 10, "the check must see the workers' imports"
    assert sorted(from_worker - from_api - {"core"}) == []
    assert core - from_api - from_worker - reach("cli") <= {"core"}


def test_bench_and_tests_do_not_import_each_other() -> None:
    """Shared launchers and samples live in testkit/, so neither tree imports the other."""
    crossings = [
        f"{name} imports {module}"
        for name, tree in _modules("bench", "tests", "testkit")
        for module in _imports(tree)
        if (name.split(".")[0], module.split(".")[0]) in {("bench", "tests"), ("tests", "bench")}
    ]
    assert crossings == []
