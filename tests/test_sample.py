"""The built-in sample generator: determinism, sizes, exact ground truth, and the behaviour it models
(long tails, taste signal, co-purchase sequences, leave-last-out split, consistent KG)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from kgwb.data import load_dataset
from kgwb.data.explore import gini
from kgwb.data.sample import (
    CATALOG_ONLY_ATTRIBUTES,
    SIZES,
    TEXT_ONLY_ATTRIBUTES,
    SampleConfig,
    generate,
    load_sample,
)
from kgwb.data.sample.vocab import ATTRIBUTES, LEAVES
from kgwb.data.schema import SPLITS, Dataset
from kgwb.errors import UnknownNameError


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return generate("tiny", seed=0)


@pytest.fixture(scope="module")
def small() -> Dataset:
    return generate("small", seed=0)


def _all_tables(ds: Dataset) -> dict[str, pd.DataFrame]:
    return {**ds.tables(), **{f"truth/{k}": v for k, v in ds.truth.items()}}


# ------------------------------------------------------------------------ determinism and sizes
def test_same_seed_gives_identical_tables(tiny):
    again = generate("tiny", seed=0)
    ours, theirs = _all_tables(tiny), _all_tables(again)
    assert ours.keys() == theirs.keys()
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)
    assert again.meta == tiny.meta


def test_another_seed_gives_other_data(tiny):
    other = generate("tiny", seed=1)
    assert not other.items["title"].equals(tiny.items["title"])
    assert not other.interactions[["user_id", "item_id"]].equals(
        tiny.interactions[["user_id", "item_id"]]
    )
    assert set(other.items["brand"]) != set(tiny.items["brand"])
    assert other.meta["seed"] == 1 and tiny.meta["seed"] == 0


def test_tiny_and_small_have_the_documented_sizes(tiny, small):
    assert len(tiny.users) == 200 and len(tiny.items) == 150
    assert 2_000 <= len(tiny.interactions) <= 6_000
    assert len(small.users) == 2_000 and len(small.items) == 1_000
    assert 30_000 <= len(small.interactions) <= 50_000
    for ds in (tiny, small):
        cfg = SIZES[ds.meta["size"]]
        # targets are met up to a small shortfall from de-duplication
        assert 0.98 * cfg.n_interactions <= len(ds.interactions) <= cfg.n_interactions
        assert ds.meta["config"]["n_users"] == cfg.n_users


def test_larger_sizes_are_configured_in_their_documented_ranges():
    assert list(SIZES) == ["tiny", "small", "medium", "large", "xlarge"]
    assert 80_000 <= SIZES["medium"].n_interactions <= 150_000
    assert 800_000 <= SIZES["large"].n_interactions <= 1_500_000
    assert 4_000_000 <= SIZES["xlarge"].n_interactions <= 6_000_000
    sizes = [SIZES[s].n_interactions for s in SIZES]
    assert sizes == sorted(sizes)


def test_tiny_generates_in_well_under_a_few_seconds():
    start = time.perf_counter()
    generate("tiny", seed=5)
    assert time.perf_counter() - start < 3.0  # ~0.2 s on a laptop; loose for loaded CI machines


def test_dataset_validates_and_has_schema_types(tiny, small):
    for ds in (tiny, small):
        ds.validate()
    inter = small.interactions
    assert str(inter["timestamp"].dtype) == "Int64"
    assert inter["rating"].between(1, 5).all() and set(inter["rating"].unique()) == {
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
    }
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert {
        "item_id",
        "title",
        "description",
        "brand",
        "category",
        "category_path",
        "price",
    } <= set(small.items)
    assert (small.items["price"] > 0).all()
    assert small.items["category_path"].str.count(" > ").eq(2).all()
    assert (small.items["category_path"].str.split(" > ").str[-1] == small.items["category"]).all()


def test_saved_sample_loads_back_identical(tiny, tmp_path):
    back = Dataset.load(tiny.save(tmp_path / "ds"))
    for name, df in tiny.tables().items():
        pd.testing.assert_frame_equal(back.tables()[name], df, check_dtype=False, obj=name)
    assert sorted(back.truth) == sorted(tiny.truth)


# --------------------------------------------------------------------------------- text truth
def test_every_span_is_exact(small):
    spans = small.truth["attribute_spans"]
    assert len(spans) > len(small.items)  # several values per item
    text = small.items.set_index("item_id")[["title", "description"]]
    for item, field, value, start, end in spans[
        ["item_id", "field", "value", "start", "end"]
    ].itertuples(index=False):
        assert text.at[item, field][start:end] == value, (item, field, value)
    assert set(spans["field"]) == {"title", "description"}


def test_span_canonical_values_are_the_true_values(small):
    spans = small.truth["attribute_spans"]
    truth = small.truth["item_attributes_true"]
    attrs = spans[spans["attribute"] != "brand"].merge(
        truth,
        left_on=["item_id", "attribute", "canonical"],
        right_on=["item_id", "attribute", "value"],
        how="left",
    )
    assert attrs["in_text"].notna().all() and attrs["in_text"].all()
    # every value flagged in_text is written somewhere, and nothing else is
    written = spans[spans["attribute"] != "brand"][["item_id", "attribute"]].drop_duplicates()
    flagged = truth[truth["in_text"]][["item_id", "attribute"]]
    pd.testing.assert_frame_equal(
        written.sort_values(["item_id", "attribute"]).reset_index(drop=True),
        flagged.sort_values(["item_id", "attribute"]).reset_index(drop=True),
    )
    # some values are written as variants ("Navy" for "Navy Blue"), not just canonically
    assert (spans["value"] != spans["canonical"]).mean() > 0.2


def test_text_only_attributes_are_in_text_but_not_in_the_catalog(small):
    truth = small.truth["item_attributes_true"]
    catalog = small.item_attributes
    spans = small.truth["attribute_spans"]
    assert set(TEXT_ONLY_ATTRIBUTES) & set(truth["attribute"])
    assert not catalog["attribute"].isin(TEXT_ONLY_ATTRIBUTES).any()
    text_only = truth[truth["attribute"].isin(TEXT_ONLY_ATTRIBUTES)]
    assert len(text_only) > 100 and text_only["in_text"].all() and not text_only["in_catalog"].any()
    assert spans["attribute"].isin(TEXT_ONLY_ATTRIBUTES).sum() >= len(text_only)
    # catalog-only attributes are never written in text
    assert not spans["attribute"].isin(CATALOG_ONLY_ATTRIBUTES).any()
    cat_only = truth[truth["attribute"].isin(CATALOG_ONLY_ATTRIBUTES)]
    assert len(cat_only) and cat_only["in_catalog"].all() and not cat_only["in_text"].any()
    # attributes in both channels are sometimes missing from one of them
    both = truth[~truth["attribute"].isin(TEXT_ONLY_ATTRIBUTES + CATALOG_ONLY_ATTRIBUTES)]
    assert (both["in_text"] & ~both["in_catalog"]).any() and (
        ~both["in_text"] & both["in_catalog"]
    ).any()
    assert (both["in_text"] | both["in_catalog"]).all()


def test_catalog_table_is_exactly_the_in_catalog_truth(small):
    truth = small.truth["item_attributes_true"]
    expected = truth[truth["in_catalog"]][["item_id", "attribute", "value"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(small.item_attributes.reset_index(drop=True), expected)


def test_brand_surfaces_map_to_one_brand_and_items_use_variants(small):
    variants = small.truth["entity_variants"]
    brands = variants[variants["kind"] == "brand"]
    per_surface = brands.groupby(brands["surface"].str.casefold())["canonical_id"].nunique()
    assert (per_surface == 1).all()
    truth = small.truth["item_brand_true"]
    lookup = brands.set_index("surface")["canonical_id"]
    listed = small.items["brand"]
    assert listed.isin(lookup.index).all()
    assert (lookup.reindex(listed).to_numpy() == ("brand:" + truth["brand_id"]).to_numpy()).all()
    non_canonical = listed.to_numpy() != truth["brand"].to_numpy()
    assert 0.2 < non_canonical.mean() < 0.8
    # variants are more than case changes (suffixes, '&'/'and', missing spaces, typos)
    differ = (
        listed[non_canonical].str.casefold().to_numpy()
        != truth["brand"][non_canonical].str.casefold().to_numpy()
    )
    assert differ.mean() > 0.2
    # the title mentions the listing's brand spelling (most titles start with it)
    starts = [title.startswith(brand) for title, brand in zip(small.items["title"], listed)]
    assert np.mean(starts) > 0.8


def test_attribute_value_surfaces_are_unambiguous(small):
    variants = small.truth["entity_variants"]
    values = variants[variants["kind"] == "attribute_value"]
    per_surface = values.groupby([values["attribute"], values["surface"].str.casefold()])[
        "canonical_id"
    ].nunique()
    assert (per_surface == 1).all()
    assert values["canonical_id"].str.match(r"^value:[a-z_]+=.+").all()
    spans = small.truth["attribute_spans"]
    known = set(zip(values["attribute"], values["surface"]))
    attr_spans = spans[spans["attribute"] != "brand"]
    assert all(pair in known for pair in zip(attr_spans["attribute"], attr_spans["value"]))


def test_vocabulary_leaves_use_known_values():
    names = {a.name for a in ATTRIBUTES}
    canon = {a.name: {v.split("|")[0] for v in a.values} for a in ATTRIBUTES}
    assert 30 <= len(LEAVES) <= 60
    for leaf in LEAVES:
        for raw in leaf.attributes:
            assert raw.rstrip("?") in names, (leaf.name, raw)
        for attr, values in leaf.values.items():
            assert set(values) <= canon[attr], (leaf.name, attr)


# ------------------------------------------------------------------------------- behaviour
def test_item_popularity_and_user_activity_are_long_tailed(small):
    counts = (
        small.interactions["item_id"].value_counts().reindex(small.items["item_id"], fill_value=0)
    )
    counts = np.sort(counts.to_numpy())[::-1]
    assert counts[: len(counts) // 10].sum() / counts.sum() > 0.3
    assert gini(counts) > 0.35
    activity = small.interactions["user_id"].value_counts().to_numpy()
    assert gini(activity) > 0.3
    assert activity.max() > 5 * np.median(activity)
    assert activity.min() >= SIZES["small"].min_user_interactions


def test_users_prefer_their_categories_far_above_chance(small):
    tastes = small.truth["user_tastes"]
    top3 = tastes[tastes["kind"] == "category"].groupby("user_id").head(3)[["user_id", "target"]]
    leaf = small.items.set_index("item_id")["category"]
    inter = small.interactions.assign(target=small.interactions["item_id"].map(leaf).to_numpy())
    observed = len(inter.merge(top3, on=["user_id", "target"])) / len(inter)
    shuffled = inter.assign(
        user_id=np.random.default_rng(0).permutation(inter["user_id"].to_numpy())
    )
    chance = len(shuffled.merge(top3, on=["user_id", "target"])) / len(inter)
    assert observed > 2.5 * chance
    # favourite brands too
    fav = tastes[tastes["kind"] == "brand"][["user_id", "target_id"]]
    brand = small.truth["item_brand_true"].set_index("item_id")["brand_id"]
    with_brand = inter.assign(target_id="brand:" + inter["item_id"].map(brand).to_numpy())
    observed = len(with_brand.merge(fav, on=["user_id", "target_id"])) / len(inter)
    shuffled = with_brand.assign(user_id=shuffled["user_id"].to_numpy())
    assert observed > 1.5 * len(shuffled.merge(fav, on=["user_id", "target_id"])) / len(inter)


def test_ratings_follow_taste_fit(small):
    modes = small.truth["interaction_modes"]["mode"].to_numpy()
    rating = small.interactions["rating"].to_numpy()
    assert rating[modes == "taste"].mean() > rating[modes == "noise"].mean() + 0.5
    assert (rating == 5).mean() > (rating == 1).mean()  # marketplace skew


def test_mode_shares_are_near_the_configured_ones(small):
    shares = small.truth["interaction_modes"]["mode"].value_counts(normalize=True)
    configured = dict(zip(["taste", "popularity", "follow", "noise"], SIZES["small"].mode_shares))
    for mode, share in configured.items():
        assert abs(shares[mode] - share) < 0.08, (mode, shares[mode])


def test_sequences_follow_the_co_purchase_graph(small):
    kg = small.kg
    links = kg[kg["relation"].isin(["also_bought", "also_viewed"])]
    edges = set(
        zip(links["head"].str.removeprefix("item:"), links["tail"].str.removeprefix("item:"))
    )
    inter = small.interactions
    prev = inter.groupby("user_id")["item_id"].shift(1)
    modes = small.truth["interaction_modes"]["mode"].to_numpy()
    linked = np.asarray([(p, i) in edges for p, i in zip(prev, inter["item_id"])])
    follow = modes == "follow"
    assert linked[follow].mean() > 0.7  # the rest lost their predecessor to de-duplication
    assert linked[follow].mean() > 5 * linked[~follow & prev.notna().to_numpy()].mean()
    # also_bought goes to complementary leaves far more often than to the same leaf
    bought = kg[kg["relation"] == "also_bought"]
    leaf = small.items.set_index("item_id")["category"]
    same = (
        leaf.reindex(bought["head"].str.removeprefix("item:")).to_numpy()
        == leaf.reindex(bought["tail"].str.removeprefix("item:")).to_numpy()
    )
    assert same.mean() < 0.5


def test_timestamps_increase_per_user_within_the_window(small):
    inter = small.interactions
    ts = inter["timestamp"].astype("int64")
    same_user = inter["user_id"].eq(inter["user_id"].shift(1))
    assert (ts.diff()[same_user] > 0).all()
    cfg = SIZES["small"]
    assert ts.min() >= cfg.start_time and ts.max() <= cfg.end_time


def test_leave_last_out_split_per_user(small):
    inter = small.interactions
    assert set(inter["split"].unique()) == set(SPLITS)
    per_user = inter.groupby(["user_id", "split"]).size().unstack(fill_value=0)
    assert (per_user["test"] == 1).all() and (per_user["valid"] == 1).all()
    ts = inter.assign(ts=inter["timestamp"].astype("int64")).groupby(["user_id", "split"])["ts"]
    first, last = ts.min().unstack(), ts.max().unstack()
    assert (last["train"] < first["valid"]).all() and (last["valid"] < first["test"]).all()


def test_time_split_and_no_split():
    timed = generate("tiny", split="time")
    inter = timed.interactions.assign(ts=timed.interactions["timestamp"].astype("int64"))
    bounds = inter.groupby("split")["ts"].agg(["min", "max"])
    assert (
        bounds.loc["train", "max"]
        < bounds.loc["valid", "min"]
        <= bounds.loc["valid", "max"]
        < bounds.loc["test", "min"]
    )
    assert 0.7 < (inter["split"] == "train").mean() < 0.9
    assert "split" not in generate("tiny", split="none").interactions.columns


def test_reviews_agree_with_ratings_and_carry_noise(small):
    reviews = small.reviews
    assert 0.2 < len(reviews) / len(small.interactions) < 0.4
    joined = reviews.merge(small.interactions, on=["user_id", "item_id"], suffixes=("", "_i"))
    assert len(joined) == len(reviews) and (joined["rating"] == joined["rating_i"]).all()
    assert (joined["timestamp"] > joined["timestamp_i"]).all()
    positive = reviews["text"].str.contains("Love this|Highly recommend|Works perfectly|Best ")
    negative = reviews["text"].str.contains(
        "Disappointed|Dissapointed|Would not buy|Not worth|Cheaply"
    )
    assert reviews.loc[positive, "rating"].min() >= 4 and reviews.loc[negative, "rating"].max() <= 2
    assert reviews["text"].str.contains("&#39;|<br />").any()
    assert reviews["text"].str.contains("realy|recomend|qualty|woud|grate|mony").any()
    assert reviews["text"].str.contains("👍|😍|😡|👎").any()
    mentions = small.truth["review_mentions"].merge(reviews, on=["user_id", "item_id"])
    found = [v.casefold() in t.casefold() for v, t in zip(mentions["value"], mentions["text"])]
    assert np.mean(found) > 0.9  # the rest lost a letter to a planted typo


def test_kg_entities_and_links_are_consistent(small):
    kg, entities, links = small.kg, small.entities, small.item_entities
    assert entities["entity_id"].is_unique
    known = set(entities["entity_id"])
    assert kg["head"].isin(known).all() and kg["tail"].isin(known).all()
    assert set(kg["relation"]) == {
        "produced_by",
        "belongs_to",
        "subcategory_of",
        "also_bought",
        "also_viewed",
    }
    assert entities["entity_id"].str.match(r"^(item:I\d{5}|brand:B\d{4}|category:C\d{3})$").all()
    assert (entities["entity_id"].str.split(":").str[0] == entities["type"]).all()
    assert (links["entity_id"] == "item:" + links["item_id"]).all() and links["item_id"].is_unique
    assert set(links["item_id"]) == set(small.items["item_id"])
    name = entities.set_index("entity_id")["name"]
    belongs = kg[kg["relation"] == "belongs_to"]
    leaf = small.items.set_index("item_id")["category"]
    assert (
        name.reindex(belongs["tail"]).to_numpy() == leaf.reindex(belongs["head"].str[5:]).to_numpy()
    ).all()
    produced = kg[kg["relation"] == "produced_by"]
    brand = small.truth["item_brand_true"].set_index("item_id")["brand_id"]
    assert (
        produced["tail"].to_numpy()
        == ("brand:" + brand.reindex(produced["head"].str[5:])).to_numpy()
    ).all()
    assert 0.75 < len(produced) / len(small.items) < 0.95  # incomplete linking, on purpose
    parents = kg[kg["relation"] == "subcategory_of"]
    assert parents["head"].is_unique and len(parents) == (entities["type"] == "category").sum() - 5
    assert not kg.duplicated().any()


# ------------------------------------------------------------------------- entry points
def test_load_sample_and_the_registry(tiny):
    pd.testing.assert_frame_equal(load_sample("sample:tiny").interactions, tiny.interactions)
    via_registry = load_dataset("sample:tiny", seed=0)
    pd.testing.assert_frame_equal(via_registry.items, tiny.items)
    assert via_registry.report.balanced and via_registry.report.rejected_count == 0
    small_shape = load_sample(
        "sample", n_users=40, n_items=100, n_interactions=400, n_brands=10, errors="skip"
    )
    assert small_shape.meta["size"] == "small" and len(small_shape.users) == 40


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        load_sample("sample:gigantic")
    for size in SIZES:
        assert size in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        generate("tiny", n_userz=5)
    assert "n_users" in str(err.value)
    with pytest.raises(UnknownNameError):
        generate("tiny", split="random")


def test_overrides_and_config_checks():
    ds = generate("tiny", n_users=50, review_share=0.0, seed=3)
    assert len(ds.users) == 50 and len(ds.reviews) == 0
    assert ds.meta["config"]["n_users"] == 50 and ds.meta["seed"] == 3
    custom = generate(SampleConfig(n_users=30, n_items=100, n_interactions=300, n_brands=12))
    assert custom.meta["size"] == "custom" and len(custom.items) == 100
    with pytest.raises(ValueError, match="mode_shares"):
        generate("tiny", mode_shares=(0.5, 0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="n_items"):
        generate("tiny", n_items=10)
