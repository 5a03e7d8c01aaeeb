"""The code writer both replays use: Python source generated line by line, and the objects its
names stand for; and the check that an op's gradient gave one term per input."""

from __future__ import annotations

from collections.abc import Callable


class Code:
    """Python source being generated, and the objects its names stand for (its globals)."""

    def __init__(self, namespace: dict[str, object], header: str) -> None:
        self.namespace = namespace
        self.lines = [header]

    def bind(self, name: str, value: object) -> str:
        """Make ``value`` a global of the generated code, as ``name`` (numbered if taken)."""
        base, number = name, 1
        while self.namespace.get(name, value) is not value:
            number += 1
            name = f"{base}__{number}"
        self.namespace[name] = value
        return name

    def __call__(self, line: str, indent: int = 2) -> None:
        self.lines.append("    " * indent + line)

    def compile(self, filename: str) -> Callable:
        """The function the lines define (the first line names it)."""
        name = self.lines[0].split()[1].split("(")[0]
        scope: dict[str, object] = {}
        exec(compile(self.source, filename, "exec"), self.namespace, scope)
        return scope[name]

    @property
    def source(self) -> str:
        return "\n".join(self.lines) + "\n"


def wrong_count(what: str, name: str, terms, count: int) -> ValueError:
    return ValueError(
        f"the {what} of op {name!r} returned {len(terms)} term(s) for {count} input(s)"
    )


def check_count(code: Code, what: str, name: str, count: int, indent: int = 2) -> None:
    """Emit a check that the gradient terms ``t`` just computed are one per input."""
    code(f"if len(t) != {count}: raise _wrong_count({what!r}, {name!r}, t, {count})", indent)
