"""The built-in sample generator: kgwb's default data, a synthetic e-commerce store with ground truth.

``generate("small", seed=0)`` (or ``load_dataset("sample:small")``) returns a
:class:`~kgwb.data.schema.Dataset`.  Same size and seed give identical tables; every random draw
comes from one ``numpy.random.default_rng(seed)`` consumed in a fixed order.

Sizes (:data:`SIZES`, targets; ``generate(size, **overrides)`` changes any :class:`SampleConfig`
field):

========  =======  =======  ============  =====================================================
size      users    items    interactions  use
========  =======  =======  ============  =====================================================
tiny      200      150      ~3,000        CI and smoke runs (well under a second)
small     2,000    1,000    ~40,000       the default: GNN training in minutes on 2 CPU cores
medium    6,000    3,000    ~100,000
large     50,000   20,000   ~1,000,000    benchmark target: < 60 s and < 2 GB
xlarge    200,000  60,000   ~5,000,000
========  =======  =======  ============  =====================================================

How it works
------------
**Catalog** (:mod:`.vocab`, :mod:`.catalog`).  A fixed 3-level category tree (5 top-level
categories such as Beauty or Electronics, 15 groups, 42 leaves, e.g. ``Beauty > Hair Care >
Shampoo``); items are spread over leaves with random leaf sizes.  Each leaf has an attribute schema
(``Shampoo``: volume, scent, hair type, ingredient, feature, pack size, country of origin);
attributes marked optional appear on half the items.  Values are drawn with Zipf-like weights,
and a brand keeps "signature" values (35 % of its items share one) so brands and attributes
correlate.  Prices are log-normal around a per-leaf median times a per-brand premium (``…99``
endings); an item's latent price tier (budget/mid/premium) is its price tercile within the leaf.

**Brands.**  Synthetic names ("Kairo Audio", "Harper & Vale", "Ember Co.") allocated to top-level
categories; each brand is active in a few leaves, mostly in one group, big brands in more; brand
popularity is Zipf.  Every brand has surface variants — lower/upper case, legal suffix dropped or
respelled ("Inc." / ", Inc." / "Incorporated", "Co." / "Company"), "&" ↔ "and" / "&" without
spaces / initials ("H&V"), spaces removed, word abbreviations ("Elec."), one-letter typos.  A
spelling that two brands could share (case-insensitively) is dropped, so every surface maps to
exactly one brand.  Half the items (``canonical_brand_share``) list the canonical name; the rest
list a variant: ``items.brand`` is that surface form, ``truth["item_brand_true"]`` the brand.

**Texts.**  Titles are ``[brand] [pre-noun values] noun [for …] [with …], [tail values]``
("Kairo Audio Noise Cancelling Bluetooth 5.3 Wireless Headphones with 30 Hours Playtime |
Navy"); descriptions are either prose built from per-attribute sentence templates ("Infused with
a Lavender scent.") or a bullet list ("• Capacity: 20L"), plus brand intros and filler.  Values
are written canonically 60 % of the time, else as a listed variant ("Navy" for "Navy Blue",
"8.5 fl oz" for "250 ml"; descriptions also use lower case).  Attribute channels:

* in catalog **and** text: color, size, volume, capacity, material, scent, skin_type, hair_type,
  connectivity, pattern, gender, spf, weight, wattage, thread_count, pack_size, thickness,
  temperature_rating — each value is in ``item_attributes`` with p = 0.85 and written in text
  with p = 0.8 (at least one of the two);
* **text only** (:data:`TEXT_ONLY_ATTRIBUTES`): ingredient, feature, compatible_with, finish,
  battery_life — never in ``item_attributes``, always in the title or description;
* **catalog only** (:data:`CATALOG_ONLY_ATTRIBUTES`): country_of_origin, warranty,
  care_instructions — in ``item_attributes``, never in any text.

**Users** (:mod:`.behaviour`).  Each user has an age group and region (``users`` table), a
Dirichlet preference over leaves (``taste_concentration``; centred on the leaves' appeal, tilted by
age group), ``favourite_brands`` favourite brands drawn from liked leaves, a favourite value of
color, material, scent and pattern, a price tier, a leniency (rating bias) and an activity level
from a log-normal (``activity_sigma``), so activity is long-tailed.  Item popularity is Zipf
(``popularity_exponent``) over a ranking that favours popular brands.

**Interactions.**  Each user gets ``min_user_interactions`` plus a share of the rest proportional
to activity (capped at ``max_user_share`` of the catalog).  Each slot is chosen by one of four
modes (``mode_shares``, recorded in ``truth["interaction_modes"]``):

* ``taste`` (60 %): a leaf from the user's preference, ``taste_candidates`` items of that leaf
  drawn by the square root of popularity (taste, not fame, decides), and the one with the best fit — favourite brand (``brand_weight``), favourite
  attribute values (``attribute_weight``), price tier distance (``price_weight``) — plus Gumbel
  noise (a multinomial-logit choice);
* ``popularity`` (15 %): an item by global popularity;
* ``follow`` (15 %): a neighbour of the user's previous item — ``also_bought`` (75 %) or
  ``also_viewed`` — so sequences follow the co-purchase graph;
* ``noise`` (10 %): a uniformly random item.

``also_bought`` links each item (popular ones to more) to items of complementary leaves
(Shampoo → Conditioner, Tents → Sleeping Bags) or its group, preferring the same brand;
``also_viewed`` links substitutes: same leaf, similar price, shared attribute values.  Each
(user, item) pair occurs once: repeats are redrawn by taste or popularity (a last few uniformly),
so the realised mode shares differ a little from the configured ones.  Time stamps (Int64 seconds, 2018–2023) are
strictly increasing per user: a lifetime per user, exponential gaps, and gaps of about a day
before a ``follow`` interaction.  Ratings (1–5, float) come from the taste fit (category
preference, brand, attributes, price), the item's latent quality, the user's leniency and noise,
thresholded so that about half are 5 stars.

**Split** (``split``): ``"leave_last_out"`` (default) puts each user's last interaction in
``test`` and the second-last in ``valid`` when the user has ≥ 3 interactions (everybody, with the
default minimum of 3), the rest in ``train``; ``"time"`` cuts the global time line at its 80 % and
90 % quantiles (train / valid / test); ``"none"`` leaves the column out.

**Reviews** for ``review_share`` of the interactions (at most ``max_reviews``): an opener, a
sentence about one of the item's attributes (70 %), a detail and a closer, all of the rating's
sentiment; ``review_noise`` of them get typos, emoji or HTML entities (``&#39;``, ``<br />``).
``truth["review_mentions"]`` says which attribute value a review talks about.

**KG** (``kg``, ``entities``, ``item_entities``): entity ids are ``item:<item_id>``
(``item:I00012``), ``brand:<brand_id>`` (``brand:B0003``) and ``category:<category_id>``
(``category:C017``; all three levels are numbered in tree order).  Relations: ``produced_by``
(item → brand, for ``kg_brand_coverage`` = 85 % of the items, as in datasets whose entity linking
is incomplete: the other items' brands must be resolved from the surface form), ``belongs_to``
(item → leaf), ``subcategory_of`` (category → parent), ``also_bought`` and ``also_viewed``
(item → item).  Attribute values are not in ``kg``; they are in ``item_attributes``.

Ground truth (``dataset.truth``, never model input)
---------------------------------------------------
* ``attribute_spans``: item_id, field (title/description), attribute, value, canonical, start, end
  — ``text[start:end] == value`` exactly; ``value`` is the surface, ``canonical`` the catalog
  value; brand mentions are spans with attribute ``brand``.
* ``item_attributes_true``: item_id, attribute, value (canonical), in_catalog, in_text.
* ``entity_variants``: surface, canonical_id, canonical_name, kind (brand / attribute_value),
  attribute — every brand spelling (canonical included) and every attribute-value spelling;
  attribute-value ids are ``value:<attribute>=<normalised value>`` as :mod:`kgwb.kg.catalog` keys
  them.
* ``item_brand_true``: item_id, brand_id, brand (canonical name).
* ``user_tastes``: user_id, kind (category / brand / attribute / price_tier), attribute,
  target_id, target, weight — each user's top-5 leaves, favourite brands and values, price tier.
* ``user_latent``: user_id, activity, rating_bias;  ``item_latent``: item_id, popularity, quality.
* ``interaction_modes``: user_id, item_id, mode — aligned row by row with ``interactions``.
* ``review_mentions``: user_id, item_id, attribute, value, sentiment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from kgwb.data.sample import behaviour, catalog, vocab
from kgwb.data.sample.config import MODES, SIZES, SampleConfig, resolve_config
from kgwb.data.sample.vocab import ATTRIBUTES, CATALOG_ONLY_ATTRIBUTES, TEXT_ONLY_ATTRIBUTES
from kgwb.data.schema import SPLITS, Dataset

__all__ = [
    "CATALOG_ONLY_ATTRIBUTES",
    "MODES",
    "SIZES",
    "TEXT_ONLY_ATTRIBUTES",
    "SampleConfig",
    "generate",
    "load_sample",
]

RELATIONS = ("produced_by", "belongs_to", "subcategory_of", "also_bought", "also_viewed")


@lru_cache(maxsize=1)
def taxonomy() -> catalog.Taxonomy:
    """The fixed category tree and attribute-value codes (built once per process)."""
    return catalog.build_taxonomy()


def generate(size: str | SampleConfig = "small", *, seed: int = 0, **overrides: Any) -> Dataset:
    """A synthetic e-commerce dataset of a named ``size`` (see :data:`SIZES`) or a config.

    ``overrides`` replace :class:`SampleConfig` fields (``generate("tiny", n_users=50)``); unknown
    size or option names raise :class:`~kgwb.errors.UnknownNameError` listing the valid ones.
    """
    name, cfg = resolve_config(size, overrides)
    seed = int(seed)
    rng = np.random.default_rng(seed)
    tax = taxonomy()
    brands = catalog.make_brands(rng, cfg.n_brands, tax)
    items = catalog.make_items(
        rng,
        cfg.n_items,
        tax,
        brands,
        popularity_exponent=cfg.popularity_exponent,
        canonical_brand_share=cfg.canonical_brand_share,
    )
    catalog.render_texts(rng, items, tax, brands)
    relations = catalog.item_relations(rng, items, tax)
    users = behaviour.make_users(rng, cfg, tax, brands.weight, brands.leaf_brands, items)
    inter = behaviour.make_interactions(rng, cfg, items, users, relations)
    reviews = behaviour.make_reviews(rng, cfg, items, inter)
    kg_brand = rng.random(items.n) < cfg.kg_brand_coverage
    items.id_array = pd.array(items.ids, dtype="string")
    users.id_array = pd.array(users.ids, dtype="string")

    ds = Dataset(
        name=f"sample-{name}",
        items=_items_table(items, tax),
        users=pd.DataFrame(
            {
                "user_id": _take(users.id_array, np.arange(users.n)),
                "age_group": _str(np.asarray(behaviour.AGE_GROUPS, dtype=object)[users.age_group]),
                "region": _str(np.asarray(behaviour.REGIONS, dtype=object)[users.region]),
            }
        ),
        interactions=_interactions_table(inter, items, users),
        reviews=_reviews_table(reviews, inter, items, users),
        item_attributes=_item_attributes(items, tax),
        meta={
            "source": f"sample:{name}",
            "generator": "kgwb.data.sample",
            "size": name,
            "seed": seed,
            "config": cfg.to_dict(),
            "split_scheme": cfg.split,
            "entity_ids": {
                "item": "item:<item_id>",
                "brand": "brand:<brand_id>",
                "category": "category:<category_id>",
            },
            "text_only_attributes": list(TEXT_ONLY_ATTRIBUTES),
            "catalog_only_attributes": list(CATALOG_ONLY_ATTRIBUTES),
        },
    )
    ds.kg, ds.entities, ds.item_entities = _kg_tables(items, brands, tax, relations, kg_brand)
    ds.truth = _truth_tables(items, brands, tax, users, inter, reviews)
    ds.report.read(len(ds.interactions))
    ds.report.loaded(len(ds.interactions))
    return ds


def load_sample(
    source: str = "sample:small", *, errors: str = "raise", seed: int = 0, **overrides: Any
) -> Dataset:
    """The registry's entry point: ``source`` is ``"sample"`` (= small), ``"sample:SIZE"`` or a
    size name.  ``errors`` is accepted for the common loader signature and ignored: generated data
    has no bad rows."""
    del errors
    text = str(source)
    if text == "sample":
        size = "small"
    elif text.startswith("sample:"):
        size = text.split(":", 1)[1] or "small"
    else:
        size = text
    return generate(size, seed=seed, **overrides)


# ================================================================================ tables
def _str(values) -> pd.Series:
    return pd.Series(values, dtype="string")


def _take(ids: pd.api.extensions.ExtensionArray, index: np.ndarray) -> pd.Series:
    """``ids[index]`` as a string Series (an Arrow take: far faster than building new strings)."""
    return pd.Series(ids.take(np.asarray(index, dtype=np.int64)))


def _items_table(items: catalog.Items, tax: catalog.Taxonomy) -> pd.DataFrame:
    leaf_names = np.asarray([leaf.name for leaf in vocab.LEAVES], dtype=object)
    paths = np.asarray(tax.leaf_path, dtype=object)
    return pd.DataFrame(
        {
            "item_id": _take(items.id_array, np.arange(items.n)),
            "title": _str(items.titles),
            "description": _str(items.descriptions),
            "brand": _str(items.brand_surface),
            "category": _str(leaf_names[items.leaf]),
            "category_path": _str(paths[items.leaf]),
            "price": items.price.astype(np.float64),
        }
    )


def _interactions_table(inter, items: catalog.Items, users) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "user_id": _take(users.id_array, inter.user),
            "item_id": _take(items.id_array, inter.item),
            "timestamp": pd.array(inter.timestamp, dtype="Int64"),
            "rating": inter.rating.astype(np.float64),
        }
    )
    if inter.split is not None:
        out["split"] = _take(pd.array(list(SPLITS), dtype="string"), inter.split)
    return out


def _reviews_table(reviews, inter, items: catalog.Items, users) -> pd.DataFrame:
    rows = reviews.rows
    return pd.DataFrame(
        {
            "user_id": _take(users.id_array, inter.user[rows]),
            "item_id": _take(items.id_array, inter.item[rows]),
            "rating": inter.rating[rows].astype(np.float64),
            "text": _str(reviews.text),
            "summary": _str(reviews.summary),
            "timestamp": pd.array(reviews.timestamp, dtype="Int64"),
        }
    )


def _attr_names(codes: np.ndarray) -> np.ndarray:
    return np.asarray([a.name for a in ATTRIBUTES], dtype=object)[codes]


def _item_attributes(items: catalog.Items, tax: catalog.Taxonomy) -> pd.DataFrame:
    sel = items.in_catalog
    values = np.asarray(tax.value_name, dtype=object)
    return pd.DataFrame(
        {
            "item_id": _take(items.id_array, items.attr_item[sel]),
            "attribute": _str(_attr_names(items.attr_attr[sel])),
            "value": _str(values[items.attr_code[sel]]),
        }
    )


def _kg_tables(
    items, brands, tax, relations, kg_brand
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    item_ent = "item:" + items.ids.astype(str).astype(object)
    brand_ent = np.asarray([f"brand:{b}" for b in brands.ids], dtype=object)
    cat_ent = np.asarray([f"category:{c}" for c in tax.category_ids], dtype=object)
    parent = np.asarray(tax.category_parent)
    has_parent = np.flatnonzero(parent >= 0)
    heads, rels, tails = [], [], []

    def add(h, relation, t):
        heads.append(h)
        tails.append(t)
        rels.append(np.full(len(h), relation, dtype=object))

    linked = np.flatnonzero(kg_brand)
    add(item_ent[linked], "produced_by", brand_ent[items.brand[linked]])
    add(item_ent, "belongs_to", cat_ent[tax.leaf_node[items.leaf]])
    add(cat_ent[has_parent], "subcategory_of", cat_ent[parent[has_parent]])
    for name in ("also_bought", "also_viewed"):
        h, t = relations[name]
        add(item_ent[h], name, item_ent[t])
    kg = pd.DataFrame(
        {
            "head": _str(np.concatenate(heads)),
            "relation": _str(np.concatenate(rels)),
            "tail": _str(np.concatenate(tails)),
        }
    )
    entities = pd.DataFrame(
        {
            "entity_id": _str(np.concatenate([item_ent, brand_ent, cat_ent])),
            "type": _str(
                ["item"] * items.n + ["brand"] * len(brand_ent) + ["category"] * len(cat_ent)
            ),
            "name": _str(
                np.concatenate(
                    [
                        items.titles,
                        np.asarray(brands.names, dtype=object),
                        np.asarray(tax.category_names, dtype=object),
                    ]
                )
            ),
        }
    )
    item_entities = pd.DataFrame(
        {"item_id": _take(items.id_array, np.arange(items.n)), "entity_id": _str(item_ent)}
    )
    return kg, entities, item_entities


def _text_truth(items, tax) -> dict[str, pd.DataFrame]:
    """Where each value was written (``attribute_spans``) and every item's true values."""
    values = np.asarray(tax.value_name, dtype=object)
    spans = items.spans
    in_text = items.in_title | items.in_description
    return {
        "attribute_spans": pd.DataFrame(
            {
                "item_id": _take(items.id_array, spans["item"]),
                "field": _str(spans["field"]),
                "attribute": _str(spans["attribute"]),
                "value": _str(spans["value"]),
                "canonical": _str(spans["canonical"]),
                "start": spans["start"].astype(np.int64),
                "end": spans["end"].astype(np.int64),
            }
        ),
        "item_attributes_true": pd.DataFrame(
            {
                "item_id": _take(items.id_array, items.attr_item),
                "attribute": _str(_attr_names(items.attr_attr)),
                "value": _str(values[items.attr_code]),
                "in_catalog": items.in_catalog.copy(),
                "in_text": in_text,
            }
        ),
    }


