"""The sample catalog: category tree, brands with surface variants, items with attributes and texts.

Everything random comes from the one ``numpy.random.Generator`` passed in, consumed in a fixed
order, so a seed fixes the catalog.  Work is vectorised per leaf category or per attribute; the
only Python loops run over brands and over items (texts), never over interactions.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgwb.data.sample import vocab
from kgwb.data.sample.vocab import ATTRIBUTES, LEAVES
from kgwb.errors import ConfigError

BRAND_ATTRIBUTE = "brand"
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC, case-folded, single-spaced: the key of attribute-value ids (as kgwb.kg.catalog does)."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def value_id(attribute: str, value: str) -> str:
    """Entity id of an attribute value: ``value:color=navy blue``."""
    return f"value:{normalise(attribute)}={normalise(value)}"


# ===================================================================== the fixed vocabulary
@dataclass
class Taxonomy:
    """Category tree and attribute-value codes, derived from :mod:`vocab` (nothing random)."""

    #: every category node (domains, groups, leaves) in tree order
    category_ids: list[str]
    category_names: list[str]
    category_parent: list[int]  # -1 for domains
    category_level: list[int]  # 0 domain, 1 group, 2 leaf
    leaf_node: np.ndarray  # leaf index -> category node index
    leaf_domain: np.ndarray  # leaf index -> domain index
    leaf_group: np.ndarray  # leaf index -> group index (over all groups)
    leaf_path: list[str]
    #: attribute-value codes: one integer per (attribute, canonical value)
    value_attr: np.ndarray
    value_name: list[str]
    value_offset: np.ndarray  # attribute index -> first code
    #: surface spellings per code: listed variants first, then lower-case ones
    value_surfaces: list[list[str]]
    value_listed: np.ndarray  # how many surfaces are listed (not lower-cased)
    #: per leaf: attribute indices, whether optional, allowed codes per attribute
    leaf_attrs: list[list[tuple[int, bool, np.ndarray]]]
    leaf_complements: list[list[int]]
    group_leaves: list[list[int]]
    taste_attrs: np.ndarray  # attribute indices users have favourite values of

    @property
    def n_leaves(self) -> int:
        return len(self.leaf_path)


def _parse_value(spec: str) -> list[str]:
    return [s.strip() for s in spec.split("|") if s.strip()]


def _category_tree() -> dict:
    """The category nodes (domain > group > leaf, ids ``C001``...) and each leaf's place."""
    ids, names, parent, level = [], [], [], []
    node_of: dict[tuple[str, ...], int] = {}

    def node(key: tuple[str, ...], par: int) -> int:
        if key not in node_of:
            node_of[key] = len(ids)
            ids.append(f"C{len(ids) + 1:03d}")
            names.append(key[-1])
            parent.append(par)
            level.append(len(key) - 1)
        return node_of[key]

    leaf_node, leaf_domain, leaf_group, paths = [], [], [], []
    group_index: dict[str, int] = {}
    for leaf in LEAVES:
        d = node((leaf.domain,), -1)
        g = node((leaf.domain, leaf.group), d)
        leaf_node.append(node((leaf.domain, leaf.group, leaf.name), g))
        leaf_domain.append(vocab.DOMAINS.index(leaf.domain))
        leaf_group.append(group_index.setdefault(f"{leaf.domain}>{leaf.group}", len(group_index)))
        paths.append(f"{leaf.domain} > {leaf.group} > {leaf.name}")
    if len(set(names)) != len(names):
        raise AssertionError("category names must be unique across levels")
    groups: list[list[int]] = [[] for _ in group_index]
    for i, g in enumerate(leaf_group):
        groups[g].append(i)
    return {
        "category_ids": ids,
        "category_names": names,
        "category_parent": parent,
        "category_level": level,
        "leaf_node": np.asarray(leaf_node),
        "leaf_domain": np.asarray(leaf_domain),
        "leaf_group": np.asarray(leaf_group),
        "leaf_path": paths,
        "group_leaves": groups,
    }


def _value_table() -> tuple[dict, dict[tuple[int, str], int]]:
    """Every attribute value (canonical name, surface spellings) and its code by
    ``(attribute, canonical)``."""
    value_attr, value_name, value_surfaces, value_listed, offsets = [], [], [], [], []
    code_of: dict[tuple[int, str], int] = {}
    for a, spec in enumerate(ATTRIBUTES):
        offsets.append(len(value_name))
        for raw in spec.values:
            canonical, *variants = _parse_value(raw)
            surfaces = [canonical, *variants]
            listed = len(surfaces)
            if spec.lowercase:
                for s in list(surfaces):
                    if s.lower() not in surfaces:
                        surfaces.append(s.lower())
            code_of[(a, canonical)] = len(value_name)
            value_attr.append(a)
            value_name.append(canonical)
            value_surfaces.append(surfaces)
            value_listed.append(listed)
    offsets.append(len(value_name))
    table = {
        "value_attr": np.asarray(value_attr),
        "value_name": value_name,
        "value_offset": np.asarray(offsets),
        "value_surfaces": value_surfaces,
        "value_listed": np.asarray(value_listed),
    }
    return table, code_of


