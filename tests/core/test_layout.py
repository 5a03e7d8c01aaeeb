"""The core's shape: an engine module a newcomer reads in one sitting, and imports that only
point down (no module of the core imports one that imports it back)."""

import ast
import io
import tokenize
from pathlib import Path

import mingrad_core

CORE = Path(mingrad_core.__file__).parent


def code_lines(path: Path) -> int:
    """Lines holding code: no blank lines, comments or docstrings."""
    lines, previous = set(), tokenize.INDENT
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        starts_statement = previous in (tokenize.INDENT, tokenize.NEWLINE, tokenize.DEDENT)
        if tok.type == tokenize.STRING and starts_statement:
            previous = tok.type
            continue
        if tok.type not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            lines.update(range(tok.start[0], tok.end[0] + 1))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            previous = tok.type
    return len(lines)


def core_imports(path: Path) -> set[str]:
    """The core modules ``path`` imports when it runs (type-checking-only imports aside)."""
    found = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif (node.module or "").startswith("mingrad_core."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("mingrad_core.")
            )
    return found


def test_the_module_defining_scalar_is_at_most_300_lines_of_code():
    assert mingrad_core.Scalar.__module__ == "mingrad_core.engine"
    assert code_lines(CORE / "engine.py") <= 300


def test_the_line_counter_skips_docstrings_and_comments(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text('"""doc\nmore"""\n\n# note\ndef f():\n    """doc"""\n    return 1\n')
    assert code_lines(sample) == 2


def test_core_imports_form_no_circle_and_name_no_other_package():
    graph = {p.stem: core_imports(p) for p in CORE.glob("*.py") if p.stem != "__init__"}
    for module, imported in graph.items():
        assert imported <= set(graph), (module, imported - set(graph))
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module not in done:
            for child in graph[module]:
                visit(child, (*path, module))
            done.add(module)

    for module in graph:
        visit(module, ())
    assert graph["engine"] <= {"errors", "values"}  # the engine needs nothing above it
    above = {"mingrad", "mingrad_ops", "mingrad_nn", "mingrad_viz", "mingrad_jit"}
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            assert not {n.split(".")[0] for n in names} & above, (path.name, names)
