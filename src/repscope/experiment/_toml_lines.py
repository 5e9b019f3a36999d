"""Where each key of a TOML document is written: key path -> 1-based line number.

:mod:`tomllib` returns plain dicts without positions, so config errors found after parsing
(unknown key, wrong type, bad value) would not know their line. :func:`key_lines` scans the
text once more, tracking ``[table]`` and ``[[array of tables]]`` headers, dotted keys, inline
tables and arrays (every item, also on later lines of a multi-line array). It expects text
that :mod:`tomllib` has already accepted, and never raises on it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

__all__ = ["Loc", "key_lines", "line_of"]

Loc = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = frozenset(",]}#\r\n")
_STRING_DELIMITERS = ('"""', "'''", '"', "'")


def key_lines(text: str) -> dict[Loc, int]:
    """Line of every key, table header and array item of a TOML document.

    Parameters
    ----------
    text : str
        A document that :func:`tomllib.loads` accepts.

    Returns
    -------
    dict of tuple to int
        Key path (table names, keys, array indices) -> 1-based line where it is first written.
        A header ``[a.b]`` also records ``("a",)``, a dotted key ``x.y = 1`` also ``("x",)``,
        unless those are written elsewhere themselves.

    Examples
    --------
    >>> lines = key_lines('[brain]\\nrois = ["EBA",\\n  "V1"]\\nsim = {n = 2}\\n')
    >>> lines[("brain",)], lines[("brain", "rois", 1)], lines[("brain", "sim", "n")]
    (1, 3, 4)
    """
    return _Scanner(text).scan()


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """Line of ``loc``, else of its nearest written parent (a table header), else 1."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


class _Scanner:
    """A recursive-descent walk over valid TOML that records positions, not values."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[Loc, int] = {}
        self._implied: dict[Loc, int] = {}
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]

    def scan(self) -> dict[Loc, int]:
        table: Loc = ()
        tables_seen: dict[Loc, int] = {}
        while self._skip(newlines=True):
            if self.text.startswith("[[", self.pos):
                line = self._line()
                self.pos += 2
                name = self._key()
                tables_seen[name] = tables_seen.get(name, -1) + 1
                table = (*name, tables_seen[name])
                self.pos += 2
                self._record(table, line)
            elif self._peek() == "[":
                line = self._line()
                self.pos += 1
                table = self._key()
                self.pos += 1
                self._record(table, line)
            else:
                self._pair(table)
        return {**self._implied, **self.lines}

    def _pair(self, prefix: Loc) -> None:
        line = self._line()
        path = (*prefix, *self._key())
        self._record(path, line)
        self._skip()
        self.pos += 1  # "="
        self._skip()
        self._value(path)

    def _value(self, path: Loc) -> None:
        char = self._peek()
        if char in ('"', "'"):
            self._string()
        elif char == "[":
            self._sequence(path, "]", self._item)
        elif char == "{":
            self._sequence(path, "}", self._inline_pair)
        else:
            while self._peek() and self._peek() not in _SCALAR_END:
                self.pos += 1

    def _sequence(self, path: Loc, close: str, element: Callable[[Loc, int], None]) -> None:
        """Array items or inline-table pairs up to ``close``, comma-separated."""
        self.pos += 1
        index = 0
        while self._skip(newlines=True) and self._peek() != close:
            element(path, index)
            index += 1
            self._skip(newlines=True)
            if self._peek() == ",":
                self.pos += 1
        self.pos += 1

    def _item(self, path: Loc, index: int) -> None:
        self._record((*path, index), self._line())
        self._value((*path, index))

    def _inline_pair(self, path: Loc, index: int) -> None:
        self._pair(path)

    def _key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self._skip()
            if self._peek() in ('"', "'"):
                parts.append(self._string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                end = match.end() if match else self.pos
                parts.append(self.text[self.pos : end])
                self.pos = end
            self._skip()
            if self._peek() != ".":
                return tuple(parts)
            self.pos += 1

    def _string(self) -> str:
        """Skip a string of any of TOML's four kinds; return its raw content."""
        delimiter = next(d for d in _STRING_DELIMITERS if self.text.startswith(d, self.pos))
        start = index = self.pos + len(delimiter)
        escapes = delimiter[0] == '"'
        while index < len(self.text) and not self.text.startswith(delimiter, index):
            index += 2 if escapes and self.text[index] == "\\" else 1
        if len(delimiter) == 3:  # a multi-line string may end in one or two extra quotes
            extra = 0
            while extra < 2 and self.text.startswith(delimiter, index + 1):
                index += 1
                extra += 1
        self.pos = index + len(delimiter)
        return self.text[start:index]

    def _skip(self, *, newlines: bool = False) -> bool:
        """Skip blanks and comments (and line breaks if asked); False at the end of the text."""
        blanks = " \t\r\n" if newlines else " \t"
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif char in blanks:
                self.pos += 1
            else:
                return True
        return False

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _line(self) -> int:
        return bisect.bisect_left(self._newlines, self.pos) + 1

    def _record(self, path: Loc, line: int) -> None:
        """Line of ``path``; its parents are implied there unless written themselves."""
        self.lines.setdefault(path, line)
        for end in range(1, len(path)):
            self._implied.setdefault(path[:end], line)
