"""Generic table loader: CSV/TSV/Parquet/JSON lines, the Amazon presets, and bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from kgwb.data import load_dataset
from kgwb.data.loaders.table import AMAZON_METADATA, AMAZON_REVIEWS, load_tables
from kgwb.errors import DataError

REVIEWS = [
    {"reviewerID": "U1", "asin": "A1", "reviewerName": "Ann", "helpful": [0, 0], "reviewText": "great",
     "overall": 5.0, "summary": "ok", "unixReviewTime": 1391040000, "reviewTime": "01 30, 2014"},
    {"reviewerID": "U2", "asin": "A2", "helpful": [1, 2], "reviewText": "bad", "overall": 1.0,
     "summary": "no", "unixReviewTime": 1391040001, "reviewTime": "01 30, 2014"},
    {"reviewerID": "U1", "asin": "A2", "helpful": [1, 2], "reviewText": "meh", "overall": 3.0,
     "summary": "hm", "unixReviewTime": 1391040002, "reviewTime": "01 30, 2014"},
]  # fmt: skip
# old Amazon metadata: one Python dict literal per line
META = [
    "{'asin': 'A1', 'title': 'Shampoo', 'price': 9.5, 'salesRank': {'Beauty': 12}, 'brand': 'Acme',"
    " 'categories': [['Beauty', 'Hair Care', 'Shampoo'], ['Beauty', 'Other']],"
    " 'related': {'also_bought': ['A2', 'X9'], 'bought_together': ['A2']}}",
    "{'asin': 'A2', 'title': 'Conditioner', 'description': 'Soft',"
    " 'categories': [['Beauty', 'Hair Care', 'Conditioner']], 'related': {'also_viewed': ['A1']}}",
]


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def amazon_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "beauty"
    write(folder / "reviews_Beauty_5.json.gz", jsonl(REVIEWS))
    write(folder / "meta_Beauty.json.gz", "\n".join(META) + "\n")
    return folder


def test_amazon_reviews_and_metadata(amazon_dir: Path) -> None:
    ds = load_tables(amazon_dir)
    assert ds.name == "beauty"
    items = ds.items.set_index("item_id")
    assert items.loc["A1", "category_path"] == "Beauty > Hair Care > Shampoo"
    assert items.loc["A1", "category"] == "Shampoo"
    assert items.loc["A1", "brand"] == "Acme" and items.loc["A1", "price"] == 9.5
    assert items.loc["A2", "description"] == "Soft" and pd.isna(items.loc["A2", "price"])
    assert json.loads(items.loc["A1", "salesRank"]) == {"Beauty": 12}
    assert "related" not in ds.items and "categories" not in ds.items
    reviews = ds.reviews
    assert reviews[
        ["user_id", "item_id", "rating", "text", "summary", "timestamp"]
    ].values.tolist() == [
        ["U1", "A1", 5.0, "great", "ok", 1391040000],
        ["U2", "A2", 1.0, "bad", "no", 1391040001],
        ["U1", "A2", 3.0, "meh", "hm", 1391040002],
    ]
    assert list(ds.interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert len(ds.interactions) == 3
    assert ds.users["user_id"].tolist() == ["U1", "U2"]
    assert sorted(ds.kg.values.tolist()) == [
        ["item:A1", "also_bought", "item:A2"],
        ["item:A1", "also_bought", "product:X9"],
        ["item:A1", "bought_together", "item:A2"],
        ["item:A2", "also_viewed", "item:A1"],
    ]
    assert ds.entities.values.tolist() == [
        ["item:A1", "item", "A1"],
        ["item:A2", "item", "A2"],
        ["product:X9", "product", "X9"],
    ]
    assert ds.item_entities.values.tolist() == [["A1", "item:A1"], ["A2", "item:A2"]]
    assert ds.report.rows_read == ds.report.rows_loaded == 5
    ds.validate()
    ds.save(amazon_dir.parent / "saved")  # nested values were flattened: Parquet accepts them


def test_presets_name_the_amazon_columns() -> None:
    assert AMAZON_REVIEWS["reviewerID"] == "user_id" and AMAZON_REVIEWS["asin"] == "item_id"
    assert AMAZON_METADATA["asin"] == "item_id"


def test_single_amazon_file_roles(amazon_dir: Path) -> None:
    reviews_only = load_tables(amazon_dir / "reviews_Beauty_5.json.gz")
    assert len(reviews_only.reviews) == 3 and reviews_only.items["item_id"].tolist() == ["A1", "A2"]
    meta_only = load_dataset(amazon_dir / "meta_Beauty.json.gz", format="table")
    assert meta_only.items["item_id"].tolist() == ["A1", "A2"]
    assert len(meta_only.interactions) == 0 and len(meta_only.kg) == 4


def test_amazon_2018_metadata(tmp_path: Path) -> None:
    meta = [
        {"asin": "B1", "title": "Serum", "category": ["Beauty", "Skin Care", "Serums"],
         "description": ["Light", "fresh"], "price": "$12.50", "also_buy": ["B2"], "also_view": []},
        {"asin": "B2", "title": "Toner", "category": [], "price": "", "also_buy": [], "also_view": ["B1"]},
    ]  # fmt: skip
    ds = load_tables(None, items=write(tmp_path / "meta.jsonl", jsonl(meta)))
    items = ds.items.set_index("item_id")
    assert items.loc["B1", "category_path"] == "Beauty > Skin Care > Serums"
    assert items.loc["B1", "description"] == "Light\nfresh"
    assert items.loc["B1", "price"] == 12.5 and pd.isna(items.loc["B2", "price"])
    assert pd.isna(items.loc["B2", "category"])
    assert sorted(ds.kg.values.tolist()) == [
        ["item:B1", "also_bought", "item:B2"],
        ["item:B2", "also_viewed", "item:B1"],
    ]


def test_python_literal_lines_parse_like_literal_eval(tmp_path: Path) -> None:
    lines = [
        """{'asin': 'C1', 'title': "L'Oreal Paris", 'brand': None, 'related': {'also_bought': ['C2']}}""",
        """{'asin': 'C2', 'title': 'Say "hi"', 'price': 1e-05}""",
        r"""{'asin': 'C3', 'title': 'Caf\xe9 \'quoted\' \\ "x"'}""",
        """{'asin': 'C4', 'title': 'True None False', 'categories': [['A', 'B']]}""",
        "",
        """{"asin": "C5", "title": "plain JSON", "price": null}""",
    ]
    path = write(tmp_path / "meta.json", "\n".join(lines) + "\n")
    ds = load_tables(None, items=path)
    assert ds.items["title"].tolist() == [
        "L'Oreal Paris",
        'Say "hi"',
        "Caf\xe9 'quoted' \\ \"x\"",
        "True None False",
        "plain JSON",
    ]
    assert ds.items["price"].iloc[1] == 1e-05
    assert ds.items["category_path"].iloc[3] == "A > B"
    assert pd.isna(ds.items["brand"].iloc[0])
    assert ds.kg.values.tolist() == [["item:C1", "also_bought", "item:C2"]]
    assert ds.report.rows_read == 5


def test_csv_with_column_mapping_and_quotes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "events.csv",
        'uid,iid,stars,when,note\n7,10,4.5,2020-01-02T00:00:00Z,"a, b"\n8,11,,1577923200,\n7,10,3,,x\n',
    )
    ds = load_tables(
        path, columns={"uid": "user_id", "iid": "item_id", "stars": "rating", "when": "timestamp"}
    )
    inter = ds.interactions
    assert inter["user_id"].tolist() == ["7", "8", "7"]  # duplicates kept, ids are strings
    assert inter["rating"].tolist()[0] == 4.5 and pd.isna(inter["rating"].iloc[1])
    assert inter["timestamp"].tolist()[:2] == [1577923200, 1577923200]
    assert pd.isna(inter["timestamp"].iloc[2])
    assert inter["note"].tolist()[0] == "a, b" and pd.isna(inter["note"].iloc[1])
    assert ds.items["item_id"].tolist() == ["10", "11"]


def test_blank_lines_are_skipped_but_empty_cells_are_rows(tmp_path, check_bad_input) -> None:
    path = write(tmp_path / "ratings.csv", "user_id,item_id\nu1,i1\n\nu2,i2\n,\n")
    ds = check_bad_input(
        lambda errors: load_tables(path, errors=errors),
        file="ratings.csv",
        line=5,
        column="user_id",
        reason="empty id",
    )
    assert ds.report.rows_read == 3 and len(ds.interactions) == 2


def test_tsv_folder_with_roles(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    write(folder / "interactions.tsv", "user_id\titem_id\tsplit\nu1\ti1\ttrain\nu2\ti2\ttest\n")
    write(folder / "items.tsv", "item_id\ttitle\tprice\ni1\tMug\t3.5\ni2\tCup\t2\n")
    write(folder / "users.tsv", "user_id\tage\nu1\t30\nu2\t40\n")
    write(folder / "README.md", "not a table")
    ds = load_tables(folder)
    assert ds.has_split and ds.split("test")["item_id"].tolist() == ["i2"]
    assert ds.items["price"].tolist() == [3.5, 2.0]
    assert ds.users["age"].tolist() == ["30", "40"]  # features other than ids are kept as read
    assert ds.report.rows_read == 6
    ds.validate()


def test_parquet_and_dict_source(tmp_path: Path) -> None:
    inter = tmp_path / "inter.parquet"
    pd.DataFrame({"user_id": [1, 2], "item_id": [5, 6], "rating": [1.0, 2.0]}).to_parquet(inter)
    items = write(tmp_path / "catalog.csv", "item_id,title\n5,A\n6,B\n")
    ds = load_tables({"interactions": inter, "items": items})
    assert ds.interactions["user_id"].tolist() == ["1", "2"]
    assert str(ds.interactions["item_id"].dtype) == "str"
    with pytest.raises(KeyError, match="unknown table role 'ratings'"):
        load_tables({"ratings": inter})


def test_csv_line_numbers_count_quoted_line_breaks(tmp_path: Path, check_bad_input) -> None:
    path = write(
        tmp_path / "reviews.csv",
        'user_id,item_id,text\nu1,i1,"two\nlines"\nu2,i2,"three\nlong\nlines"\nu3,i3\nu4,i4,ok\n',
    )
    ds = check_bad_input(
        lambda errors: load_tables(None, reviews=path, errors=errors),
        file="reviews.csv",
        line=7,
        reason="wrong number of columns",
    )
    assert ds.reviews["text"].tolist() == ["two\nlines", "three\nlong\nlines", "ok"]


# ------------------------------------------------------------------------------ bad input
META_DUP = "\n".join([META[0], META[1], META[0].replace("'Shampoo'", "'Again'")]) + "\n"
REVIEWS_UNKNOWN = jsonl(REVIEWS[:2] + [dict(REVIEWS[2], asin="Z9")])
BAD_ROWS = [
    # (file name, content, line, column, reason)
    ("ratings.csv", "user_id,item_id,rating\nu1,i1,5\nu2,i2\nu3,i3,1\n", 3, None, "wrong number of columns"),
    ("ratings.tsv", "user_id\titem_id\nu1\ti1\nu2\ti2\textra\n", 3, None, "wrong number of columns"),
    ("ratings.csv", b"user_id,item_id,rating\nu1,i1,5\nu\xff2,i2,4\nu3,i3,1\n", 3, 2, "invalid UTF-8"),
    ("ratings.jsonl", b'{"user_id": "u1", "item_id": "i1"}\n{"user_id": "\xc3(", "item_id": "i2"}\n', 2, 14, "invalid UTF-8"),
    ("ratings.csv", "user_id,item_id,rating\nu1,i1,five\nu2,i2,4\n", 2, "rating", "not a number"),
    ("ratings.csv", "user_id,item_id,timestamp\nu1,i1,yesterday\nu2,i2,4\n", 2, "timestamp", "not a timestamp"),
    ("ratings.csv", "user_id,item_id,split\nu1,i1,train\nu2,i2,dev\n", 3, "split", "unknown split"),
    ("ratings.csv", "user_id,item_id\nu1,i1\n ,i2\n", 3, "user_id", "empty id"),
    ("ratings.jsonl", '{"user_id": "u1", "item_id": "i1"}\n{"user_id": "u2", "item_id": \n', 2, 30, "invalid JSON"),
    ("ratings.jsonl", '{"user_id": "u1", "item_id": "i1"}\n{"user_id": "u2"}\n', 2, "item_id", "empty id"),
    ("ratings.jsonl", '{"user_id": "u1", "item_id": "i1"}\n["u2", "i2"]\n', 2, None, "not a JSON object"),
    ("meta_Beauty.json", META_DUP, 3, "item_id", "duplicate item_id"),
    ("meta_Beauty.json", META[0] + "\n" + META[1].replace("'price'", "'x'") + "\n{'asin': 'A3', 'price': 'cheap'}\n", 3, "price", "not a number"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "line", "column", "reason"), BAD_ROWS)
def test_bad_rows(tmp_path, check_bad_input, name, content, line, column, reason) -> None:
    path = write(tmp_path / name, content)
    check_bad_input(
        lambda errors: load_tables(path, errors=errors),
        file=name,
        line=line,
        column=column,
        reason=reason,
    )


def test_reviews_of_unknown_items_are_rejected(tmp_path, check_bad_input) -> None:
    folder = tmp_path / "beauty"
    write(folder / "reviews_Beauty_5.json", REVIEWS_UNKNOWN)
    write(folder / "meta_Beauty.json", "\n".join(META) + "\n")
    ds = check_bad_input(
        lambda errors: load_tables(folder, errors=errors),
        file="reviews_Beauty_5.json",
        line=3,
        column="item_id",
        reason="unknown item_id",
    )
    assert len(ds.reviews) == len(ds.interactions) == 2


def test_single_file_plus_explicit_roles(amazon_dir: Path) -> None:
    ds = load_tables(
        amazon_dir / "reviews_Beauty_5.json.gz", items=amazon_dir / "meta_Beauty.json.gz"
    )
    assert len(ds.reviews) == 3 and len(ds.kg) == 4
    assert ds.meta["source"]["reviews"].endswith("reviews_Beauty_5.json.gz")
    with pytest.raises(DataError, match="a second file for the reviews table"):
        load_tables(
            amazon_dir / "reviews_Beauty_5.json.gz", reviews=amazon_dir / "reviews_Beauty_5.json.gz"
        )


def test_parquet_rows_are_numbered(tmp_path, check_bad_input) -> None:
    users = tmp_path / "users.parquet"
    pd.DataFrame({"user_id": ["u1", "u2", "u1"]}).to_parquet(users)
    inter = write(tmp_path / "inter.csv", "user_id,item_id\nu1,i1\n")
    check_bad_input(
        lambda errors: load_tables(None, users=users, interactions=inter, errors=errors),
        file="users.parquet",
        line=3,
        column="user_id",
        reason="duplicate user_id",
        row_kind="row",
    )


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_file_level_problems_raise_even_under_skip(tmp_path: Path, errors: str) -> None:
    cases = [
        (
            write(tmp_path / "a.csv", "user,item_id\nu1,i1\n"),
            r"a.csv:1: missing required column 'user_id'",
        ),
        (
            write(tmp_path / "b.jsonl", '{"item_id": "i"}\n'),
            r"b.jsonl: missing required column 'user_id'",
        ),
        (write(tmp_path / "c.csv", ""), r"c.csv: empty file"),
        (write(tmp_path / "d.csv", "user_id,item_id\n"), r"d.csv: no data rows"),
        (
            write(tmp_path / "e.csv", "user_id,user_id\nu,u\n"),
            r"e.csv:1:column 2: duplicate column",
        ),
        (tmp_path / "missing.csv", r"missing.csv: no such file"),
        (write(tmp_path / "f.xlsx", "x"), r"f.xlsx: unknown table format"),
        (write(tmp_path / "g.parquet", "not parquet"), r"g.parquet: cannot read Parquet"),
    ]
    for path, message in cases:
        with pytest.raises(DataError, match=message):
            load_tables(path, errors=errors)
    with pytest.raises(DataError, match="missing file"):
        load_tables(None, items=tmp_path / "nope.csv", errors=errors)
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"user_id": [], "item_id": []}).to_parquet(empty)
    with pytest.raises(DataError, match="empty file"):
        load_tables(empty, errors=errors)


def test_folder_with_unrecognised_files(tmp_path: Path) -> None:
    write(tmp_path / "x" / "one.csv", "user_id,item_id\nu,i\n")
    write(tmp_path / "x" / "two.csv", "user_id,item_id\nu,i\n")
    with pytest.raises(DataError, match="cannot tell which table"):
        load_tables(tmp_path / "x")
    with pytest.raises(DataError, match="no table files"):
        load_tables(tmp_path)
