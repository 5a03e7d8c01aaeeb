"""The README's code runs as written, top to bottom, so it cannot rot."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_blocks_run_in_order():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace = {"__name__": "readme"}
    for index, block in enumerate(blocks):
        source = "\n".join(line.removeprefix("  ") for line in block.splitlines())
        exec(compile(source, f"README.md python block {index}", "exec"), namespace)
