"""docs/math.md points at the lines that compute each equation: it must not go stale."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_math_doc_line_references_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "render_math.py"), "--check"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def test_every_python_block_of_the_readme_runs(tmp_path):
    # The README's Python examples are a promise too: run each in a scratch folder.
    import re

    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for code in blocks:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{code}\n{result.stderr}"