def _leaf_attributes(values: dict, code_of: dict[tuple[int, str], int]) -> list:
    """Per leaf: ``(attribute, optional, value codes)`` of the attributes its items carry."""
    offsets, value_name = values["value_offset"], values["value_name"]
    leaf_attrs = []
    for leaf in LEAVES:
        entries = []
        for raw in leaf.attributes:
            optional = raw.endswith("?")
            name = raw.rstrip("?")
            a = vocab.ATTRIBUTE_INDEX[name]
            if name in leaf.values:
                codes = [code_of[(a, v)] for v in leaf.values[name]]
            else:
                special = set(ATTRIBUTES[a].special)
                codes = [
                    c for c in range(offsets[a], offsets[a + 1]) if value_name[c] not in special
                ]
            entries.append((a, optional, np.asarray(codes, dtype=np.int64)))
        leaf_attrs.append(entries)
    return leaf_attrs


def build_taxonomy() -> Taxonomy:
    tree = _category_tree()
    values, code_of = _value_table()
    leaf_index = {leaf.name: i for i, leaf in enumerate(LEAVES)}
    complements = [[leaf_index[c] for c in leaf.complements] for leaf in LEAVES]
    return Taxonomy(
        **tree,
        **values,
        leaf_attrs=_leaf_attributes(values, code_of),
        leaf_complements=complements,
        taste_attrs=np.asarray([vocab.ATTRIBUTE_INDEX[n] for n in vocab.TASTE_ATTRIBUTES]),
    )


# ==================================================================================== brands
@dataclass
class Brands:
    ids: list[str]
    names: list[str]
    domain: np.ndarray
    weight: np.ndarray  # popularity, sums to 1
    premium: np.ndarray  # price multiplier
    leaves: list[list[int]]
    #: surface spellings other than the canonical name (unique across brands, case-insensitively)
    variants: list[list[str]]
    #: per leaf: brand indices active there
    leaf_brands: list[np.ndarray] = field(default_factory=list)


def _brand_name(rng: np.random.Generator, domain: str) -> str:
    stems, words, partners = (
        vocab.BRAND_STEMS,
        vocab.BRAND_DOMAIN_WORDS[domain],
        vocab.BRAND_PARTNERS,
    )
    legal = list(vocab.LEGAL_SUFFIXES)
    form = rng.random()
    stem = stems[rng.integers(len(stems))]
    word = words[rng.integers(len(words))]
    if form < 0.4:
        return f"{stem} {word}"
    if form < 0.6:
        return stem
    if form < 0.75:
        return f"{stem} {word} {legal[rng.integers(len(legal))]}"
    if form < 0.85:
        return f"{stem} {legal[rng.integers(len(legal))]}"
    a, b = rng.choice(len(partners), size=2, replace=False)
    return f"{partners[a]} & {partners[b]}" + (f" {word}" if rng.random() < 0.3 else "")


def _typo(name: str, rng: np.random.Generator) -> str:
    """One keyboard slip inside a word of 4+ letters: drop, double, swap or replace a letter."""
    words = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z]{4,}", name)]
    if not words:
        return name
    s, e = words[rng.integers(len(words))]
    i = int(rng.integers(s + 1, e - 1))
    op = rng.integers(4)
    if op == 0:
        return name[:i] + name[i + 1 :]
    if op == 1:
        return name[:i] + name[i] + name[i:]
    if op == 2:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    vowels = "aeiou"
    c = name[i].lower()
    repl = vowels[(vowels.index(c) + 1) % 5] if c in vowels else "e"
    return name[:i] + repl + name[i + 1 :]


def _brand_variant_candidates(name: str, rng: np.random.Generator) -> list[str]:
    out = [name.lower(), name.upper()]
    for suffix, alternatives in vocab.LEGAL_SUFFIXES.items():
        if name.endswith(" " + suffix):
            base = name[: -len(suffix) - 1]
            out.append(base)
            out.extend(
                base + alt if alt.startswith(",") else f"{base} {alt}" for alt in alternatives
            )
    if " & " in name:
        out.append(name.replace(" & ", " and "))
        out.append(name.replace(" & ", "&"))
        left, right = name.split(" & ", 1)
        out.append(f"{left[0]}&{right[0]}")
    if " " in name:
        out.append(name.replace(" ", ""))
    for word, abbreviations in vocab.WORD_ABBREVIATIONS.items():
        if re.search(rf"\b{re.escape(word)}\b", name):
            out.extend(re.sub(rf"\b{re.escape(word)}\b", ab, name) for ab in abbreviations)
    out.extend(_typo(name, rng) for _ in range(2))
    seen = {name}
    unique = []
    for s in out:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def _brand_names(rng: np.random.Generator, alloc: np.ndarray) -> tuple[list[str], list[int]]:
    """``alloc[d]`` distinct brand names for each domain ``d`` (unique once normalised)."""
    names: list[str] = []
    domains: list[int] = []
    taken: set[str] = set()
    for d, k in enumerate(alloc):
        for _ in range(int(k)):
            for attempt in range(200):
                name = _brand_name(rng, vocab.DOMAINS[d])
                if attempt > 150:  # stems exhausted for this domain: number the line
                    name = f"{name} {attempt}"
                key = normalise(name)
                if key not in taken:
                    taken.add(key)
                    names.append(name)
                    domains.append(d)
                    break
    return names, domains