def _entity_variants(brands, tax) -> pd.DataFrame:
    """Every surface spelling of a brand or attribute value with its canonical entity."""
    surf, cid, cname, kind, attr = [], [], [], [], []
    for b, name in enumerate(brands.names):
        for s in [name, *brands.variants[b]]:
            surf.append(s)
            cid.append(f"brand:{brands.ids[b]}")
            cname.append(name)
            kind.append("brand")
            attr.append(None)
    for code, name in enumerate(tax.value_name):
        a = ATTRIBUTES[tax.value_attr[code]].name
        for s in tax.value_surfaces[code]:
            surf.append(s)
            cid.append(catalog.value_id(a, name))
            cname.append(name)
            kind.append("attribute_value")
            attr.append(a)
    return pd.DataFrame(
        {
            "surface": _str(surf),
            "canonical_id": _str(cid),
            "canonical_name": _str(cname),
            "kind": _str(kind),
            "attribute": _str(attr),
        }
    )


def _latent_truth(items, brands, users) -> dict[str, pd.DataFrame]:
    """The brand of each item, and the hidden user and item factors the behaviour drew on."""
    brand_ids = np.asarray(brands.ids, dtype=object)
    return {
        "item_brand_true": pd.DataFrame(
            {
                "item_id": _take(items.id_array, np.arange(items.n)),
                "brand_id": _str(brand_ids[items.brand]),
                "brand": _str(np.asarray(brands.names, dtype=object)[items.brand]),
            }
        ),
        "user_latent": pd.DataFrame(
            {
                "user_id": _take(users.id_array, np.arange(users.n)),
                "activity": users.activity,
                "rating_bias": users.bias,
            }
        ),
        "item_latent": pd.DataFrame(
            {
                "item_id": _take(items.id_array, np.arange(items.n)),
                "popularity": items.popularity,
                "quality": items.quality,
            }
        ),
    }


