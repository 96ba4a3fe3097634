"""Reading and validating the files behind every loader, fast when the input is clean.

The happy path parses a whole file at once (``pyarrow.csv``) and validates columns with
vectorised checks; only when something is wrong does a slower line-by-line pass run, to find
the exact physical line of each problem.  Every problem goes through :class:`Rows`, which
raises a :class:`~kgwb.errors.DataError` under ``errors="raise"`` or records the row in the
:class:`~kgwb.data.schema.LoadReport` under ``errors="skip"``, so that
``rows_loaded + rejected == rows_read`` always holds.

Line numbers are 1-based physical lines of the file, header included; blank lines are not rows.
A lone CR (old Mac line ends) is a line break like LF and CRLF.

Rejection reasons shared by the loaders include ``control character in id`` (NUL or another
C0/DEL character inside an id), ``not a number`` (also ``inf`` and ``nan`` where a finite number
is expected) and, per loader, ``duplicate ...`` reasons: duplicates are never dropped silently,
each repeat is a rejected row counted under its reason.
"""

from __future__ import annotations

import codecs
import gzip
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from kgwb.data.schema import LoadReport
from kgwb.errors import ConfigError, DataError

Errors = Literal["raise", "skip"]


def unescape_html(values: pd.Series) -> pd.Series:
    """Display text with HTML character references decoded (``L&#39;Oreal`` → ``L'Oreal``,
    ``&amp;amp;`` → ``&``): Amazon's metadata dumps, and the KGAT / RecBole files made from
    them, carry names escaped once or twice.  Only values holding ``&`` change; missing values
    stay missing.  Ids are never passed through it (they must match the files' own ids)."""
    has = values.str.contains("&", regex=False, na=False)
    if not has.any():
        return values
    out = values.copy()
    out[has] = values[has].map(lambda v: html.unescape(html.unescape(v)))
    return out


#: the reason keys used in ``LoadReport.rejected_by_reason``
INVALID_UTF8 = "invalid UTF-8"
WRONG_COLUMNS = "wrong number of columns"
NOT_INTEGER = "not an integer"
NOT_NUMBER = "not a number"
EMPTY_ID = "empty id"
CONTROL_IN_ID = "control character in id"
#: deeper JSON than this is rejected (and never reaches pyarrow's recursive reader)
MAX_JSON_DEPTH = 64


def check_errors(errors: str) -> None:
    if errors not in ("raise", "skip"):
        raise ConfigError(f"errors must be 'raise' or 'skip', not {errors!r}")


@dataclass
class Problem:
    """One bad row found before the rows became a table (encoding, column count, JSON)."""

    line: int
    reason: str
    column: str | int | None = None
    expected: str | None = None
    detail: str | None = None

    def error(self, file: Path | str, row_kind: str = "line") -> DataError:
        message = f"{self.reason}: {self.detail}" if self.detail else self.reason
        return DataError(
            message,
            file=file,
            line=self.line,
            column=self.column,
            expected=self.expected,
            row_kind=row_kind,
        )