def _brand_leaves(
    rng: np.random.Generator, tax: Taxonomy, domains: list[int], rank: np.ndarray
) -> tuple[list[list[int]], list[list[int]]]:
    """Each brand's active leaves and each leaf's brands (at least two per leaf)."""
    n, n_domains = len(domains), len(vocab.DOMAINS)
    # active leaves: mostly within one group of the brand's domain, big brands in more leaves
    domain_leaves = [np.flatnonzero(tax.leaf_domain == d) for d in range(n_domains)]
    leaves: list[list[int]] = []
    for b in range(n):
        pool = domain_leaves[domains[b]]
        home = tax.leaf_group[pool[rng.integers(len(pool))]]
        w = np.where(tax.leaf_group[pool] == home, 4.0, 1.0)
        k = min(len(pool), int(rng.geometric(0.5)) + (2 if rank[b] < n / 10 else 0))
        chosen = rng.choice(pool, size=k, replace=False, p=w / w.sum())
        leaves.append(sorted(int(x) for x in chosen))
    per_leaf = [[] for _ in range(tax.n_leaves)]
    for b, ls in enumerate(leaves):
        for leaf in ls:
            per_leaf[leaf].append(b)
    for leaf in range(tax.n_leaves):
        if len(per_leaf[leaf]) >= 2:
            continue
        pool = [
            b for b in range(n) if domains[b] == tax.leaf_domain[leaf] and b not in per_leaf[leaf]
        ]
        pool.sort(key=lambda b: (len(leaves[b]), b))
        for b in pool[: 2 - len(per_leaf[leaf])]:
            per_leaf[leaf].append(b)
            leaves[b] = sorted(leaves[b] + [leaf])
    return leaves, per_leaf


def _brand_variants(rng: np.random.Generator, names: list[str]) -> list[list[str]]:
    """Surface variants per brand; any spelling two brands could share (case-insensitively)
    is dropped."""
    candidates = [_brand_variant_candidates(name, rng) for name in names]
    owners: dict[str, set[int]] = {}
    for b, name in enumerate(names):
        owners.setdefault(normalise(name), set()).add(b)
        for s in candidates[b]:
            owners.setdefault(normalise(s), set()).add(b)
    variants = []
    for b in range(len(names)):
        ok = [s for s in candidates[b] if len(owners[normalise(s)]) == 1 and s.strip()]
        keep = int(rng.integers(3, 7))
        # case variants first (they always survive), then a random choice of the rest
        head, rest = ok[:2], ok[2:]
        take = min(len(rest), keep - len(head))
        picked = sorted(rng.choice(len(rest), size=take, replace=False)) if take > 0 else []
        variants.append(head + [rest[i] for i in picked])
    return variants


def make_brands(rng: np.random.Generator, n_brands: int, tax: Taxonomy) -> Brands:
    n_domains = len(vocab.DOMAINS)
    if n_brands < 2 * n_domains:
        raise ConfigError(f"n_brands must be at least {2 * n_domains} (two per top-level category)")
    leaves_per_domain = np.bincount(tax.leaf_domain, minlength=n_domains)
    alloc = 2 + rng.multinomial(
        n_brands - 2 * n_domains, leaves_per_domain / leaves_per_domain.sum()
    )
    names, domains = _brand_names(rng, alloc)
    n = len(names)
    ids = [f"B{i + 1:04d}" for i in range(n)]
    rank = rng.permutation(n)
    weight = (rank + 1.0) ** -1.0
    weight /= weight.sum()
    premium = np.exp(rng.normal(0.0, 0.35, size=n))
    leaves, per_leaf = _brand_leaves(rng, tax, domains, rank)
    return Brands(
        ids=ids,
        names=names,
        domain=np.asarray(domains),
        weight=weight,
        premium=premium,
        leaves=leaves,
        variants=_brand_variants(rng, names),
        leaf_brands=[np.asarray(sorted(bs), dtype=np.int64) for bs in per_leaf],
    )