def _behaviour_truth(items, tax, users, inter, reviews) -> dict[str, pd.DataFrame]:
    """Why each interaction happened, and which attribute each review mentions."""
    values = np.asarray(tax.value_name, dtype=object)
    rows = reviews.rows[reviews.mention]
    mentioned = inter.item[rows]
    sentiment = np.asarray(behaviour.SENTIMENTS, dtype=object)[reviews.sentiment[reviews.mention]]
    return {
        "interaction_modes": pd.DataFrame(
            {
                "user_id": _take(users.id_array, inter.user),
                "item_id": _take(items.id_array, inter.item),
                "mode": pd.Categorical.from_codes(inter.mode, categories=list(MODES)),
            }
        ),
        "review_mentions": pd.DataFrame(
            {
                "user_id": _take(users.id_array, inter.user[rows]),
                "item_id": _take(items.id_array, mentioned),
                "attribute": _str(_attr_names(items.review_mention_attr[mentioned])),
                "value": _str(values[items.review_mention_code[mentioned]]),
                "sentiment": _str(sentiment),
            }
        ),
    }


def _truth_tables(items, brands, tax, users, inter, reviews) -> dict[str, pd.DataFrame]:
    truth: dict[str, pd.DataFrame] = _text_truth(items, tax)
    truth["entity_variants"] = _entity_variants(brands, tax)
    latent = _latent_truth(items, brands, users)
    truth["item_brand_true"] = latent.pop("item_brand_true")
    truth["user_tastes"] = _user_tastes(users, brands, tax)
    truth.update(latent)  # user_latent, item_latent
    truth.update(_behaviour_truth(items, tax, users, inter, reviews))
    return truth


