"""Text from files, made safe to print on a terminal."""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

# C0/C1 controls, line/paragraph separators, lone surrogates, and format characters (Cf: the
# bidirectional controls of "Trojan Source", zero-width spaces and joiners, U+2060 word joiner,
# U+FEFF, the invisible tag characters U+E0000-U+E007F, soft hyphen).
_ESCAPED = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs"))


def printable(text, *, backslashes=True):
    """``str(text)`` with every control or invisible format character escaped as Python
    writes it (``\\x1b``, ``\\u202e``, ``\\u200b``, ``\\U000e0041``) and a backslash doubled.

    Escaped: C0/C1 controls and DEL (escape sequences, bell, backspace, carriage return,
    newline, tab), line and paragraph separators, lone surrogates, and Unicode format
    characters (category Cf: bidirectional controls, zero-width spaces and joiners, the word
    joiner, the byte-order mark, tag characters).  A backslash is written ``\\\\``, so that a
    real ESC (shown ``\\x1b``) and the four characters ``\\x1b`` differ on screen.

    ``backslashes=False`` keeps backslashes as they are: for error messages, whose quoted
    values are already ``repr``-escaped (a backslash from a file is shown ``\\`` there).

    Names read from a file (class labels, feature names, metadata) go through this before they
    are printed, so a file cannot move the cursor, retitle the window, ring the bell or hide
    text.  Other characters, accents and emoji included, are kept as they are.
    """
    text = str(text)
    if text.isprintable() and ("\\" not in text or not backslashes):
        return text  # the common case (Cc, Cf, Zl, Zp and Cs are never "printable")
    out = []
    for ch in text:
        if ch == "\\" and backslashes:
            out.append("\\\\")
        elif unicodedata.category(ch) in _ESCAPED:
            out.append(repr(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out)
