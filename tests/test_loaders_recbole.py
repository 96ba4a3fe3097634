"""RecBole atomic-file loader: a tiny folder written per test, then every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kgwb.data import detect_format, load_dataset
from kgwb.data.loaders.recbole import load_recbole
from kgwb.errors import DataError

INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
FILES = {
    "toy.item": (
        "item_id:token\tbrand:token\tcategories:token_seq\tprice:float\ttitle:token_seq\tcolor:token\n"
        "I1\tAcme\tBeauty Hair_Care Shampoo\t9.5\tMild shampoo\tred\n"
        "I2\t\tBeauty Skin_Care\t\tFace cream\tblue\n"
        "I3\tZed\t\t12\tBrush\t\n"
    ),
    "toy.train.inter": INTER_HEADER + "U1\tI1\t5\t1000\nU1\tI2\t3\t1001.7\nU2\tI1\t4\t1002\n",
    "toy.valid.inter": INTER_HEADER + "U2\tI2\t2\t1003\n",
    "toy.test.inter": INTER_HEADER + "U1\tI3\t1\t1004\nU2\tI3\t5\t1005\n",
    "toy.kg": (
        "head_id:token\trelation_id:token\ttail_id:token\n"
        "item:I1\tproduced_by\tbrand:Acme\n"
        "item:I1\tbelongs_to\tcategory:Hair Care\n"
        "item:I2\talso_bought\tm.042\n"
    ),
    "toy.link": "item_id:token\tentity_id:token\nI1\titem:I1\nI2\titem:I2\nI3\titem:I3\n",
}
ROWS = 3 + 3 + 1 + 2 + 3 + 3


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


@pytest.fixture
def recbole_dir(tmp_path: Path) -> Path:
    return write(tmp_path / "toy", FILES)


def test_loads_presplit_folder(recbole_dir: Path) -> None:
    ds = load_recbole(recbole_dir)
    assert ds.name == "toy"
    items = ds.items.set_index("item_id")
    assert items.loc["I1", "category"] == "Shampoo"
    assert items.loc["I1", "category_path"] == "Beauty > Hair Care > Shampoo"
    assert items.loc["I2", "category"] == "Skin Care"
    assert pd.isna(items.loc["I2", "brand"]) and pd.isna(items.loc["I2", "price"])
    assert pd.isna(items.loc["I3", "category"]) and pd.isna(items.loc["I3", "color"])
    assert items.loc["I1", "price"] == 9.5 and items.loc["I1", "title"] == "Mild shampoo"
    assert items.loc["I2", "color"] == "blue"
    assert "categories" not in ds.items
    inter = ds.interactions
    assert inter["split"].tolist() == ["train"] * 3 + ["valid"] + ["test"] * 2
    assert inter["rating"].tolist() == [5.0, 3.0, 4.0, 2.0, 1.0, 5.0]
    assert inter["timestamp"].tolist() == [1000, 1001, 1002, 1003, 1004, 1005]
    assert str(inter["timestamp"].dtype) == "Int64"
    assert ds.users["user_id"].tolist() == ["U1", "U2"]
    assert list(ds.kg.columns) == ["head", "relation", "tail"]
    assert ds.kg.values.tolist()[1] == ["item:I1", "belongs_to", "category:Hair Care"]
    types = dict(zip(ds.entities["entity_id"], ds.entities["type"], strict=True))
    assert types == {
        "item:I1": "item",
        "item:I2": "item",
        "item:I3": "item",
        "brand:Acme": "brand",
        "category:Hair Care": "category",
        "m.042": "entity",
    }
    assert ds.entities.set_index("entity_id").loc["brand:Acme", "name"] == "Acme"
    assert ds.item_entities.values.tolist() == [
        ["I1", "item:I1"],
        ["I2", "item:I2"],
        ["I3", "item:I3"],
    ]
    assert ds.report.rows_read == ds.report.rows_loaded == ROWS
    assert detect_format(recbole_dir) == "recbole"
    assert load_dataset(recbole_dir).summary()["triples"] == 3
    ds.validate()


def test_single_inter_file_without_item_file(tmp_path: Path) -> None:
    folder = write(tmp_path / "one", {"one.inter": INTER_HEADER + "U1\tI1\t5\t1\nU1\tI1\t5\t1\n"})
    ds = load_recbole(folder / "one.inter")  # a file of the folder also works
    assert "split" not in ds.interactions
    assert len(ds.interactions) == 1  # a repeated row is a counted rejection, also under raise
    assert ds.report.rejected_by_reason == {"duplicate interaction": 1}
    assert ds.report.rows_loaded + ds.report.rejected_count == ds.report.rows_read
    assert ds.items["item_id"].tolist() == ["I1"]
    assert ds.kg is None and ds.entities is None


def test_folder_with_several_datasets_needs_a_name(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "many",
        {"a.inter": INTER_HEADER + "U\tI\t1\t1\n", "b.inter": INTER_HEADER + "V\tJ\t1\t1\n"},
    )
    with pytest.raises(DataError, match="several RecBole datasets"):
        load_recbole(folder)
    assert load_recbole(folder, name="b").users["user_id"].tolist() == ["V"]


# ------------------------------------------------------------------------------ bad input
def _replace(file: str, old: str, new: str) -> str:
    assert old in FILES[file]
    return FILES[file].replace(old, new)


BAD_ROWS = [
    # (file, content, line, column, reason)
    (
        "toy.train.inter",
        _replace("toy.train.inter", "U2\tI1\t4", "U2\tI1"),
        4,
        None,
        "wrong number of columns",
    ),
    (
        "toy.kg",
        _replace("toy.kg", "item:I2\talso_bought", "item:I2\talso_bought\tx"),
        4,
        None,
        "wrong number of columns",
    ),
    ("toy.item", _replace("toy.item", "Acme\t", "Acme\tx\t"), 2, None, "wrong number of columns"),
    (
        "toy.train.inter",
        _replace("toy.train.inter", "\t3\t", "\tthree\t"),
        3,
        "rating",
        "not a number",
    ),
    ("toy.item", _replace("toy.item", "9.5", "cheap"), 2, "price", "not a number"),
    (
        "toy.test.inter",
        FILES["toy.test.inter"].encode().replace(b"U2", b"U\xff2"),
        3,
        2,
        "invalid UTF-8",
    ),
    ("toy.kg", FILES["toy.kg"].encode().replace(b"m.042", b"m.\xe9042"), 4, 23, "invalid UTF-8"),
    ("toy.item", _replace("toy.item", "I3\tZed", "I1\tZed"), 4, "item_id", "duplicate item_id"),
    (
        "toy.valid.inter",
        _replace("toy.valid.inter", "U2\tI2", "U2\tI9"),
        2,
        "item_id",
        "unknown item_id",
    ),
    (
        "toy.link",
        _replace("toy.link", "I3\titem:I3", "I4\titem:I4"),
        4,
        "item_id",
        "unknown item_id",
    ),
    (
        "toy.link",
        _replace("toy.link", "I3\titem:I3", "I2\titem:I3"),
        4,
        "item_id",
        "duplicate item_id",
    ),
    ("toy.train.inter", _replace("toy.train.inter", "U2\tI1", "\tI1"), 4, "user_id", "empty id"),
    ("toy.kg", _replace("toy.kg", "\tproduced_by\t", "\t\t"), 2, "relation_id", "empty id"),
]


@pytest.mark.parametrize(("file", "content", "line", "column", "reason"), BAD_ROWS)
def test_bad_rows(tmp_path, check_bad_input, file, content, line, column, reason) -> None:
    folder = write(tmp_path / "toy", dict(FILES, **{file: content}))
    check_bad_input(
        lambda errors: load_recbole(folder, errors=errors),
        file=file,
        line=line,
        column=column,
        reason=reason,
    )


def test_unknown_users_are_rejected_when_a_user_file_exists(tmp_path, check_bad_input) -> None:
    files = dict(FILES, **{"toy.user": "user_id:token\tage:float\nU1\t30\nU2\t41\n"})
    files["toy.test.inter"] = _replace("toy.test.inter", "U2\tI3", "U3\tI3")
    folder = write(tmp_path / "toy", files)
    ds = check_bad_input(
        lambda errors: load_recbole(folder, errors=errors),
        file="toy.test.inter",
        line=3,
        column="user_id",
        reason="unknown user_id",
    )
    assert ds.users["age"].tolist() == [30.0, 41.0]


@pytest.mark.parametrize("errors", ["raise", "skip"])
@pytest.mark.parametrize(
    ("file", "header", "message", "column"),
    [
        (
            "toy.train.inter",
            "user_id:token\titem_id:token\trating:int\ttimestamp:float",
            "unknown typed header 'rating:int'",
            "rating",
        ),
        (
            "toy.item",
            "item_id:token\tbrand\tcategories:token_seq\tprice:float\ttitle:token_seq\tcolor:token",
            "malformed header field 'brand'",
            2,
        ),
        ("toy.link", "item:token\tentity_id:token", "missing required column 'item_id'", None),
        (
            "toy.kg",
            "head_id:token\trelation_id:token\thead_id:token",
            "duplicate column 'head_id'",
            3,
        ),
    ],
)
def test_bad_header_raises_even_under_skip(tmp_path, file, header, message, column, errors) -> None:
    body = FILES[file].split("\n", 1)[1]
    folder = write(tmp_path / "toy", dict(FILES, **{file: header + "\n" + body}))
    with pytest.raises(DataError) as info:
        load_recbole(folder, errors=errors)
    err = info.value
    assert message in str(err)
    assert f"{file}:1:" in str(err) and err.line == 1
    assert err.column == column
    assert "(expected " in str(err)


@pytest.mark.parametrize("errors", ["raise", "skip"])
@pytest.mark.parametrize(
    ("files", "file", "message"),
    [
        ({"toy.test.inter": None}, "toy.test.inter", "missing file"),
        ({"toy.train.inter": ""}, "toy.train.inter", "empty file"),
        ({"toy.item": "item_id:token\n"}, "toy.item", "no data rows after the header"),
        (
            {"toy.kg": b"head_id:token\trelation_id:token\ttail_id:\xfftoken\nx\ty\tz\n"},
            "toy.kg",
            "invalid UTF-8",
        ),
    ],
)
def test_file_level_problems_raise_even_under_skip(tmp_path, files, file, message, errors) -> None:
    merged = dict(FILES, **files)
    folder = write(tmp_path / "toy", {k: v for k, v in merged.items() if v is not None})
    with pytest.raises(DataError, match=message) as info:
        load_recbole(folder, errors=errors)
    assert Path(info.value.file).name == file


def test_no_atomic_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no RecBole atomic files"):
        load_recbole(tmp_path)
    with pytest.raises(DataError, match="no such file or folder"):
        load_recbole(tmp_path / "missing")


def test_skip_counts_every_bad_row(tmp_path: Path) -> None:
    files = dict(FILES)
    files["toy.train.inter"] = (
        INTER_HEADER + "U1\tI1\t5\t1000\nU1\tI9\t3\t1\nU2\tI1\tx\t2\nU2\tI1\n"
    )
    ds = load_recbole(write(tmp_path / "toy", files), errors="skip")
    assert dict(ds.report.rejected_by_reason) == {
        "unknown item_id": 1,
        "not a number": 1,
        "wrong number of columns": 1,
    }
    assert ds.report.balanced and ds.report.rows_read == ROWS + 1
    assert ds.summary()["interactions"] == {"train": 1, "valid": 1, "test": 2}


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("Beauty Hair_Care Shampoo", "Beauty > Hair Care > Shampoo"),  # RecBole: _ for spaces
        ("Beauty Creams,_Gels_&_Lotions", "Beauty > Creams, Gels & Lotions"),  # a comma in a token
        ("'Sports & Outdoors', 'Fitness', 'Yoga'", "Sports & Outdoors > Fitness > Yoga"),
        ("Food, Coffee", "Food > Coffee"),
        ("Home|Kitchen Tools", "Home > Kitchen Tools"),
        ("   ", None),
    ],
)
def test_categories_in_each_layout_real_files_use(tmp_path, raw, path):
    (tmp_path / "c.item").write_text(f"item_id:token\tcategories:token_seq\ni1\t{raw}\n")
    (tmp_path / "c.inter").write_text("user_id:token\titem_id:token\nu1\ti1\n")
    items = load_recbole(tmp_path).items.set_index("item_id")
    if path is None:
        assert pd.isna(items.loc["i1", "category_path"]) and pd.isna(items.loc["i1", "category"])
    else:
        assert items.loc["i1", "category_path"] == path
        assert items.loc["i1", "category"] == path.split(" > ")[-1]


def test_html_character_references_are_decoded_in_display_text_not_ids(tmp_path):
    """Amazon dumps escape names (``L&#39;Oreal``, sometimes twice): titles, brands,
    categories and entity names are display text and get decoded; ids keep the files' form so
    that the KG's tails still match them."""
    (tmp_path / "a.item").write_text(
        "item_id:token\tbrand:token\ttitle:token_seq\tcategories:token_seq\n"
        "i&amp;1\tL&#39;Oreal\tMen&amp;amp;s gel\tHair_&amp;_Skin\n"
    )
    (tmp_path / "a.inter").write_text("user_id:token\titem_id:token\nu1\ti&amp;1\n")
    (tmp_path / "a.kg").write_text(
        "head_id:token\trelation_id:token\ttail_id:token\nitem:i1\tproduced_by\tbrand:L&#39;Oreal\n"
    )
    ds = load_recbole(tmp_path)
    item = ds.items.iloc[0]
    assert item["item_id"] == "i&amp;1"  # an id: as in the file
    assert (item["brand"], item["title"]) == ("L'Oreal", "Men&s gel")
    assert item["category"] == "Hair & Skin"
    brand = ds.entities.set_index("entity_id").loc["brand:L&#39;Oreal"]
    assert brand["name"] == "L'Oreal"
