"""Write docs/math.md from docs/math.template.md, resolving code references to line numbers.

In the template, ``{net:TEXT}`` and ``{fast:TEXT}`` name the one line of relunet/network.py
or relunet/fastpath.py that contains TEXT (or, if several contain it, the one that is
exactly TEXT); they become ``relunet/network.py:LINE``.  ``--check`` only compares, and
fails if docs/math.md is stale (tests/test_docs.py runs it):

    python docs/render_math.py           # rewrite docs/math.md
    python docs/render_math.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "net": "relunet/network.py",
    "fast": "relunet/fastpath.py",
    "kern": "relunet/kernels.py",
    "optim": "relunet/optim.py",
}


def render():
    """The text of docs/math.md; raises LookupError for a reference that is not one line."""
    sources = {k: (ROOT / v).read_text().splitlines() for k, v in FILES.items()}

    def line_of(match):
        key, text = match.group(1), match.group(2)
        hits = [i + 1 for i, line in enumerate(sources[key]) if text in line]
        if len(hits) > 1:
            hits = [i + 1 for i, line in enumerate(sources[key]) if line.strip() == text]
        if len(hits) != 1:
            raise LookupError(f"{{{key}:{text}}} matches lines {hits} of {FILES[key]}")
        return f"`{FILES[key]}:{hits[0]}`"

    template = (ROOT / "docs" / "math.template.md").read_text()
    out = re.sub(r"\{(net|fast|kern|optim):(.+?)\}(?=[\s,.;:)–]|$)", line_of, template)
    # `file:12`–`file:15` reads better as `file:12–15`
    return re.sub(r"`(relunet/\w+\.py):(\d+)`–`\1:(\d+)`", r"`\1:\2–\3`", out)


def main(argv):
    target = ROOT / "docs" / "math.md"
    text = render()
    if "--check" in argv:
        if target.read_text() != text:
            print("docs/math.md is stale: run python docs/render_math.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
