"""Errors that speak to the user: which file, which line (or row), which column, what was expected.

Every failure kgwb reports on purpose is a :class:`KgwbError`; the command line prints it as
``kgwb: error: MESSAGE`` and exits with status 2 (an ``OSError`` such as a full disk or a
read-only folder is reported the same way, as ``kgwb: error: PATH: REASON``).
"""

from __future__ import annotations

from pathlib import Path


class KgwbError(Exception):
    """Base class for every error kgwb raises on purpose."""


class DataError(KgwbError, ValueError):
    """Bad input data.

    ``str(err)`` reads ``FILE:LINE:COLUMN: what is wrong (expected ...)`` like a compiler
    message, so editors and terminals can jump to the place.  ``line`` is 1-based and counts
    physical lines of the file (the header included); for tables without lines (Parquet) it is the
    1-based row number and ``row_kind`` says so.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | int | None = None,
        expected: str | None = None,
        row_kind: str = "line",
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.reason = message
        self.expected = expected
        self.row_kind = row_kind
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.line is not None:
            where.append(
                str(self.line) if self.row_kind == "line" else f"{self.row_kind} {self.line}"
            )
        if self.column is not None:
            where.append(f"column {self.column}")
        text = self.reason
        if self.expected:
            text += f" (expected {self.expected})"
        return (":".join(where) + ": " + text) if where else text


class UnknownNameError(KgwbError, KeyError):
    """A component was asked for by a name that is not registered; the message lists valid names."""

    def __init__(self, kind: str, name: str, valid: list[str]) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class ConfigError(KgwbError, ValueError):
    """A parameter or option with a value kgwb cannot use (the message says which are valid)."""


class OutputError(KgwbError):
    """An output path kgwb refuses to write: it exists (and no overwrite was asked for), it is
    or contains an input, or it is a folder kgwb did not write."""


class WriteError(KgwbError):
    """Writing an artifact failed for a reason other than an OSError (e.g. a library error)."""
