"""KGAT/KGIN folder loader: a tiny folder written per test, then every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgwb.data import detect_format, load_dataset
from kgwb.data.loaders.kgat import load_kgat
from kgwb.errors import DataError

FILES = {
    "user_list.txt": "org_id remap_id\nU0 0\nU1 1\nU2 2\n",
    "item_list.txt": "org_id remap_id\nI0 0\nI1 1\nI2 2\nI3 3\n",
    "relation_list.txt": "org_id remap_id\nproduced_by 0\nalso_bought 1\n",
    "entity_list.txt": (
        "org_id\tremap_id\ttype\nI0\t0\titem\nI1\t1\titem\nI2\t2\titem\nI3\t3\titem\n"
        "Acme Co\t4\tbrand\nP9\t5\tproduct\n"
    ),
    # user 2 has no train items
    "train.txt": "0 0 1\n1 2\n2\n",
    "valid.txt": "0 2\n1 3\n",
    "test.txt": "0 3\n2 0 1\n",
    "kg_final.txt": "0 0 4\n1 0 4\n0 1 5\n2 1 0\n",
}
ROWS = 3 + 4 + 2 + 6 + 3 + 2 + 2 + 4


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def kgat_dir(tmp_path: Path) -> Path:
    return write(tmp_path / "toy", FILES)


def test_loads_names_splits_and_graph(kgat_dir: Path) -> None:
    ds = load_kgat(kgat_dir)
    assert ds.name == "toy"
    assert ds.users["user_id"].tolist() == ["U0", "U1", "U2"]
    assert ds.items["item_id"].tolist() == ["I0", "I1", "I2", "I3"]
    inter = ds.interactions
    assert list(inter.columns) == ["user_id", "item_id", "split"]
    assert inter.values.tolist() == [
        ["U0", "I0", "train"],
        ["U0", "I1", "train"],
        ["U1", "I2", "train"],
        ["U0", "I2", "valid"],
        ["U1", "I3", "valid"],
        ["U0", "I3", "test"],
        ["U2", "I0", "test"],
        ["U2", "I1", "test"],
    ]
    assert ds.kg.values.tolist() == [
        ["item:I0", "produced_by", "brand:Acme Co"],
        ["item:I1", "produced_by", "brand:Acme Co"],
        ["item:I0", "also_bought", "product:P9"],
        ["item:I2", "also_bought", "item:I0"],
    ]
    assert ds.entities["type"].tolist() == ["item"] * 4 + ["brand", "product"]
    assert ds.entities["name"].tolist()[4] == "Acme Co"
    assert ds.item_entities.values.tolist() == [[f"I{i}", f"item:I{i}"] for i in range(4)]
    for df in ds.tables().values():
        for column in ("user_id", "item_id", "entity_id", "head", "relation", "tail"):
            if column in df:
                assert str(df[column].dtype) == "str"
    report = ds.report
    assert report.rows_read == report.rows_loaded == ROWS
    assert report.rejected_count == 0
    assert sorted(Path(f).name for f in report.files) == sorted(FILES)
    ds.validate()


def test_registry_detects_and_loads(kgat_dir: Path) -> None:
    assert detect_format(kgat_dir) == "kgat"
    ds = load_dataset(kgat_dir, errors="skip")
    assert ds.summary()["interactions"] == {"train": 3, "valid": 2, "test": 3}


def test_without_name_maps_ids_are_the_integers(tmp_path: Path) -> None:
    files = {k: v for k, v in FILES.items() if not k.endswith("_list.txt")}
    ds = load_kgat(write(tmp_path / "plain", files))
    assert ds.users["user_id"].tolist() == ["0", "1", "2"]
    assert ds.items["item_id"].tolist() == ["0", "1", "2", "3"]
    assert ds.kg.values.tolist()[0] == ["0", "0", "4"]
    types = dict(zip(ds.entities["entity_id"], ds.entities["type"], strict=True))
    assert types == {
        "0": "item",
        "1": "item",
        "2": "item",
        "3": "item",
        "4": "entity",
        "5": "entity",
    }
    assert ds.item_entities.values.tolist() == [[str(i), str(i)] for i in range(4)]
    assert "split" in ds.interactions and ds.has_split


def test_untyped_entity_list_uses_org_ids(tmp_path: Path) -> None:
    files = dict(
        FILES, **{"entity_list.txt": "org_id remap_id\nI0 0\nI1 1\nI2 2\nI3 3\nm.4 4\nm.5 5\n"}
    )
    ds = load_kgat(write(tmp_path / "untyped", files))
    assert ds.kg["tail"].tolist() == ["m.4", "m.4", "m.5", "I0"]
    assert ds.entities["type"].tolist() == ["item"] * 4 + ["entity", "entity"]
    assert ds.item_entities["entity_id"].tolist() == ["I0", "I1", "I2", "I3"]


def test_entity_names_decode_html_character_references_ids_do_not(tmp_path: Path) -> None:
    entities = FILES["entity_list.txt"].replace("Acme Co", "L&#39;Oreal &amp;amp; Co")
    ds = load_kgat(write(tmp_path / "escaped", dict(FILES, **{"entity_list.txt": entities})))
    brand = ds.entities[ds.entities["type"] == "brand"].iloc[0]
    assert brand["entity_id"] == "brand:L&#39;Oreal &amp;amp; Co"  # the file's id
    assert brand["name"] == "L'Oreal & Co"  # what views and exports show
    assert "brand:L&#39;Oreal &amp;amp; Co" in set(ds.kg["tail"])


def test_valid_is_optional_and_repeated_items_are_counted(tmp_path: Path) -> None:
    files = {k: v for k, v in FILES.items() if k != "valid.txt"}
    files["train.txt"] = "0 0 0 1\n1 2\n2\n"  # item 0 twice for user 0
    ds = load_kgat(write(tmp_path / "dups", files))
    assert ds.summary()["interactions"] == {"train": 3, "valid": 0, "test": 3}
    assert ds.report.duplicates_dropped == 1
    assert ds.summary()["load"]["duplicates_dropped"] == 1
    assert ds.report.rows_read == ROWS - 2


def test_messy_whitespace_gives_the_same_data(kgat_dir: Path, tmp_path: Path) -> None:
    """CRLF, blank lines, tabs and repeated spaces go through the line-by-line path."""
    messy = {
        name: content.replace("\n", "\r\n") if name != "entity_list.txt" else content
        for name, content in FILES.items()
    }
    messy["kg_final.txt"] = "0  0 4\n\n1\t0 4 \n0 1 5\n\n2 1 0\n\n"
    messy["train.txt"] = "0 0  1\r\n\r\n1 2 \r\n2\r\n"
    clean = load_kgat(kgat_dir)
    ds = load_kgat(write(tmp_path / "messy", messy))
    for name, df in clean.tables().items():
        assert ds.tables()[name].equals(df), name
    assert ds.report.rows_read == ROWS


# ------------------------------------------------------------------------------ bad input
BAD_ROWS = [
    # (file, content, line, column, reason)
    ("train.txt", "0 0 1\n1 x\n2\n", 2, 2, "not an integer"),
    ("train.txt", "0 0 1\n1 2 -3\n2\n", 2, 3, "not an integer"),
    ("kg_final.txt", "0 0 4\n1 0 4\n0 1 five\n2 1 0\n", 3, "tail", "not an integer"),
    (
        "item_list.txt",
        "org_id remap_id\nI0 0\nI1 one\nI2 2\nI3 3\n",
        3,
        "remap_id",
        "not an integer",
    ),
    ("kg_final.txt", "0 0 4\n1 0\n0 1 5\n2 1 0\n", 2, None, "wrong number of columns"),
    ("kg_final.txt", "0 0 4\n1 0 4\n0 1 5 7\n2 1 0\n", 3, None, "wrong number of columns"),
    (
        "entity_list.txt",
        "org_id\tremap_id\ttype\nI0\t0\titem\nI1\t1\titem\nI2 2 item\nI3\t3\titem\n"
        "Acme Co\t4\tbrand\nP9\t5\tproduct\n",
        4,
        None,
        "wrong number of columns",
    ),
    (
        "user_list.txt",
        "org_id remap_id\nU0 0\nU1 1 extra\nU2 2\n",
        3,
        None,
        "wrong number of columns",
    ),
    ("train.txt", b"0 0 1\n1 2\n2 \xff\n", 3, 3, "invalid UTF-8"),
    ("kg_final.txt", b"0 0 4\n1 0 4\n0 1 5\xe9\n2 1 0\n", 3, 6, "invalid UTF-8"),
    ("user_list.txt", b"org_id remap_id\nU0 0\nU\xc31 1\nU2 2\n", 3, 2, "invalid UTF-8"),
    ("test.txt", "0 3\n2 0 9\n", 2, 3, "unknown item"),
    ("valid.txt", "0 2\n7 3\n", 2, 1, "unknown user"),
    ("kg_final.txt", "0 0 4\n1 0 4\n0 1 42\n2 1 0\n", 3, "tail", "unknown entity"),
    ("kg_final.txt", "0 0 4\n1 0 4\n0 1 5\n2 7 0\n", 4, "relation", "unknown relation"),
    (
        "item_list.txt",
        "org_id remap_id\nI0 0\nI1 1\nI2 2\nI3 2\n",
        5,
        "remap_id",
        "duplicate remap_id",
    ),
    (
        "relation_list.txt",
        "org_id remap_id\nproduced_by 0\nproduced_by 1\n",
        3,
        "org_id",
        "duplicate relation",
    ),
]


@pytest.mark.parametrize(("file", "content", "line", "column", "reason"), BAD_ROWS)
def test_bad_rows(tmp_path, check_bad_input, file, content, line, column, reason) -> None:
    folder = write(tmp_path / "bad", dict(FILES, **{file: content}))
    ds = check_bad_input(
        lambda errors: load_kgat(folder, errors=errors),
        file=file,
        line=line,
        column=column,
        reason=reason,
    )
    assert ds.report.rejected_count >= 1


def test_skip_keeps_the_good_rows_of_a_bad_line_file(tmp_path: Path) -> None:
    files = dict(
        FILES, **{"train.txt": "0 0 1\n1 x\n2\n", "kg_final.txt": "0 0 4\n1 0\n0 1 5\n2 1 0\n"}
    )
    ds = load_kgat(write(tmp_path / "bad", files), errors="skip")
    assert ds.summary()["interactions"] == {"train": 2, "valid": 2, "test": 3}
    assert len(ds.kg) == 3
    assert ds.report.rejected_count == 2
    assert ds.report.rows_loaded == ROWS - 2 and ds.report.rows_read == ROWS


def test_unknown_user_in_train_cascades_into_counted_rejections(tmp_path: Path) -> None:
    files = dict(FILES, **{"user_list.txt": "org_id remap_id\nU0 0\nU1 1\nU0 2\n"})
    folder = write(tmp_path / "dup", files)
    with pytest.raises(DataError, match=r"user_list.txt:4:column org_id: duplicate user"):
        load_kgat(folder)
    report = load_kgat(folder, errors="skip").report
    # the duplicate row, then user 2's train and test lines
    assert report.rejected_by_reason == {"duplicate user": 1, "unknown user": 2}
    assert report.balanced


@pytest.mark.parametrize("errors", ["raise", "skip"])
@pytest.mark.parametrize("missing", ["train.txt", "test.txt", "kg_final.txt"])
def test_missing_required_file_raises_even_under_skip(tmp_path, missing, errors) -> None:
    folder = write(tmp_path / "m", {k: v for k, v in FILES.items() if k != missing})
    with pytest.raises(DataError, match="missing file") as info:
        load_kgat(folder, errors=errors)
    assert Path(info.value.file).name == missing


@pytest.mark.parametrize("errors", ["raise", "skip"])
@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("train.txt", "", "empty file"),
        ("kg_final.txt", "\n  \n", "empty file"),
        ("item_list.txt", "org_id remap_id\n", "no data rows after the header"),
    ],
)
def test_empty_file_raises_even_under_skip(tmp_path, file, content, message, errors) -> None:
    folder = write(tmp_path / "e", dict(FILES, **{file: content}))
    with pytest.raises(DataError, match=message) as info:
        load_kgat(folder, errors=errors)
    assert Path(info.value.file).name == file


def test_list_file_without_required_header_column(tmp_path: Path) -> None:
    folder = write(tmp_path / "h", dict(FILES, **{"user_list.txt": "org remap\nU0 0\n"}))
    with pytest.raises(DataError, match=r"user_list.txt:1: missing required column 'org_id'"):
        load_kgat(folder, errors="skip")


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        load_kgat(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        load_kgat(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="errors must be"):
        load_kgat(tmp_path, errors="ignore")