def _user_tastes(users, brands, tax) -> pd.DataFrame:
    """Each user's top-5 leaves, favourite brands, favourite values and price tier, built on integer
    codes and turned into strings by Arrow takes from small vocabularies (it has ~13 rows a user)."""
    n, n_leaves = users.theta.shape
    top = min(5, n_leaves)
    best = np.argsort(-users.theta, axis=1, kind="stable")[:, :top]
    # one target vocabulary: leaves, brands, attribute values, price tiers
    leaf_ids = [f"category:{tax.category_ids[c]}" for c in tax.leaf_node]
    leaf_names = [leaf.name for leaf in vocab.LEAVES]
    brand_ids = [f"brand:{b}" for b in brands.ids]
    value_ids = [
        catalog.value_id(ATTRIBUTES[a].name, v) for a, v in zip(tax.value_attr, tax.value_name)
    ]
    tiers = list(behaviour.PRICE_TIERS)
    target_ids = leaf_ids + brand_ids + value_ids + tiers
    target_names = leaf_names + list(brands.names) + list(tax.value_name) + tiers
    brand0, value0, tier0 = (
        n_leaves,
        n_leaves + len(brand_ids),
        n_leaves + len(brand_ids) + len(value_ids),
    )
    kinds = ["category", "brand", "attribute", "price_tier"]
    attr_names = [a.name for a in ATTRIBUTES]  # attribute code len(ATTRIBUTES) = none

    user, kind, attr, target, weight = [], [], [], [], []

    def add(u, k, a, t, w):
        user.append(np.asarray(u, dtype=np.int64))
        kind.append(np.full(len(u), k, dtype=np.int64))
        attr.append(np.broadcast_to(np.asarray(a, dtype=np.int64), (len(u),)))
        target.append(np.asarray(t, dtype=np.int64))
        weight.append(np.broadcast_to(np.asarray(w, dtype=np.float64), (len(u),)))

    add(
        np.repeat(np.arange(n), top),
        0,
        len(ATTRIBUTES),
        best.ravel(),
        np.take_along_axis(users.theta, best, axis=1).ravel(),
    )
    k = users.fav_brands.shape[1]
    pairs, counts = np.unique(
        np.repeat(np.arange(n), k) * len(brand_ids) + users.fav_brands.ravel(), return_counts=True
    )
    add(pairs // len(brand_ids), 1, len(ATTRIBUTES), brand0 + pairs % len(brand_ids), counts / k)
    for t, a in enumerate(tax.taste_attrs):
        add(np.arange(n), 2, a, value0 + users.fav_values[:, t], 1.0)
    add(np.arange(n), 3, len(ATTRIBUTES), tier0 + users.tier_pref, 1.0)

    user_c = np.concatenate(user)
    order = np.argsort(user_c, kind="stable")
    attr_vocab = pd.array(attr_names + [pd.NA], dtype="string")
    return pd.DataFrame(
        {
            "user_id": _take(users.id_array, user_c[order]),
            "kind": _take(pd.array(kinds, dtype="string"), np.concatenate(kind)[order]),
            "attribute": _take(attr_vocab, np.concatenate(attr)[order]),
            "target_id": _take(pd.array(target_ids, dtype="string"), np.concatenate(target)[order]),
            "target": _take(pd.array(target_names, dtype="string"), np.concatenate(target)[order]),
            "weight": np.concatenate(weight)[order],
        }
    )
