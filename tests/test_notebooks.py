"""The notebooks a learner opens first: stored with the outputs of one clean run, and they run.

Each notebook is executed top to bottom by a real Jupyter kernel; any error fails the test.
After editing a notebook, store fresh outputs with ``uv run python notebooks/execute.py``.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import socket
import sys
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ["demo.ipynb", "graphs.ipynb", "writing-an-op.ipynb"]
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
RERUN = "store fresh outputs with: uv run python notebooks/execute.py"


def _executor():
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def shape(cell: nbformat.NotebookNode) -> list[tuple[str, ...]]:
    """What kinds of output a cell produced, consecutive stream chunks merged."""
    kinds: list[tuple[str, ...]] = []
    for output in cell.outputs:
        if output.output_type == "stream":
            kind = ("stream", output.name)
        else:
            kind = (output.output_type, *sorted(output.get("data", {})))
        if not (kind[0] == "stream" and kinds and kinds[-1] == kind):
            kinds.append(kind)
    return kinds


def stdout(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.text
        for cell in code_cells(notebook)
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def mime_types(notebook: nbformat.NotebookNode) -> set[str]:
    return {
        mime
        for cell in code_cells(notebook)
        for output in cell.outputs
        for mime in output.get("data", {})
    }


def final_accuracy(notebook: nbformat.NotebookNode) -> float:
    found = re.findall(r"final loss [\d.]+, training accuracy (\d+)%", stdout(notebook))
    assert len(found) == 1, f"the demo notebook prints its final accuracy once; got {found}"
    return int(found[0]) / 100


def test_the_three_learner_notebooks_are_there():
    assert set(EXPECTED) <= {path.name for path in PATHS}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_a_stored_notebook_holds_the_outputs_of_one_top_to_bottom_run(path):
    cells = code_cells(read(path))
    assert any(cell.outputs for cell in cells), f"{path.name} is stored without outputs; {RERUN}"
    counts = [cell.execution_count for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts} are not one run from top to bottom; {RERUN}"
    )
    errors = [o for cell in cells for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} is stored with an error: {errors[0].ename}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_stored_outputs_name_no_path_machine_or_memory_address(path):
    text = json.dumps([cell.outputs for cell in code_cells(read(path))])
    for private in {str(ROOT), str(Path.home()) + "/", sys.prefix, "site-packages"}:
        assert private not in text, f"{path.name}'s outputs mention {private!r}; {RERUN}"
    host = socket.gethostname()
    if len(host) >= 4:
        assert host not in text, f"{path.name}'s outputs mention this machine's name"
    assert not re.search(r" at 0x[0-9a-fA-F]+", text), f"{path.name} stores a memory address"


def test_the_stored_demo_notebook_plots_inline_and_reaches_99_percent():
    notebook = read(NOTEBOOKS / "demo.ipynb")
    assert "image/png" in mime_types(notebook)
    assert final_accuracy(notebook) >= 0.99


def test_the_stored_graphs_notebook_shows_its_drawings_as_svg():
    notebook = read(NOTEBOOKS / "graphs.ipynb")
    drawings = [
        output
        for cell in code_cells(notebook)
        for output in cell.outputs
        if "image/svg+xml" in output.get("data", {})
    ]
    assert len(drawings) >= 3
    assert all("<svg" in output.data["image/svg+xml"] for output in drawings)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_every_stored_drawing_has_a_png_an_untrusted_notebook_shows(path):
    for cell in code_cells(read(path)):
        for output in cell.outputs:
            data = output.get("data", {})
            if "image/svg+xml" in data:
                assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG"), (
                    f"{path.name} stores an SVG without a PNG beside it; {RERUN}"
                )


def test_the_graphs_notebook_stores_a_player_on_a_node_used_twice_as_a_picture_and_a_hint():
    cells = code_cells(read(NOTEBOOKS / "graphs.ipynb"))
    (cell,) = [c for c in cells if "backprop_player(" in c.source]
    assert re.search(r"x \* x \+", cell.source)  # x used twice by *, once more after
    (page,) = [o.data["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})]
    static = re.sub(r"<script>.*?</script>", "", page, flags=re.S)
    assert "Run this cell to step through" in static
    assert re.search(r'<img alt="[^"]+" src="data:image/png;base64,', static)


def test_re_running_a_notebook_that_registers_an_op_in_the_same_kernel_works():
    notebook = read(NOTEBOOKS / "writing-an-op.ipynb")
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    with client.setup_kernel():
        for _ in range(2):  # the second run registers the same ops again
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)  # raises CellExecutionError on any error
    said = json.dumps([cell.get("outputs", []) for cell in code_cells(notebook)])
    assert "replaces" in said  # the warning that says so


@pytest.fixture(scope="module")
def executor():
    return _executor()


@pytest.fixture(scope="module")
def fresh_runs(executor) -> dict[str, Future]:
    """Every notebook executed in its own kernel, all at once (kernels are processes)."""
    with ThreadPoolExecutor(max_workers=len(PATHS)) as pool:
        runs = {path.name: pool.submit(executor.execute, path, 300) for path in PATHS}
        wait(runs.values())
    return runs


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_a_notebook_runs_top_to_bottom_in_a_jupyter_kernel(path, fresh_runs):
    fresh = fresh_runs[path.name].result()  # re-raises CellExecutionError on any error
    stored = read(path)
    assert [shape(cell) for cell in code_cells(fresh)] == [
        shape(cell) for cell in code_cells(stored)
    ], f"{path.name}'s stored outputs are not what its code produces now; {RERUN}"
    if path.name == "demo.ipynb":
        assert final_accuracy(fresh) >= 0.99
        assert "image/png" in mime_types(fresh)
    if path.name == "graphs.ipynb":
        assert "image/svg+xml" in mime_types(fresh)


def test_execute_refuses_a_notebook_that_is_not_there(executor, capsys):
    assert executor.main(["no-such.ipynb"]) == 2
    assert "no notebook 'no-such.ipynb'" in capsys.readouterr().err
