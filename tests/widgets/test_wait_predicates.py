"""Browser tests' ``wait_for_function`` predicates are functions, never bare expressions.

Playwright evaluates a bare expression again with ``eval`` in the page on each poll, which
the widgets' Content Security Policy (no 'unsafe-eval') refuses: such a wait passes when the
condition already holds at the first check and fails with an EvalError when it does not,
so it only shows on a slow machine. A function is compiled once and then called."""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _text(node: ast.AST, names: dict[str, ast.AST]) -> str | None:
    if isinstance(node, ast.Name) and node.id in names:
        return _text(names[node.id], names)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _text(node.values[0], names)
    return None


def _predicates() -> list[tuple[str, int, str | None]]:
    found = []
    for path in sorted(HERE.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        names = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "wait_for_function" and node.args):
                found.append((path.name, node.lineno, _text(node.args[0], names)))
    return found


def test_every_wait_predicate_is_a_function() -> None:
    found = _predicates()
    assert found, "no wait_for_function call found: the check looks in the wrong place"
    bare = [(name, line, text) for name, line, text in found
            if text is None or not text.lstrip().startswith(("() =>", "function"))]
    assert not bare, f"bare expressions (or unreadable predicates) polled under CSP: {bare}"
