"""Every bad input is a clear error or a counted skip: the generated corpus of malformed inputs
over all loaders (no traceback, no crash), and the exact reason of each case issue #10 found."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kgwb.data import load_dataset
from tests.bad_inputs import KGAT, RECBOLE, RECBOLE_TOKEN_TIME, TABLE_HEADER, TABLE_ROWS, generate

HERE = Path(__file__).parent
CSV = TABLE_HEADER + "\n".join(TABLE_ROWS) + "\n"  # data rows on lines 2-4
JSONL = (
    '{"user_id": "U1", "item_id": "I1", "rating": 5}\n'
    '{"user_id": "U2", "item_id": "I2", "rating": 3}\n'
)


def test_the_corpus_never_crashes_nor_leaks_a_traceback(tmp_path):
    """> 100 malformed inputs, each through ``kgwb data summary`` in raise and skip mode, in a
    child process so that a crash of a native reader fails this test instead of pytest."""
    assert len(generate()) > 100
    proc = subprocess.run(
        [sys.executable, str(HERE / "bad_inputs.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["cases"] > 100
    assert report["problems"] == []


def _file(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_bytes(text.encode())
    return folder


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("U9,I1,5,inf", "timestamp", "not a timestamp"),
        ("U9,I1,5,1e30", "timestamp", "not a timestamp"),
        ("U9,I1,5,9999-12-31T23:59:59", "timestamp", "not a timestamp"),
        ("U9,I1,5,yesterday", "timestamp", "not a timestamp"),
        ("U9,I1,inf,1", "rating", "not a number"),
        ("U9,I1,NaN,1", "rating", "not a number"),
        ("U\x009,I1,5,1", "user_id", "control character in id"),
        ("U9,I\x1b1,5,1", "item_id", "control character in id"),
    ],
)
def test_csv_rows(tmp_path, check_bad_input, row, column, reason):
    path = _file(tmp_path, "t.csv", CSV + row + "\n")
    check_bad_input(
        lambda e: load_dataset(path, format="table", errors=e),
        file="t.csv",
        line=5,
        column=column,
        reason=reason,
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 200_000, "nested too deeply"),  # crashed pyarrow's JSON reader
        ("{'a': " + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
        ('{"user_id": "U9", "item_id": "I1", "rating": NaN}', "invalid JSON"),
        ('{"user_id": "U9", "item_id": "I1", "rating": Infinity}', "invalid JSON"),
        ('{"user_id": null, "item_id": "I1"}', "empty id"),  # was the user "None"
        ('{"user_id": "U\\u00009", "item_id": "I1"}', "control character in id"),
        ('{"user_id": "U9", "item_id": "I1", "timestamp": 1e30}', "not a timestamp"),
        ('{"user_id": "U9", "item_id": "I1", "rating": 1e400}', "not a number"),
    ],
)
def test_json_lines(tmp_path, check_bad_input, line, reason):
    path = _file(tmp_path, "t.jsonl", JSONL + line + "\n")
    check_bad_input(
        lambda e: load_dataset(path, format="table", errors=e),
        file="t.jsonl",
        line=3,
        reason=reason,
    )


def test_lone_cr_is_a_line_break(tmp_path):
    csv = load_dataset(_file(tmp_path, "t.csv", CSV.replace("\n", "\r")), format="table")
    assert csv.interactions["user_id"].tolist() == ["U1", "U2", "U3"]
    kgat = load_dataset(
        _folder(tmp_path, {**KGAT, "train.txt": KGAT["train.txt"].replace("\n", "\r")}),
        format="kgat",
    )
    train = kgat.interactions[kgat.interactions["split"] == "train"]
    assert sorted(set(train["user_id"])) == ["u0", "u1", "u2"]  # not all merged into user 0
    assert len(train) == 5


@pytest.mark.parametrize(
    ("files", "file", "line", "column", "reason"),
    [
        (
            {"d.inter": RECBOLE["d.inter"] + "U3\tI1\t5\t1e30\n"},
            "d.inter",
            5,
            "timestamp",
            "timestamp out of range",
        ),
        (
            {"d.inter": RECBOLE["d.inter"] + "U3\tI1\t5\tinf\n"},
            "d.inter",
            5,
            "timestamp",
            "not a number",
        ),
        (
            {"d.inter": RECBOLE["d.inter"] + "U3\tI1\tinf\t1\n"},
            "d.inter",
            5,
            "rating",
            "not a number",
        ),
        (
            {"d.inter": RECBOLE_TOKEN_TIME["d.inter"] + "U3\tI1\tyesterday\n"},
            "d.inter",
            4,
            "timestamp",
            "not a number",
        ),
        (
            {"d.inter": RECBOLE["d.inter"] + "U\x003\tI1\t5\t1\n"},
            "d.inter",
            5,
            "user_id",
            "control character in id",
        ),
    ],
)
def test_recbole_rows(tmp_path, check_bad_input, files, file, line, column, reason):
    folder = _folder(tmp_path, {**RECBOLE, **files})
    check_bad_input(
        lambda e: load_dataset(folder, format="recbole", errors=e),
        file=file,
        line=line,
        column=column,
        reason=reason,
    )


def test_kgat_duplicate_user_line_is_rejected(tmp_path, check_bad_input):
    folder = _folder(tmp_path, {**KGAT, "train.txt": KGAT["train.txt"] + "0 2\n"})
    check_bad_input(
        lambda e: load_dataset(folder, format="kgat", errors=e),
        file="train.txt",
        line=4,
        column=1,
        reason="duplicate user line",
    )


def test_repeated_interactions_are_counted_even_under_raise(tmp_path):
    ds = load_dataset(_file(tmp_path, "t.csv", CSV + TABLE_ROWS[0] + "\n"), format="table")
    assert len(ds.interactions) == 3
    assert ds.report.rejected_by_reason == {"duplicate interaction": 1}
    assert ds.report.rows_loaded + ds.report.rejected_count == ds.report.rows_read


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 200_000, "nested too deeply"),  # was a RecursionError
        ('{"id": null, "input": "a red b"}', "empty id"),
        ('{"id": "x\\u0000", "input": "a red b"}', "control character in id"),
        ('{"input": "a red b", "target_scores": {"Color": {"red": NaN}}}', "invalid JSON"),
    ],
)
def test_attribute_lines(tmp_path, check_bad_input, line, reason):
    good = (
        '{"input": "Acme red shoe", "category": "Shoes", "target_scores": {"Color": {"red": 1}}}\n'
    )
    path = _file(tmp_path, "a.jsonl", good + line + "\n")
    check_bad_input(
        lambda e: load_dataset(path, format="attributes", errors=e),
        file="a.jsonl",
        line=2,
        reason=reason,
    )
