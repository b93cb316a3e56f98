"""Fail when a test asserts on wall-clock time: tests wait on conditions, benchmarks measure speed.

An ``assert`` is flagged when it orders (``<``, ``<=``, ``>``, ``>=``) a timing: a call to
``time.time()`` / ``monotonic()`` / ``perf_counter()`` (or their ``_ns`` forms), a name,
attribute or string key ending in ``seconds`` or ``elapsed``, or a name the same function
assigned from a timing.  A threshold on a timing passes on one machine and fails on one
twice as fast or twice as loaded.

Usage: ``python -m scripts.check_no_timing_asserts [folder ...]`` (default ``tests``);
exit status 1 with one line per assertion found.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

CLOCKS = {"time", "monotonic", "perf_counter", "time_ns", "monotonic_ns", "perf_counter_ns"}
TIMING_SUFFIXES = ("seconds", "elapsed")
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
# (path, test function) allowed a timing assertion while it is being replaced; empty, as it should stay.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def _named_like_a_timing(name: str) -> bool:
    return name.lower().endswith(TIMING_SUFFIXES)


def _is_timing(node: ast.AST, timed_names: set[str]) -> bool:
    """Whether ``node`` holds a clock reading or a duration anywhere inside it."""
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
            if child.func.attr in CLOCKS and isinstance(child.func.value, ast.Name) and child.func.value.id == "time":
                return True
        if isinstance(child, ast.Name) and (child.id in timed_names or _named_like_a_timing(child.id)):
            return True
        if isinstance(child, ast.Attribute) and _named_like_a_timing(child.attr):
            return True
        if isinstance(child, ast.Constant) and isinstance(child.value, str) and _named_like_a_timing(child.value):
            return True
    return False


def _timed_names(function: ast.AST) -> set[str]:
    """Names a function assigns from a timing (``began = time.monotonic()``, ``took = end - began``)."""
    names: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and _is_timing(node.value, names):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id not in names:
                        names.add(target.id)
                        changed = True
    return names


def timing_asserts(tree: ast.AST) -> Iterator[tuple[str, ast.Assert]]:
    """The assertions in ``tree`` that order a timing, each with the name of its function ("" at module level)."""
    scopes = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
    seen: set[int] = set()
    for scope in [*scopes, tree]:  # innermost functions are walked before the ones that hold them
        timed = _timed_names(scope)
        for node in ast.walk(scope):
            if not isinstance(node, ast.Assert) or id(node) in seen:
                continue
            seen.add(id(node))
            if any(_orders_a_timing(compare, timed) for compare in ast.walk(node.test)):
                yield getattr(scope, "name", ""), node


def _orders_a_timing(node: ast.AST, timed: set[str]) -> bool:
    if not isinstance(node, ast.Compare) or not any(isinstance(op, ORDERING) for op in node.ops):
        return False
    return any(_is_timing(operand, timed) for operand in [node.left, *node.comparators])


def check(folders: list[Path], allowed: frozenset[tuple[str, str]] = ALLOWED) -> list[str]:
    """One ``path:line: source`` line per timing assertion under ``folders``, less those ``allowed``."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            source = path.read_text()
            for function, node in timing_asserts(ast.parse(source, str(path))):
                if (path.as_posix(), function) not in allowed:
                    found.append(f"{path}:{node.lineno}: {ast.get_source_segment(source, node)}")
    return found


def main(argv: list[str]) -> int:
    found = check([Path(arg) for arg in argv] or [Path("tests")])
    for line in found:
        print(line)
    if found:
        print(
            f"{len(found)} assertion(s) on wall-clock time: wait on a condition with a deadline instead, "
            "and measure speed in bench/",
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
