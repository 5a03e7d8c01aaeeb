"""The README's code runs as written, top to bottom, and prints what its comments say."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def run_block(source: str, namespace: dict, where: str) -> None:
    """Run ``source``; where its ``print(...)  # text`` lines each print one line, each printed
    line must begin ``text`` (a comment may go on to explain it)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, where, "exec"), namespace)
    expected = re.findall(r"^\s*print\(.*\)  # (.*)$", source, flags=re.M)
    printed = out.getvalue().splitlines()
    if expected and len(printed) == len(re.findall(r"^\s*print\(", source, flags=re.M)):
        for line, comment in zip(printed, expected):
            assert comment.startswith(line), f"{where}: printed {line!r}; its comment: {comment!r}"


def test_readme_python_blocks_run_in_order_and_print_what_they_say():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace = {"__name__": "readme"}
    for index, block in enumerate(blocks):
        source = "\n".join(line.removeprefix("  ") for line in block.splitlines())
        run_block(source, namespace, f"README.md python block {index}")


def test_readme_links_and_pictures_point_at_files_that_exist():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text) + re.findall(r'src="([^"]+)"', text)
    local = [t for t in targets if "://" not in t]
    assert len(local) >= 10
    missing = [t for t in local if not (README.parent / t).exists()]
    assert not missing, f"README.md links to files that are not there: {missing}"
