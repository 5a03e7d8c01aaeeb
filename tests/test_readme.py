"""The README's links and pictures point at files that exist (its code runs in test_docs)."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_readme_links_and_pictures_point_at_files_that_exist():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text) + re.findall(r'src="([^"]+)"', text)
    local = [t for t in targets if "://" not in t]
    assert len(local) >= 10
    missing = [t for t in local if not (README.parent / t).exists()]
    assert not missing, f"README.md links to files that are not there: {missing}"
