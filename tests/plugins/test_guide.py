"""The plugin guide's code, installed as a real distribution and tested as the guide says."""

import re
import tomllib
from pathlib import Path

from mingrad.cli import main
from mingrad_core import origin_of

GUIDE = (Path(__file__).parents[2] / "docs" / "writing-a-plugin.md").read_text()


def blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", GUIDE, flags=re.S)


def test_the_guide_plugin_installs_passes_its_tests_and_the_checker(tmp_path, monkeypatch, capsys):
    (toml,) = blocks("toml")
    project = tomllib.loads(toml)["project"]
    files = {block.splitlines()[0].removeprefix("# "): block for block in blocks("python")}
    ((entry_point, module),) = project["entry-points"]["mingrad"].items()
    (tmp_path / f"{module}.py").write_text(files[f"{module}.py"])
    info = tmp_path / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    (info / "entry_points.txt").write_text(f"[mingrad]\n{entry_point} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert tuple(origin_of("tanhshrink")) == (entry_point, project["name"], project["version"])
    namespace = {}
    exec(files["test_tanhshrink.py"], namespace)
    tests = [fn for name, fn in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test()
    assert main(["check", "tanhshrink"]) == 0
    assert main(["ops"]) == 0
    assert "tanhshrink (mingrad-tanhshrink 0.1.0)" in capsys.readouterr().out
