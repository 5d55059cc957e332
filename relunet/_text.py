"""Text from files, made safe to print on a terminal."""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

# Bidirectional controls that reorder what a terminal shows (the "Trojan Source" characters).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text):
    """``str(text)`` with every control character escaped as Python writes it (``\\x1b``,
    ``\\u202e``): C0/C1 controls and DEL (escape sequences, bell, backspace, carriage return,
    newline, tab), line and paragraph separators, bidirectional controls and lone surrogates.

    Names read from a file (class labels, feature names, metadata) go through this before they
    are printed, so a file cannot move the cursor, retitle the window, ring the bell or hide
    text.  Other characters, accents and emoji included, are kept as they are.
    """
    text = str(text)
    if text.isprintable() and not any(ch in _BIDI for ch in text):
        return text  # the common case, and ASCII letters, digits, spaces and punctuation
    out = []
    for ch in text:
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            out.append(repr(ch)[1:-1] if ch != "\\" else ch)
        else:
            out.append(ch)
    return "".join(out)
