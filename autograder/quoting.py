"""Make text that came from a submission safe to show inside the grader's own feedback.

Student-derived text (exception messages, class and function names, parser messages about the notebook's code)
reaches results.json, the terminal and the gradebook. Two rules keep it from passing for grader output:

* :func:`clean_text` removes what a terminal or a text box interprets rather than shows: ANSI / VT100 escape
  sequences (CSI, OSC, single-character escapes), the other C0 and C1 control characters, DEL, Unicode
  direction overrides and isolates (which reorder what is displayed) and the Unicode line and paragraph
  separators; carriage returns become line breaks (a bare ``\\r`` would let the text overwrite the start of a
  grader line). Newlines are kept only where asked.
* :func:`quote_block` renders a multi-line text inside a grader line: its first line continues the grader's
  line, every further line starts with a ``|`` marker, so a submission cannot start a line that looks like
  ``PASS ...``, ``note: ...`` or a score.

Imports nothing beyond the standard library (the grader's reply validation uses it).
"""
from __future__ import annotations

import re

__all__ = ["clean_text", "quote_block", "one_line"]

# ESC [ ... final byte | ESC ] ... (BEL or ESC \) | ESC P/X/^/_ ... ESC \ | ESC + one character.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff]")


def clean_text(text: str, keep_newlines: bool = True) -> str:
    """``text`` without escape sequences and control characters; tabs become spaces and carriage returns line
    breaks; without ``keep_newlines`` line breaks become `` / ``."""
    text = _ESCAPES.sub("", str(text)).replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text = _CONTROLS.sub("", text)
    return text if keep_newlines else text.replace("\n", " / ")


def one_line(text: str) -> str:
    """:func:`clean_text` on one line (for names and short fields)."""
    return clean_text(text, keep_newlines=False)


def quote_block(text: str, indent: str) -> str:
    """``text`` cleaned; its second and later lines prefixed with ``indent + "| "`` (marks them as quoted)."""
    lines = clean_text(text).split("\n")
    return "\n".join([lines[0]] + [f"{indent}| {line}" for line in lines[1:]])