# ===================================================================================== items
@dataclass
class Items:
    n: int
    ids: np.ndarray  # object array of "I00001"
    leaf: np.ndarray
    brand: np.ndarray
    brand_surface: np.ndarray  # object array: the spelling this item's listing uses
    price: np.ndarray
    price_tier: np.ndarray  # 0 budget, 1 mid, 2 premium (terciles within the leaf)
    popularity: np.ndarray  # choice weight, sums to 1
    quality: np.ndarray
    #: long ground-truth attribute table (one row per item and attribute)
    attr_item: np.ndarray
    attr_attr: np.ndarray
    attr_code: np.ndarray
    in_catalog: np.ndarray
    in_title: np.ndarray
    in_description: np.ndarray
    #: (n, len(taxonomy.taste_attrs)) value codes, -1 where the item lacks the attribute
    taste_codes: np.ndarray
    #: leaf-sorted index for popularity sampling within a leaf
    by_leaf: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    leaf_start: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    leaf_cumweight: np.ndarray = field(default_factory=lambda: np.empty(0))
    leaf_cumweight_tempered: np.ndarray = field(default_factory=lambda: np.empty(0))
    titles: np.ndarray | None = None
    descriptions: np.ndarray | None = None
    spans: dict[str, list] | None = None
    #: (n, 6) review sentences about one attribute: 2 per sentiment (negative, neutral, positive)
    review_mentions: np.ndarray | None = None
    review_mention_attr: np.ndarray | None = None  # attribute index, -1 = none
    review_mention_code: np.ndarray | None = None
    #: ``ids`` as an Arrow string array (tables take from it)
    id_array: object = None

    def sample_in_leaf(
        self, rng: np.random.Generator, leaves: np.ndarray, *, tempered: bool = False
    ) -> np.ndarray:
        """One item per entry of ``leaves``, drawn by popularity among that leaf's items
        (``tempered``: by the square root of popularity, a flatter draw)."""
        lo = self.leaf_start[leaves]
        hi = self.leaf_start[leaves + 1]
        cum = self.leaf_cumweight_tempered if tempered else self.leaf_cumweight
        base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
        top = cum[hi - 1]
        r = base + rng.random(len(leaves)) * (top - base)
        pos = np.searchsorted(cum, r, side="right")
        return self.by_leaf[np.clip(pos, lo, hi - 1)]


def _zipf_weights(rng: np.random.Generator, k: int, exponent: float = 1.0) -> np.ndarray:
    w = (rng.permutation(k) + 1.0) ** -exponent
    return w / w.sum()


def _item_brands(
    rng: np.random.Generator, leaf: np.ndarray, brands: Brands, canonical_brand_share: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each item's brand (among its leaf's brands, by weight) and the spelling on its listing."""
    n_items = len(leaf)
    brand = np.empty(n_items, dtype=np.int64)
    for lf in range(len(brands.leaf_brands)):
        members = np.flatnonzero(leaf == lf)
        cands = brands.leaf_brands[lf]
        w = brands.weight[cands]
        brand[members] = rng.choice(cands, size=len(members), p=w / w.sum())

    # the spelling on the listing: canonical, else one of the brand's variants (first ones likelier)
    surface = np.asarray(brands.names, dtype=object)[brand]
    use_variant = rng.random(n_items) >= canonical_brand_share
    pick = rng.random(n_items)
    for i in np.flatnonzero(use_variant):
        vs = brands.variants[brand[i]]
        if vs:
            surface[i] = vs[min(int(pick[i] ** 1.5 * len(vs)), len(vs) - 1)]
    return brand, surface


def _item_prices(
    rng: np.random.Generator, leaf: np.ndarray, brand: np.ndarray, brands: Brands, n_leaves: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prices around the leaf's median (brand premium, noise) and the price tier within the leaf."""
    n_items = len(leaf)
    medians = np.asarray([leaf_spec.price for leaf_spec in LEAVES])
    raw = medians[leaf] * brands.premium[brand] * np.exp(rng.normal(0.0, 0.4, size=n_items))
    price = np.maximum(np.round(raw) - 0.01, 0.99)
    tier = np.zeros(n_items, dtype=np.int64)
    for lf in range(n_leaves):
        members = np.flatnonzero(leaf == lf)
        order = np.argsort(np.argsort(price[members], kind="stable"), kind="stable")
        tier[members] = (3 * order) // max(len(members), 1)
    return price, tier


