"""A small generator of malformed inputs for every loader, and a runner that feeds them to the
``kgwb data summary`` command in both error modes.

Each case is a valid little source (a file or a folder) with one defect: hand-written defects
that real data has shown (deep JSON nesting, lone CR line ends, NUL bytes in ids, ``inf`` and
out-of-range timestamps, JSON ``null`` ids, duplicates, ...) plus seeded random byte mutations.
The bar: no traceback and no crash — every case either loads (``skip`` then balances
``rows_loaded + rejected == rows_read``) or stops with ``kgwb: error`` and status 2.

Run as a script (``python tests/bad_inputs.py DIR``) it writes the corpus under DIR, runs every
case in this one process and prints a JSON list of failures, so that a crash of the process (a
segfault in a native reader) is caught by the calling test rather than killing pytest.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DEEP = 200_000  # the 200 KB line of nested brackets that crashed pyarrow's JSON reader

TABLE_HEADER = "user_id,item_id,rating,timestamp\n"
TABLE_ROWS = ["U1,I1,5,1500000000", "U2,I2,3,1500000100", "U3,I1,4,2020-01-01T00:00:00"]
JSON_ROWS = [
    {"user_id": "U1", "item_id": "I1", "rating": 5, "timestamp": 1500000000},
    {"user_id": "U2", "item_id": "I2", "rating": 3, "timestamp": 1500000100},
    {"user_id": "U3", "item_id": "I1", "rating": 4.5, "timestamp": 1500000200},
]
META_ROWS = [
    "{'asin': 'A1', 'title': 'Shampoo', 'related': {'also_bought': ['A2', 'B9']},"
    " 'categories': [['Beauty', 'Hair']]}",
    "{'asin': 'A2', 'title': 'Soap', 'brand': 'Acme', 'categories': [['Beauty']]}",
]
ATTR_ROWS = [
    {"input": "Acme red shoe 42", "category": "Shoes", "target_scores": {"Color": {"red": 1}}},
    {"input": "Zeta blue hat", "category": "Hats", "target_scores": {"Color": {"blue": 1}}},
    {"id": "x3", "input": "Plain mug", "category": "Mugs", "target_scores": {}},
]
RECBOLE = {
    "d.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "U1\tI1\t5\t1500000000\nU2\tI2\t3\t1500000100\nU1\tI2\t4\t1500000200\n",
    "d.item": "item_id:token\tbrand:token\tcategories:token_seq\nI1\tacme\tBeauty Hair\n"
    "I2\tzeta\tBeauty\n",
    "d.kg": "head_id:token\trelation_id:token\ttail_id:token\nI1\tproduced_by\tbrand:acme\n",
    "d.link": "item_id:token\tentity_id:token\nI1\tI1\nI2\tI2\n",
}
RECBOLE_TOKEN_TIME = {
    **RECBOLE,
    "d.inter": "user_id:token\titem_id:token\ttimestamp:token\nU1\tI1\t1500000000\n"
    "U2\tI2\t1500000100\n",
}
KGAT = {
    "train.txt": "0 0 1\n1 1 2\n2 0\n",
    "test.txt": "0 2\n1 0\n",
    "kg_final.txt": "0 0 3\n1 0 3\n2 1 4\n",
    "user_list.txt": "org_id remap_id\nu0 0\nu1 1\nu2 2\n",
}


@dataclass
class Case:
    name: str
    format: str
    files: dict[str, bytes]  # relative path -> content
    source: str  # relative path given to the loader


def _jsonl(rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def _table_cases() -> Iterator[tuple[str, str, str, str]]:
    """(name, suffix, format, text) for CSV, TSV and JSON lines tables."""
    csv_text = TABLE_HEADER + "\n".join(TABLE_ROWS) + "\n"
    bad_csv_rows = {
        "inf_timestamp": "U9,I1,5,inf",
        "huge_timestamp": "U9,I1,5,1e30",
        "far_date": "U9,I1,5,9999-12-31T23:59:59",
        "neg_huge_timestamp": "U9,I1,5,-1e20",
        "word_timestamp": "U9,I1,5,yesterday",
        "inf_rating": "U9,I1,inf,1500000000",
        "neg_inf_rating": "U9,I1,-Infinity,1500000000",
        "nan_rating": "U9,I1,NaN,1500000000",
        "nul_in_id": "U\x009,I1,5,1500000000",
        "control_in_id": "U\x079,I1,5,1500000000",
        "del_in_id": "U\x7f9,I1,5,1500000000",
        "empty_id": ",I1,5,1500000000",
        "blank_id": "  ,I1,5,1500000000",
        "duplicate_row": TABLE_ROWS[0],
        "too_few_columns": "U9,I1",
        "too_many_columns": "U9,I1,5,1,extra",
        "open_quote": 'U9,"I1,5,1500000000',
        "deep_cell": "U9,I1,5," + "[" * 5000,
        "long_line": "U9," + "I" * 300_000 + ",5,1",
    }
    for name, row in bad_csv_rows.items():
        yield f"csv_{name}", ".csv", "table", csv_text + row + "\n"
    yield "csv_lone_cr", ".csv", "table", csv_text.replace("\n", "\r")
    yield "csv_mixed_endings", ".csv", "table", TABLE_HEADER + "U1,I1,5,1\r\nU2,I2,3,2\rU3,I1,4,3\n"
    yield "csv_bom", ".csv", "table", "\ufeff" + csv_text
    yield "csv_header_only", ".csv", "table", TABLE_HEADER
    yield "csv_dup_header", ".csv", "table", "user_id,user_id\nU1,U2\n"
    yield "csv_missing_item_column", ".csv", "table", "user_id,rating\nU1,5\n"
    yield "tsv_tabs_in_quotes", ".tsv", "table", 'user_id\titem_id\n"U\t1"\tI1\nU2\tI2\n'

    jsonl = _jsonl(JSON_ROWS)
    bad_json_lines = {
        "deep_list": "[" * DEEP,
        "deep_object": '{"a":' * 20_000,
        "deep_in_value": json.dumps({"user_id": "U9", "item_id": "I1"})[:-1]
        + ', "x": '
        + "[" * 100
        + "]" * 100
        + "}",
        "nan_rating": '{"user_id": "U9", "item_id": "I1", "rating": NaN}',
        "inf_rating": '{"user_id": "U9", "item_id": "I1", "rating": Infinity}',
        "big_rating": '{"user_id": "U9", "item_id": "I1", "rating": 1e400}',
        "inf_timestamp_text": '{"user_id": "U9", "item_id": "I1", "timestamp": "inf"}',
        "huge_timestamp": '{"user_id": "U9", "item_id": "I1", "timestamp": 1e30}',
        "far_date": '{"user_id": "U9", "item_id": "I1", "timestamp": "9999-12-31T23:59:59"}',
        "null_id": '{"user_id": null, "item_id": "I1"}',
        "object_id": '{"user_id": {"a": 1}, "item_id": "I1"}',
        "list_id": '{"user_id": [1, 2], "item_id": "I1"}',
        "bool_id": '{"user_id": true, "item_id": "I1"}',
        "nul_id": '{"user_id": "U\\u00009", "item_id": "I1"}',
        "string_rating": '{"user_id": "U9", "item_id": "I1", "rating": "five"}',
        "bool_rating": '{"user_id": "U9", "item_id": "I1", "rating": true}',
        "list_rating": '{"user_id": "U9", "item_id": "I1", "rating": [5]}',
        "not_object": "[1, 2, 3]",
        "bare_string": '"hello"',
        "truncated": '{"user_id": "U9", "item_id": ',
        "python_deep": "{'a': " + "[" * 5000 + "]" * 5000 + "}",
        "python_deep_open": "{'a': " + "(" * 5000,
        "duplicate": json.dumps(JSON_ROWS[0]),
        "missing_item": '{"user_id": "U9"}',
    }
    for name, line in bad_json_lines.items():
        yield f"jsonl_{name}", ".jsonl", "table", jsonl + line + "\n"
    yield "jsonl_lone_cr", ".jsonl", "table", jsonl.replace("\n", "\r")
    yield "jsonl_only_deep", ".jsonl", "table", "[" * DEEP + "\n"
    yield "jsonl_invalid_utf8", ".jsonl", "table", jsonl + '{"user_id": "U\udcff"}\n'
    meta = _jsonl(META_ROWS)
    yield (
        "meta_deep_related",
        ".json",
        "table",
        meta + "{'asin': 'A3', 'related': " + "{'a': " * 3000 + "\n",
    )
    yield "meta_nul_asin", ".json", "table", meta + "{'asin': 'A\\x003'}\n"
    yield (
        "meta_deep_categories",
        ".json",
        "table",
        meta + '{"asin": "A4", "categories": "' + "[" * 3000 + '"}\n',
    )


def _attribute_cases() -> Iterator[tuple[str, str]]:
    good = _jsonl(ATTR_ROWS)
    lines = {
        "deep": "[" * DEEP,
        "deep_scores": '{"input": "a b", "target_scores": ' + "{" * 50_000,
        "null_id": '{"id": null, "input": "a red b", "target_scores": {}}',
        "nul_id": '{"id": "x\\u0000", "input": "a red b", "target_scores": {}}',
        "object_id": '{"id": {"k": 1}, "input": "a red b", "target_scores": {}}',
        "nan": '{"input": "a red b", "target_scores": {"Color": {"red": NaN}}}',
        "value_not_in_title": '{"input": "a red b", "target_scores": {"Color": {"green": 1}}}',
        "scores_list": '{"input": "a red b", "target_scores": [1]}',
        "values_not_object": '{"input": "a red b", "target_scores": {"Color": "red"}}',
        "number_title": '{"input": 5}',
        "empty_title": '{"input": "  "}',
        "category_number": '{"input": "a", "category": 3}',
        "duplicate_id": '{"id": "x3", "input": "Plain mug", "target_scores": {}}',
        "not_object": "[]",
        "truncated": '{"input": "a',
    }
    for name, line in lines.items():
        yield f"attributes_{name}", good + line + "\n"
    yield "attributes_lone_cr", good.replace("\n", "\r")
    yield "attributes_invalid_utf8", good + '{"input": "\udcff"}\n'


def _recbole_cases() -> Iterator[tuple[str, dict[str, str]]]:
    inter_rows = {
        "inf_timestamp": "U3\tI1\t5\tinf",
        "huge_timestamp": "U3\tI1\t5\t1e30",
        "nan_timestamp": "U3\tI1\t5\tnan",
        "neg_huge_timestamp": "U3\tI1\t5\t-1e30",
        "inf_rating": "U3\tI1\tinf\t1500000000",
        "nan_rating": "U3\tI1\tnan\t1500000000",
        "word_rating": "U3\tI1\tgood\t1500000000",
        "nul_user": "U\x003\tI1\t5\t1500000000",
        "control_item": "U3\tI\x1b1\t5\t1500000000",
        "unknown_item": "U3\tI404\t5\t1500000000",
        "duplicate": "U1\tI1\t5\t1500000000",
        "short_row": "U3\tI1",
        "empty_user": "\tI1\t5\t1",
    }
    for name, row in inter_rows.items():
        yield f"recbole_inter_{name}", {**RECBOLE, "d.inter": RECBOLE["d.inter"] + row + "\n"}
    for name, row in {
        "word": "U3\tI1\tyesterday",
        "inf": "U3\tI1\tinf",
        "date": "U3\tI1\t9999-12-31T23:59:59",
    }.items():
        files = {**RECBOLE_TOKEN_TIME}
        files["d.inter"] += row + "\n"
        yield f"recbole_token_timestamp_{name}", files
    yield "recbole_lone_cr", {**RECBOLE, "d.inter": RECBOLE["d.inter"].replace("\n", "\r")}
    yield "recbole_item_nul", {**RECBOLE, "d.item": RECBOLE["d.item"] + "I\x003\tacme\tX\n"}
    yield "recbole_item_duplicate", {**RECBOLE, "d.item": RECBOLE["d.item"] + "I1\tacme\tX\n"}
    yield "recbole_kg_control", {**RECBOLE, "d.kg": RECBOLE["d.kg"] + "I2\tr\x01\tbrand:z\n"}
    yield "recbole_link_unknown", {**RECBOLE, "d.link": RECBOLE["d.link"] + "I9\tI9\n"}
    yield "recbole_bad_header_type", {**RECBOLE, "d.inter": "user_id:int\titem_id:token\nU1\tI1\n"}
    yield "recbole_header_only", {**RECBOLE, "d.inter": "user_id:token\titem_id:token\n"}
    yield (
        "recbole_float_inf_feature",
        {
            **RECBOLE,
            "d.item": "item_id:token\tprice:float\nI1\tinf\nI2\t1e999\n",
        },
    )


def _kgat_cases() -> Iterator[tuple[str, dict[str, str]]]:
    yield "kgat_lone_cr", {**KGAT, "train.txt": KGAT["train.txt"].replace("\n", "\r")}
    yield "kgat_duplicate_user_line", {**KGAT, "train.txt": KGAT["train.txt"] + "0 2\n"}
    yield "kgat_duplicate_item", {**KGAT, "train.txt": "0 0 0 1\n1 1 2\n2 0\n"}
    yield "kgat_nul_token", {**KGAT, "train.txt": KGAT["train.txt"] + "3 \x00\n"}
    yield "kgat_negative", {**KGAT, "train.txt": KGAT["train.txt"] + "3 -1\n"}
    yield "kgat_huge_id", {**KGAT, "train.txt": KGAT["train.txt"] + "3 " + "9" * 40 + "\n"}
    yield "kgat_float_id", {**KGAT, "test.txt": KGAT["test.txt"] + "2 1.5\n"}
    yield "kgat_inf_id", {**KGAT, "test.txt": KGAT["test.txt"] + "2 inf\n"}
    yield "kgat_unknown_user", {**KGAT, "train.txt": KGAT["train.txt"] + "7 1\n"}
    yield "kgat_kg_short", {**KGAT, "kg_final.txt": KGAT["kg_final.txt"] + "1 2\n"}
    yield "kgat_kg_words", {**KGAT, "kg_final.txt": KGAT["kg_final.txt"] + "a b c\n"}
    yield "kgat_list_control", {**KGAT, "user_list.txt": KGAT["user_list.txt"] + "u\x013 3\n"}
    yield "kgat_list_duplicate", {**KGAT, "user_list.txt": KGAT["user_list.txt"] + "u0 4\n"}
    yield "kgat_list_no_header", {**KGAT, "user_list.txt": "u0 0\n"}
    yield "kgat_invalid_utf8", {**KGAT, "train.txt": KGAT["train.txt"] + "3 \udcff\n"}
    yield "kgat_empty_train", {**KGAT, "train.txt": "\n\n"}


def _parquet_cases() -> Iterator[tuple[str, bytes]]:
    import numpy as np
    import pandas as pd

    base = {"user_id": ["U1", "U2"], "item_id": ["I1", "I2"], "rating": [5.0, 3.0]}
    variants = {
        "nul_id": {**base, "user_id": ["U1", "U\x002"]},
        "null_id": {**base, "user_id": ["U1", None]},
        "inf_rating": {**base, "rating": [5.0, np.inf]},
        "nan_rating": {**base, "rating": [5.0, np.nan]},
        "huge_timestamp": {**base, "timestamp": [1.0, 1e30]},
        "int_ids": {**base, "user_id": [1, 2]},
        "list_ids": {**base, "item_id": [["I1"], ["I2"]]},
        "duplicate": {**base, "user_id": ["U1", "U1"], "item_id": ["I1", "I1"]},
    }
    for name, columns in variants.items():
        buffer = io.BytesIO()
        pd.DataFrame(columns).to_parquet(buffer, index=False)
        yield name, buffer.getvalue()
    yield "not_parquet", b"PAR1 this is not a parquet file PAR1"


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _random_mutations(base: bytes, rng: random.Random, n: int) -> Iterator[bytes]:
    specials = [b"\x00", b"\r", b"\n", b'"', b"'", b"[", b"{", b"}", b"\t", b",", b"\xff", b"\\"]
    for _ in range(n):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data) + 1)
            action = rng.random()
            if action < 0.5:
                data[pos:pos] = rng.choice(specials) * rng.choice([1, 1, 2, 300])
            elif action < 0.8 and pos < len(data):
                data[pos] = rng.randrange(256)
            else:
                del data[pos : pos + rng.randint(1, 8)]
        yield bytes(data)


def generate(seed: int = 0, random_per_format: int = 12) -> list[Case]:
    """Every hand-written case plus ``random_per_format`` random mutations per format."""
    cases: list[Case] = []
    for name, suffix, fmt, text in _table_cases():
        cases.append(Case(name, fmt, {f"t{suffix}": _encode(text)}, f"t{suffix}"))
    for name, text in _attribute_cases():
        cases.append(Case(name, "attributes", {"a.jsonl": _encode(text)}, "a.jsonl"))
    for name, files in _recbole_cases():
        cases.append(Case(name, "recbole", {k: _encode(v) for k, v in files.items()}, "."))
    for name, files in _kgat_cases():
        cases.append(Case(name, "kgat", {k: _encode(v) for k, v in files.items()}, "."))
    for name, data in _parquet_cases():
        cases.append(Case(f"parquet_{name}", "table", {"t.parquet": data}, "t.parquet"))
    rng = random.Random(seed)
    bases: list[tuple[str, str, dict[str, str], str]] = [
        ("csv", "table", {"t.csv": TABLE_HEADER + "\n".join(TABLE_ROWS) + "\n"}, "t.csv"),
        ("jsonl", "table", {"t.jsonl": _jsonl(JSON_ROWS)}, "t.jsonl"),
        ("meta", "table", {"t.json": _jsonl(META_ROWS)}, "t.json"),
        ("attributes", "attributes", {"a.jsonl": _jsonl(ATTR_ROWS)}, "a.jsonl"),
        ("recbole", "recbole", RECBOLE, "."),
        ("kgat", "kgat", KGAT, "."),
    ]
    for label, fmt, files, source in bases:
        names = sorted(files)
        for i in range(random_per_format):
            target = names[i % len(names)]
            mutated = next(_random_mutations(_encode(files[target]), rng, 1))
            content = {k: _encode(v) for k, v in files.items()}
            content[target] = mutated
            cases.append(Case(f"random_{label}_{i}", fmt, content, source))
    return cases


def write(case: Case, root: Path) -> Path:
    folder = root / case.name
    for rel, data in case.files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder / case.source


def check(case: Case, source: Path) -> list[str]:
    """Problems with one case (empty when it behaves): run ``kgwb data summary`` in both modes."""
    from kgwb.cli import main

    problems = []
    for mode in ("raise", "skip"):
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = main(
                    ["data", "summary", str(source), "--format", case.format, "--on-bad-rows", mode]
                )
        except BaseException as e:  # noqa: BLE001 - what escapes main is the failure here
            problems.append(f"{case.name} [{mode}]: {type(e).__name__}: {str(e)[:200]}")
            continue
        if rc == 0:
            load = json.loads(out.getvalue())["load"]
            if load["rows_loaded"] + load["rejected"] != load["rows_read"]:
                problems.append(f"{case.name} [{mode}]: unbalanced {load}")
        elif rc != 2 or not err.getvalue().startswith("kgwb: error: "):
            problems.append(f"{case.name} [{mode}]: rc {rc}, stderr {err.getvalue()[:200]!r}")
    return problems


def run_all(root: Path, cases: list[Case]) -> list[str]:
    problems: list[str] = []
    for case in cases:
        problems += check(case, write(case, root))
    return problems


def main_script(argv: list[str]) -> int:
    root = Path(argv[0])
    cases = generate()
    problems = run_all(root, cases)
    print(json.dumps({"cases": len(cases), "problems": problems}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main_script(sys.argv[1:]))