# ---------------------------------------------------------------------------------- the rows
class Rows:
    """The data rows of one file as a DataFrame plus the physical line number of each row.

    Loaders flag bad rows with vectorised masks (:meth:`flag`); under ``errors="raise"`` the
    first flagged row raises at once, under ``"skip"`` flagged rows are counted in the report and
    dropped by :meth:`compact`.  :meth:`finish` drops what is left flagged and counts the rest as
    loaded; call it exactly once per file.
    """

    def __init__(
        self,
        file: Path,
        df: pd.DataFrame,
        lines: np.ndarray,
        *,
        errors: Errors,
        report: LoadReport,
        row_kind: str = "line",
    ) -> None:
        self.file = file
        self.df = df.reset_index(drop=True)
        self.lines = np.asarray(lines, dtype=np.int64)
        self.errors = errors
        self.report = report
        self.row_kind = row_kind
        self.bad = np.zeros(len(self.df), dtype=bool)

    def __len__(self) -> int:
        return len(self.df)

    def flag(
        self,
        mask: Any,
        reason: str,
        *,
        column: str | int | Sequence[Any] | np.ndarray | None = None,
        expected: str | None = None,
        values: Sequence[Any] | np.ndarray | pd.Series | None = None,
        always_skip: bool = False,
    ) -> None:
        """Mark the rows where ``mask`` is true as bad for ``reason``.

        ``column`` is one name/number or one per row; ``values`` (one per row) are quoted in
        the error message.  ``always_skip``: count the rows as rejected even under
        ``errors="raise"`` (an exact repeat of a row loses nothing, so it stops nothing).
        """
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        if not mask.any():
            return
        where = np.flatnonzero(mask)
        if self.errors == "raise" and not always_skip:
            i = int(where[0])
            col = column
            if isinstance(column, (np.ndarray, pd.Series, list, tuple)):
                col = _item(column, i)
            detail = None if values is None else repr(_item(values, i))
            raise Problem(int(self.lines[i]), reason, col, expected, detail).error(
                self.file, self.row_kind
            )
        for line in self.lines[where]:
            self.report.reject(self.file, int(line), reason)
        self.bad |= mask

    def compact(self) -> np.ndarray:
        """Drop the flagged rows; returns the keep mask (over the rows before dropping)."""
        keep = ~self.bad
        if not keep.all():
            self.df = self.df[keep].reset_index(drop=True)
            self.lines = self.lines[keep]
            self.bad = np.zeros(len(self.df), dtype=bool)
        return keep

    def finish(self) -> pd.DataFrame:
        self.compact()
        self.report.loaded(len(self.df))
        return self.df


def _item(values: Any, i: int) -> Any:
    if isinstance(values, pd.Series):
        v = values.iloc[i]
    else:
        v = values[i]
    return v.item() if isinstance(v, np.generic) else v


def emit(problems: Iterable[Problem], file: Path, errors: Errors, report: LoadReport) -> None:
    """Raise the earliest problem (``raise``) or count each one as a rejected row (``skip``)."""
    problems = sorted(problems, key=lambda p: p.line)
    if not problems:
        return
    if errors == "raise":
        raise problems[0].error(file)
    for p in problems:
        report.reject(file, p.line, p.reason)


# ---------------------------------------------------------------------------------- the file
@dataclass
class TextFile:
    """The bytes of one text file (gunzipped, BOM removed), checked to exist and be non-empty."""

    path: Path
    raw: bytes

    @classmethod
    def open(cls, path: str | Path, *, what: str) -> TextFile:
        """Read ``path``; a missing or empty file raises whatever ``errors`` says (not a row)."""
        p = Path(path)
        if not p.exists():
            raise DataError("missing file", file=p, expected=what)
        if not p.is_file():
            raise DataError("not a file", file=p, expected=what)
        raw = p.read_bytes()
        if p.suffix == ".gz":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as e:
                raise DataError(f"cannot gunzip: {e}", file=p, expected=what) from None
        if raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            raise DataError("empty file", file=p, expected=what)
        return cls(p, normalize_newlines(raw))

    def first_line(self) -> str:
        end = self.raw.find(b"\n")
        head = self.raw if end < 0 else self.raw[:end]
        try:
            return head.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            col = len(head[: e.start].decode("utf-8", "replace")) + 1
            raise DataError(
                f"{INVALID_UTF8}: byte 0x{head[e.start]:02x} in the header",
                file=self.path,
                line=1,
                column=col,
                expected="UTF-8 text",
            ) from None

    def physical_lines(self) -> int:
        return self.raw.count(b"\n") + (0 if self.raw.endswith(b"\n") else 1)