def _item_popularity(
    rng: np.random.Generator, brand: np.ndarray, brands: Brands, popularity_exponent: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zipf popularity by a brand-weighted score, and a quality correlated with it."""
    n_items = len(brand)
    score = 0.5 * np.log(brands.weight[brand]) + rng.normal(0.0, 1.0, size=n_items)
    rank = np.empty(n_items, dtype=np.int64)
    rank[np.argsort(-score, kind="stable")] = np.arange(n_items)
    popularity = (rank + 1.0) ** -popularity_exponent
    popularity /= popularity.sum()
    z = (score - score.mean()) / (score.std() + 1e-9)
    quality = 0.2 * z + rng.normal(0.0, 0.5, size=n_items)
    return popularity, quality


def _item_attribute_rows(
    rng: np.random.Generator, leaf: np.ndarray, brand: np.ndarray, tax: Taxonomy, n_brands: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The true attribute values (item, attribute, code), sorted by item then attribute."""
    brand_hash = rng.integers(0, 1 << 30, size=n_brands)
    rows_item, rows_attr, rows_code = [], [], []
    for lf in range(tax.n_leaves):
        members = np.flatnonzero(leaf == lf)
        for a, optional, codes in tax.leaf_attrs[lf]:
            have = members[rng.random(len(members)) < vocab.OPTIONAL_SHARE] if optional else members
            if not len(have):
                continue
            w = _zipf_weights(rng, len(codes), 0.8)
            chosen = codes[rng.choice(len(codes), size=len(have), p=w)]
            # brands keep signature values (a brand's candles are mostly soy wax)
            signature = codes[(brand_hash[brand[have]] + 7 * a + 13 * lf) % len(codes)]
            keep_sig = rng.random(len(have)) < 0.35
            rows_item.append(have)
            rows_attr.append(np.full(len(have), a, dtype=np.int64))
            rows_code.append(np.where(keep_sig, signature, chosen))
    attr_item = np.concatenate(rows_item)
    attr_attr = np.concatenate(rows_attr)
    attr_code = np.concatenate(rows_code)
    order = np.lexsort((attr_attr, attr_item))
    return attr_item[order], attr_attr[order], attr_code[order]


def _attribute_channels(
    rng: np.random.Generator, attr_attr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each true value is stated: the catalog table, the title, the description."""
    channel = np.asarray([spec.channel for spec in ATTRIBUTES])[attr_attr]
    slot = np.asarray([spec.slot for spec in ATTRIBUTES])[attr_attr]
    m = len(attr_attr)
    u = rng.random((m, 4))
    both = channel == vocab.BOTH
    in_catalog = (channel == vocab.CATALOG) | (both & (u[:, 0] < 0.85))
    in_text = (channel == vocab.TEXT) | (both & (u[:, 1] < 0.8))
    in_catalog |= both & ~in_text & ~in_catalog  # a value nobody states would be unknowable
    title_share = np.select(
        [slot == vocab.TAIL, slot == vocab.FOR, slot == vocab.PRE], [0.7, 0.6, 0.55], 0.5
    )
    in_title = in_text & (u[:, 2] < title_share)
    in_description = in_text & (~in_title | (u[:, 3] < 0.15))
    return in_catalog, in_title, in_description


def make_items(
    rng: np.random.Generator,
    n_items: int,
    tax: Taxonomy,
    brands: Brands,
    *,
    popularity_exponent: float,
    canonical_brand_share: float,
) -> Items:
    n_leaves = tax.n_leaves
    if n_items < 2 * n_leaves:
        raise ConfigError(f"n_items must be at least {2 * n_leaves} (two per leaf category)")
    share = rng.gamma(3.0, size=n_leaves)
    counts = 2 + rng.multinomial(n_items - 2 * n_leaves, share / share.sum())
    leaf = rng.permutation(np.repeat(np.arange(n_leaves), counts))
    width = max(5, len(str(n_items)))
    ids = np.asarray([f"I{i + 1:0{width}d}" for i in range(n_items)], dtype=object)

    brand, surface = _item_brands(rng, leaf, brands, canonical_brand_share)
    price, tier = _item_prices(rng, leaf, brand, brands, n_leaves)
    popularity, quality = _item_popularity(rng, brand, brands, popularity_exponent)
    attr_item, attr_attr, attr_code = _item_attribute_rows(rng, leaf, brand, tax, len(brands.names))
    in_catalog, in_title, in_description = _attribute_channels(rng, attr_attr)

    taste = np.full((n_items, len(tax.taste_attrs)), -1, dtype=np.int64)
    for t, a in enumerate(tax.taste_attrs):
        sel = attr_attr == a
        taste[attr_item[sel], t] = attr_code[sel]

    by_leaf = np.argsort(leaf, kind="stable")
    leaf_start = np.concatenate([[0], np.cumsum(np.bincount(leaf, minlength=n_leaves))])
    return Items(
        n=n_items,
        ids=ids,
        leaf=leaf,
        brand=brand,
        brand_surface=surface,
        price=price,
        price_tier=tier,
        popularity=popularity,
        quality=quality,
        attr_item=attr_item,
        attr_attr=attr_attr,
        attr_code=attr_code,
        in_catalog=in_catalog,
        in_title=in_title,
        in_description=in_description,
        taste_codes=taste,
        by_leaf=by_leaf,
        leaf_start=leaf_start,
        leaf_cumweight=np.cumsum(popularity[by_leaf]),
        leaf_cumweight_tempered=np.cumsum(np.sqrt(popularity[by_leaf])),
    )


# ===================================================================================== texts
_PRE_ORDER = {
    name: i
    for i, name in enumerate(
        ("feature", "finish", "connectivity", "material", "pattern", "scent", "gender")
    )
}
_LABELS = [spec.name.replace("_", " ").capitalize() for spec in ATTRIBUTES]


class _Spans:
    """Column lists of the ``attribute_spans`` ground truth."""

    def __init__(self) -> None:
        self.item: list[int] = []
        self.field: list[str] = []
        self.attribute: list[str] = []
        self.value: list[str] = []
        self.canonical: list[str] = []
        self.start: list[int] = []

    def as_columns(self) -> dict[str, object]:
        start = np.asarray(self.start, dtype=np.int64)
        return {
            "item": np.asarray(self.item, dtype=np.int64),
            "field": self.field,
            "attribute": self.attribute,
            "value": self.value,
            "canonical": self.canonical,
            "start": start,
            "end": start + np.asarray([len(v) for v in self.value], dtype=np.int64),
        }


class _Field:
    """One text being written; :meth:`value` records where each value lands."""

    __slots__ = ("item", "name", "parts", "pos", "spans")

    def __init__(self, item: int, name: str, spans: _Spans) -> None:
        self.item, self.name, self.spans = item, name, spans
        self.parts: list[str] = []
        self.pos = 0

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.pos += len(text)

    def value(
        self, attribute: str, surface: str, canonical: str, before: str = "", after: str = ""
    ) -> None:
        self.put(before)
        sp = self.spans
        sp.item.append(self.item)
        sp.field.append(self.name)
        sp.attribute.append(attribute)
        sp.value.append(surface)
        sp.canonical.append(canonical)
        sp.start.append(self.pos)
        self.put(surface)
        self.put(after)

    def text(self) -> str:
        return "".join(self.parts)


_OPENINGS = ("Meet the {n}.", "Introducing our {n}.", "The {n} you have been looking for.")


@dataclass
class _TextDraws:
    """The random choices of :func:`render_texts`, drawn up front, as plain lists (indexing
    them in the per-item loop is much faster than indexing numpy arrays)."""

    offsets: np.ndarray  # item -> first row of its attribute values
    attr_attr: list[int]
    attr_code: list[int]
    in_title: list[bool]
    in_desc: list[bool]
    title_surface: list[str]
    desc_surface: list[str]
    template: list[int]
    order: list[float]
    per_item: np.ndarray  # (n, 8) integers per item
    brand_in_title: np.ndarray
    spec_style: np.ndarray
    mention_u: np.ndarray


def _draw_texts(rng: np.random.Generator, items: Items, tax: Taxonomy) -> _TextDraws:
    n = items.n
    m = len(items.attr_item)
    listed = tax.value_listed[items.attr_code]
    n_surfaces = np.asarray([len(s) for s in tax.value_surfaces])[items.attr_code]
    # surfaces: canonical 60 %, else a variant (titles use listed spellings, not lower-cased ones)
    title_pick = np.where(
        rng.random(m) < 0.6, 0, 1 + (rng.random(m) * np.maximum(listed - 1, 1)).astype(np.int64)
    )
    title_pick = np.where(listed > 1, title_pick, 0)
    desc_pick = np.where(
        rng.random(m) < 0.6, 0, 1 + (rng.random(m) * np.maximum(n_surfaces - 1, 1)).astype(np.int64)
    )
    desc_pick = np.where(n_surfaces > 1, desc_pick, 0)
    template_pick = rng.integers(0, 1 << 20, size=m)
    order_key = rng.random(m)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(items.attr_item, minlength=n))])

    per_item = rng.integers(0, 1 << 20, size=(n, 8))
    brand_in_title = rng.random(n) < 0.92
    spec_style = rng.random(n) < 0.3
    mention_u = rng.random(n)
    attr_code = items.attr_code.tolist()
    return _TextDraws(
        offsets=offsets,
        attr_attr=items.attr_attr.tolist(),
        attr_code=attr_code,
        in_title=items.in_title.tolist(),
        in_desc=items.in_description.tolist(),
        title_surface=[tax.value_surfaces[c][p] for c, p in zip(attr_code, title_pick.tolist())],
        desc_surface=[tax.value_surfaces[c][p] for c, p in zip(attr_code, desc_pick.tolist())],
        template=template_pick.tolist(),
        order=order_key.tolist(),
        per_item=per_item,
        brand_in_title=brand_in_title,
        spec_style=spec_style,
        mention_u=mention_u,
    )


def _write_title(
    field: _Field, d: _TextDraws, rows: range, names: list[str], noun: str, brand: tuple, r: list
) -> str:
    """title: [brand] [pre-noun values] noun [for ...] [with ...], [tail values]"""
    pre, post, tail = [], [], []
    for k in rows:
        if d.in_title[k]:
            spec = ATTRIBUTES[d.attr_attr[k]]
            if spec.slot == vocab.PRE:
                pre.append((_PRE_ORDER.get(spec.name, 99), k))
            elif spec.slot in (vocab.FOR, vocab.WITH):
                post.append((0 if spec.slot == vocab.FOR else 1, k))
            else:
                tail.append((0, k))
    if d.brand_in_title[field.item]:
        field.value(BRAND_ATTRIBUTE, brand[0], brand[1], after=" ")
    for _, k in sorted(pre):
        field.value(
            ATTRIBUTES[d.attr_attr[k]].name, d.title_surface[k], names[d.attr_code[k]], after=" "
        )
    field.put(noun)
    for _, k in sorted(post):
        spec = ATTRIBUTES[d.attr_attr[k]]
        before, after = spec.title.split("{v}")
        field.value(spec.name, d.title_surface[k], names[d.attr_code[k]], " " + before, after)
    sep = vocab.TITLE_SEPARATORS[r[1] % len(vocab.TITLE_SEPARATORS)]
    for j, (_, k) in enumerate(tail):
        spec = ATTRIBUTES[d.attr_attr[k]]
        field.value(spec.name, d.title_surface[k], names[d.attr_code[k]], sep if j == 0 else ", ")
    return field.text()


def _write_description(
    field: _Field,
    d: _TextDraws,
    rows: range,
    names: list[str],
    leaf: Any,
    noun: str,
    brand: tuple,
    r: list,
) -> str:
    """description: [brand intro] opening, value sentences or a bullet list, filler"""
    intro = vocab.BRAND_INTROS[r[2] % len(vocab.BRAND_INTROS)]
    if intro:
        before, after = intro.split("{b}")
        if brand[0].endswith(".") and after.startswith("."):  # "Ltd.." -> "Ltd."
            after = after[1:]
        field.value(BRAND_ATTRIBUTE, brand[0], brand[1], before, after)
    field.put(_OPENINGS[r[3] % len(_OPENINGS)].replace("{n}", noun.lower()))
    desc_rows = sorted((d.order[k], k) for k in rows if d.in_desc[k])
    fillers = vocab.DOMAIN_FILLERS[leaf.domain]
    if d.spec_style[field.item] and desc_rows:
        for _, k in desc_rows:
            a = d.attr_attr[k]
            field.value(
                ATTRIBUTES[a].name, d.desc_surface[k], names[d.attr_code[k]], f"\n• {_LABELS[a]}: "
            )
        field.put("\n" + fillers[r[4] % len(fillers)])
    else:
        for _, k in desc_rows:
            spec = ATTRIBUTES[d.attr_attr[k]]
            template = spec.describe[d.template[k] % len(spec.describe)]
            before, after = template.replace("{n}", leaf.short).split("{v}")
            field.value(spec.name, d.desc_surface[k], names[d.attr_code[k]], " " + before, after)
        field.put(" " + fillers[r[4] % len(fillers)])
        if r[5] % 2:
            field.put(" " + vocab.GENERIC_FILLERS[r[6] % len(vocab.GENERIC_FILLERS)])
    return field.text()


def _review_mention(
    d: _TextDraws, i: int, rows: range, names: list[str], r: list
) -> tuple[list[str], int, int] | None:
    """Six review sentences about one attribute the buyer can see (catalog-only ones
    excluded), with that attribute and value code; None when there is none."""
    describable = [k for k in rows if ATTRIBUTES[d.attr_attr[k]].channel != vocab.CATALOG]
    if not describable:
        return None
    k = describable[int(d.mention_u[i] * len(describable))]
    spec = ATTRIBUTES[d.attr_attr[k]]
    value = names[d.attr_code[k]]
    if spec.lowercase and r[7] % 2:
        value = value.lower()
    pools = spec.review or vocab.GENERIC_REVIEW_MENTIONS
    sentences = []
    for s in range(3):
        for j in range(2):
            sentence = pools[s][(r[7] + j) % len(pools[s])].replace("{v}", value)
            sentences.append(sentence[0].upper() + sentence[1:])
    return sentences, d.attr_attr[k], d.attr_code[k]


def render_texts(rng: np.random.Generator, items: Items, tax: Taxonomy, brands: Brands) -> None:
    """Titles, descriptions, their exact attribute spans and per-item review sentences.

    Random choices are drawn up front as arrays; the loop over items only assembles strings and
    records ``(start, end)`` of every value it writes, so spans are exact by construction.
    """
    n = items.n
    d = _draw_texts(rng, items, tax)
    names = tax.value_name
    item_leaf, item_brand = items.leaf.tolist(), items.brand.tolist()

    titles = np.empty(n, dtype=object)
    descriptions = np.empty(n, dtype=object)
    mentions = np.full((n, 6), "", dtype=object)
    mention_attr = np.full(n, -1, dtype=np.int64)
    mention_code = np.full(n, -1, dtype=np.int64)
    spans = _Spans()

    for i in range(n):
        rows = range(int(d.offsets[i]), int(d.offsets[i + 1]))
        leaf = LEAVES[item_leaf[i]]
        r = d.per_item[i].tolist()
        noun = leaf.nouns[r[0] % len(leaf.nouns)]
        brand = (items.brand_surface[i], brands.names[item_brand[i]])  # (surface, canonical)
        titles[i] = _write_title(_Field(i, "title", spans), d, rows, names, noun, brand, r)
        descriptions[i] = _write_description(
            _Field(i, "description", spans), d, rows, names, leaf, noun, brand, r
        )
        mention = _review_mention(d, i, rows, names, r)
        if mention is not None:
            mentions[i, :], mention_attr[i], mention_code[i] = mention

    items.titles = titles
    items.descriptions = descriptions
    items.spans = spans.as_columns()
    items.review_mentions = mentions
    items.review_mention_attr = mention_attr
    items.review_mention_code = mention_code


# ============================================================================ item relations
def item_relations(rng: np.random.Generator, items: Items, tax: Taxonomy) -> dict[str, np.ndarray]:
    """``also_bought`` (complements: shampoo -> conditioner) and ``also_viewed`` (substitutes).

    Returns ``{relation: (2, E) array of item indices}``, head first.  Popular items get more
    neighbours; candidates are drawn by popularity in the target leaf and the best fitting one
    (same brand, similar price, shared attribute values) is kept.
    """
    n = items.n
    rel_pop = (items.popularity / items.popularity.max()) ** 0.25
    k_cand = 5

    def pick(heads: np.ndarray, target_leaf: np.ndarray, substitute: bool) -> np.ndarray:
        cand = items.sample_in_leaf(rng, np.repeat(target_leaf, k_cand)).reshape(-1, k_cand)
        h = heads[:, None]
        score = 1.5 * (items.brand[cand] == items.brand[h])
        if substitute:
            score = score - 2.0 * np.abs(np.log(items.price[cand] / items.price[h]))
            shared = (items.taste_codes[cand] == items.taste_codes[h]) & (
                items.taste_codes[cand] >= 0
            )
            score = score + 0.5 * shared.sum(-1)
        score = score + rng.gumbel(size=score.shape) - 1e6 * (cand == h)
        return cand[np.arange(len(heads)), np.argmax(score, axis=1)]

    # also_bought: a complement leaf 70 % of the time (else a leaf of the same group)
    n_ab = np.minimum(rng.poisson(0.5 + 3.0 * rel_pop), 8)
    heads = np.repeat(np.arange(n), n_ab)
    comp_n = np.asarray([len(c) for c in tax.leaf_complements])
    comp_flat = np.asarray([c for cs in tax.leaf_complements for c in cs], dtype=np.int64)
    comp_off = np.concatenate([[0], np.cumsum(comp_n)])
    group_n = np.asarray([len(g) for g in tax.group_leaves])
    group_flat = np.asarray([lf for g in tax.group_leaves for lf in g], dtype=np.int64)
    group_off = np.concatenate([[0], np.cumsum(group_n)])

    def sibling(leaves: np.ndarray) -> np.ndarray:
        g = tax.leaf_group[leaves]
        return group_flat[group_off[g] + (rng.random(len(leaves)) * group_n[g]).astype(np.int64)]

    hl = items.leaf[heads]
    use_comp = (rng.random(len(heads)) < 0.7) & (comp_n[hl] > 0)
    comp = comp_flat[
        np.minimum(
            comp_off[hl] + (rng.random(len(heads)) * comp_n[hl]).astype(np.int64),
            len(comp_flat) - 1,
        )
    ]
    target = np.where(use_comp, comp, sibling(hl))
    ab_tails = pick(heads, target, substitute=False)

    n_av = np.minimum(2 + rng.poisson(1.0 + 2.0 * rel_pop), 8)
    av_heads = np.repeat(np.arange(n), n_av)
    hl = items.leaf[av_heads]
    target = np.where(rng.random(len(av_heads)) < 0.85, hl, sibling(hl))
    av_tails = pick(av_heads, target, substitute=True)

    out = {}
    for name, h, t in (("also_bought", heads, ab_tails), ("also_viewed", av_heads, av_tails)):
        keep = h != t
        key = h[keep] * n + t[keep]
        key = np.unique(key)  # sorted by head, then tail
        out[name] = np.stack([key // n, key % n])
    return out
