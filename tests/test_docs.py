"""docs/math.md points at the lines that compute each equation: it must not go stale."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_math_doc_line_references_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "render_math.py"), "--check"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def _readme_python_blocks():
    import re

    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


# Packages the README's examples may import that a core install lacks: a block importing
# one that is missing skips, naming it (the test extra installs them all).
OPTIONAL = ("torch", "onnxruntime", "onnx", "skl2onnx", "dask", "distributed", "pandas",
            "pyarrow", "matplotlib", "numba")


def test_the_readme_has_python_blocks():
    assert len(_readme_python_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(_readme_python_blocks())))
def test_every_python_block_of_the_readme_runs(tmp_path, index):
    # The README's Python examples are a promise too: run each in a scratch folder.
    import importlib.util
    import re

    code = _readme_python_blocks()[index]
    imported = set(re.findall(r"^\s*from\s+(\w+)", code, re.M))  # from X[.y] import ...
    imported |= {n.strip().split(".")[0]  # import a, b.c as d
                 for line in re.findall(r"^\s*import\s+(.+)$", code, re.M)
                 for n in line.split(",")}
    for name in sorted(imported & set(OPTIONAL)):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"README block {index + 1} imports {name}, which is not installed")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{code}\n{result.stderr}"
