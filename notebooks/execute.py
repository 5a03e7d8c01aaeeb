"""Run the notebooks top to bottom in a fresh Jupyter kernel and store them with their outputs.

    uv run python notebooks/execute.py                  # every notebook in this folder
    uv run python notebooks/execute.py demo.ipynb       # just the ones named

Each notebook runs in its own folder, and seeded code gives the same outputs every run.
Nothing machine-specific is stored: no timings, and memory addresses in the plain-text
form of rich outputs (``<Graph at 0x7f...>``) are dropped; the tests check for paths and
host names.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# the default repr of an object, such as "<Graph at 0x7f94...>", names a memory address
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def notebooks() -> list[Path]:
    """Every notebook in this folder, by name."""
    return sorted(HERE.glob("*.ipynb"))


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """``path`` run top to bottom in a new kernel; raises ``CellExecutionError`` on any error."""
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name=KERNELSPEC["name"],
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain")
            if text is not None:
                output["data"]["text/plain"] = ADDRESS.sub("", text)
    return notebook


def main(argv: list[str]) -> int:
    paths = [HERE / name for name in argv] or notebooks()
    for path in paths:
        if not path.is_file():
            print(f"execute.py: error: no notebook {path.name!r} in {HERE.name}/", file=sys.stderr)
            return 2
    for path in paths:
        start = time.perf_counter()
        nbformat.write(execute(path), path)
        print(f"{path.name}: executed and stored in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