def normalize_newlines(raw: bytes) -> bytes:
    """CRLF and lone CR become LF, so every reader sees the same physical lines."""
    if b"\r" not in raw:
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def may_nest_deeper(raw: bytes, limit: int = MAX_JSON_DEPTH, chunk: int = 1 << 22) -> bool:
    """True when some line of ``raw`` opens more than ``limit`` brackets (``[``/``{``) that it
    has not closed: an upper bound of its JSON nesting depth (brackets in strings count too)."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    carry = base_carry = 0
    for start in range(0, len(buf), chunk):
        part = buf[start : start + chunk]
        delta = ((part == 0x5B) | (part == 0x7B)).astype(np.int32) - (
            (part == 0x5D) | (part == 0x7D)
        ).astype(np.int32)
        level = np.cumsum(delta, dtype=np.int64) + carry
        newline = part == 0x0A
        last = np.maximum.accumulate(np.where(newline, np.arange(len(part)), -1))
        base = np.where(last >= 0, level[np.maximum(last, 0)], base_carry)
        if len(part) and int((level - base).max()) > limit:
            return True
        carry, base_carry = int(level[-1]), int(base[-1])
    return False


def json_depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion limit)."""
    depth, stack = 0, [(obj, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in value if isinstance(v, (list, dict)))
    return depth


def has_control(values: pd.Series | pa.Array) -> np.ndarray:
    """True where a string holds NUL or another control character (C0 or DEL)."""
    arr = as_arrow(values)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    return to_numpy_bool(pc.match_substring_regex(arr, r"[\x00-\x1f\x7f]"))


def flag_bad_ids(rows: Rows, column: str) -> None:
    """Reject rows whose id in ``column`` is missing, blank or holds control characters."""
    values = rows.df[column]
    rows.flag(is_empty(values), EMPTY_ID, column=column, expected="a non-empty id")
    rows.flag(
        has_control(values.astype("str").fillna("")),
        CONTROL_IN_ID,
        column=column,
        expected="an id without NUL or control characters",
        values=values,
    )


def decode(raw: bytes, *, stop_at_first: bool = False) -> tuple[str, list[Problem]]:
    """Decode UTF-8, replacing each line that holds invalid bytes by an empty line.

    Returns the text and one problem per such line (1-based line, character column).  With
    ``stop_at_first`` the rest after the first bad line is decoded with replacement characters.
    """
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    parts: list[str] = []
    problems: list[Problem] = []
    pos, line_no = 0, 1  # line_no: the line holding byte ``pos``
    while True:
        try:
            parts.append(raw[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            bad = pos + e.start
            line_start = raw.rfind(b"\n", 0, bad) + 1
            line_end = raw.find(b"\n", bad)
            line_end = len(raw) if line_end < 0 else line_end
            line_no += raw.count(b"\n", pos, bad)
            column = len(raw[line_start:bad].decode("utf-8", "replace")) + 1
            problems.append(
                Problem(
                    line_no,
                    INVALID_UTF8,
                    column=column,
                    expected="UTF-8 text",
                    detail=f"byte 0x{raw[bad]:02x}",
                )
            )
            parts.append(raw[pos:line_start].decode("utf-8"))
            pos = line_end
            if stop_at_first:
                parts.append(raw[pos:].decode("utf-8", "replace"))
                break
            if pos >= len(raw):
                break
    return "".join(parts), problems


@dataclass
class Lines:
    """The non-blank data lines of a text file, after the header."""

    text: pa.Array  # one string per good line, trailing CR removed
    numbers: np.ndarray  # physical line number of each
    problems: list[Problem]  # lines that could not be decoded
    n_rows: int  # data rows read (good lines + undecodable lines)


def read_lines(tf: TextFile, *, skip: int = 0, errors: Errors = "raise") -> Lines:
    text, problems = decode(tf.raw, stop_at_first=errors == "raise")
    header_problems = [p for p in problems if p.line <= skip]
    if header_problems:
        raise header_problems[0].error(tf.path)
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    parts = parts[skip:]
    arr = pc.utf8_rtrim(pa.array(parts, type=pa.string()), characters="\r")
    numbers = np.arange(skip + 1, skip + 1 + len(parts), dtype=np.int64)
    nonblank = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0).to_numpy(
        zero_copy_only=False
    )
    undecodable = np.isin(numbers, [p.line for p in problems])
    keep = nonblank & ~undecodable
    return Lines(
        text=arr.filter(pa.array(keep)),
        numbers=numbers[keep],
        problems=problems,
        # an undecodable last line may have no entry in ``numbers``: count the problems
        n_rows=int((nonblank & ~undecodable).sum()) + len({p.line for p in problems}),
    )


# ------------------------------------------------------------------------ delimited text files
def _describe_delimiter(delimiter: str | None) -> str:
    return {None: "whitespace", "\t": "tab", " ": "space", ",": "comma"}.get(
        delimiter, repr(delimiter)
    )


def read_delimited(
    tf: TextFile,
    *,
    names: Sequence[str],
    delimiter: str | None,
    skip: int,
    errors: Errors,
    report: LoadReport,
    what: str,
    allow_empty: bool = False,
) -> Rows:
    """Parse an unquoted delimited file (``delimiter=None``: runs of whitespace) into string columns.

    Every row must have exactly ``len(names)`` fields; others are "wrong number of columns".
    """
    report.files.append(str(tf.path))
    parsed = _read_delimited_fast(tf, names, delimiter, skip)
    if parsed is None:
        df, numbers, problems, n_rows = _read_delimited_slow(tf, names, delimiter, skip, errors)
    else:
        df, numbers = parsed
        problems, n_rows = [], len(df)
    if n_rows == 0 and not allow_empty:
        raise DataError(
            "no data rows" + (" after the header" if skip else ""), file=tf.path, expected=what
        )
    report.read(n_rows)
    emit(problems, tf.path, errors, report)
    return Rows(tf.path, df, numbers, errors=errors, report=report)


def _read_delimited_fast(
    tf: TextFile, names: Sequence[str], delimiter: str | None, skip: int
) -> tuple[pd.DataFrame, np.ndarray] | None:
    """Whole-file pyarrow parse; None when the file needs the line-by-line pass."""
    try:
        table = pcsv.read_csv(
            pa.BufferReader(tf.raw),
            read_options=pcsv.ReadOptions(column_names=list(names), skip_rows=skip),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter or " ",
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=False,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # pyarrow also breaks lines at a lone CR; then its rows are no longer physical lines
    if table.num_rows != tf.physical_lines() - skip:
        return None
    blank = None
    for name in names:
        empty = pc.equal(table.column(name), "")
        blank = empty if blank is None else pc.and_(blank, empty)
    numbers = np.arange(skip + 1, skip + 1 + table.num_rows, dtype=np.int64)
    if blank is not None and pc.any(blank).as_py():
        keep = pc.invert(blank)
        table = table.filter(keep)
        numbers = numbers[keep.to_numpy(zero_copy_only=False)]
    return table.to_pandas(), numbers


def _read_delimited_slow(
    tf: TextFile, names: Sequence[str], delimiter: str | None, skip: int, errors: Errors
) -> tuple[pd.DataFrame, np.ndarray, list[Problem], int]:
    lines = read_lines(tf, skip=skip, errors=errors)
    if delimiter is None:
        fields = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(lines.text))
    else:
        fields = pc.split_pattern(lines.text, delimiter)
    counts = pc.list_value_length(fields).to_numpy(zero_copy_only=False)
    n = len(names)
    wrong = counts != n
    problems = list(lines.problems)
    expected = f"{n} {_describe_delimiter(delimiter)}-separated columns: {' '.join(names)}"
    for i in np.flatnonzero(wrong):
        problems.append(
            Problem(
                int(lines.numbers[i]),
                WRONG_COLUMNS,
                expected=expected,
                detail=f"found {counts[i]}",
            )
        )
        if errors == "raise":
            break
    good = ~wrong
    flat = pc.list_flatten(fields.filter(pa.array(good)))
    columns = {}
    for j, name in enumerate(names):
        columns[name] = flat.take(pa.array(np.arange(j, len(flat), n))).to_pandas()
    df = pd.DataFrame(columns) if columns else pd.DataFrame(index=range(int(good.sum())))
    return df, lines.numbers[good], problems, lines.n_rows


# ----------------------------------------------------------------------- vectorised checks
def as_arrow(values: pd.Series | pa.Array | pa.ChunkedArray | Sequence[Any]) -> pa.Array:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    return pa.array(values)


def to_numpy_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def is_uint(values: pd.Series | pa.Array) -> np.ndarray:
    """True where the string is a non-negative integer small enough for int64."""
    return to_numpy_bool(pc.match_substring_regex(as_arrow(values), r"^[0-9]{1,18}$"))


def to_int(values: pd.Series | pa.Array) -> np.ndarray:
    return pc.cast(as_arrow(values), pa.int64()).to_numpy(zero_copy_only=False)


def isin(values: pd.Series | pa.Array, allowed: Any) -> np.ndarray:
    """``values.isin(allowed)`` computed by Arrow (many times faster on strings)."""
    allowed_arr = as_arrow(allowed)
    if isinstance(allowed_arr, pa.ChunkedArray):
        allowed_arr = allowed_arr.combine_chunks()
    arr = as_arrow(values)
    if pa.types.is_null(arr.type) or len(arr) == 0:
        return np.zeros(len(arr), dtype=bool)
    if pa.types.is_null(allowed_arr.type):
        return np.zeros(len(arr), dtype=bool)
    if arr.type != allowed_arr.type:
        allowed_arr = allowed_arr.cast(arr.type)
    return to_numpy_bool(pc.is_in(arr, value_set=allowed_arr))


def is_empty(values: pd.Series) -> np.ndarray:
    """True where a string id is missing or blank."""
    return (values.isna() | (values.astype("str").str.strip() == "")).to_numpy(dtype=bool)


def to_float(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse strings as floats; returns the floats and the mask of non-empty unparseable ones."""
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index), values.notna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values):
        parsed = values.astype("float64")
        return parsed, np.isinf(parsed.to_numpy(dtype="float64", na_value=np.nan))
    numeric_like = values.map(
        lambda v: isinstance(v, (str, int, float)) and not isinstance(v, bool), na_action="ignore"
    )
    parsed = pd.to_numeric(values.where(numeric_like.fillna(False).astype(bool)), errors="coerce")
    parsed = parsed.astype("float64")
    blank = values.map(lambda v: isinstance(v, str) and not v.strip(), na_action="ignore")
    missing = values.isna().to_numpy(dtype=bool) | blank.fillna(False).to_numpy(dtype=bool)
    bad = (parsed.isna().to_numpy(dtype=bool) & ~missing) | np.isinf(parsed.to_numpy())
    return parsed, bad


def duplicated(values: pd.Series) -> np.ndarray:
    """True on every repeat of a value after its first occurrence."""
    return values.duplicated(keep="first").to_numpy(dtype=bool)


def first_seen(values: Iterable[pd.Series]) -> pd.Series:
    """Unique values of several columns in order of first appearance, as strings."""
    parts = [v for v in values if len(v)]
    if not parts:
        return pd.Series([], dtype="str")
    return pd.Series(pd.concat(parts, ignore_index=True).unique(), dtype="str")


def string_table(**columns: Any) -> pd.DataFrame:
    """A DataFrame whose listed columns are pandas ``str`` (Arrow-backed)."""
    return pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in columns.items()})


def dataset_name(folder: Path, format_name: str) -> str:
    """A folder's name, or its parent's when the folder is named after the format
    (``amazon-beauty/kgat`` -> ``amazon-beauty``)."""
    resolved = folder.resolve()
    if resolved.name.lower() == format_name and resolved.parent.name:
        return resolved.parent.name
    return resolved.name
