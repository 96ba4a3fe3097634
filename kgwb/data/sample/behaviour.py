"""Sample users and what they do: latent tastes, interactions, ratings, time stamps, split, reviews.

Everything is vectorised over users or interaction slots (chunked where arrays would get large);
no Python loop runs per interaction.  The choice model is described in the package docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kgwb.data.sample import vocab
from kgwb.data.sample.catalog import Items, Taxonomy
from kgwb.data.sample.config import MODES, SampleConfig

TASTE, POPULARITY, FOLLOW, NOISE = range(len(MODES))
AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_SHARES = (0.15, 0.3, 0.25, 0.17, 0.13)
REGIONS = ("Northeast", "Midwest", "South", "West", "Pacific")
#: how much each age group leans towards each top-level category (order of vocab.DOMAINS)
AGE_DOMAIN_TILT = np.array(
    [
        [1.4, 1.5, 0.6, 1.4, 1.0],
        [1.2, 1.2, 0.9, 1.1, 1.2],
        [1.0, 1.0, 1.2, 1.0, 1.1],
        [0.9, 0.8, 1.4, 0.9, 0.9],
        [0.8, 0.7, 1.6, 0.8, 0.7],
    ]
)
PRICE_TIERS = ("budget", "mid", "premium")
SENTIMENTS = ("negative", "neutral", "positive")
_CHUNK = 400_000
_DAY = 86_400


def _flat_sampler(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative weights shifted by the row index, flattened: one searchsorted samples
    a category for every row at once (see :func:`_sample_rows`)."""
    cum = np.cumsum(weights, axis=1)
    cum /= cum[:, -1:]
    cum += np.arange(len(weights))[:, None]
    return cum.ravel()


def _sample_rows(
    rng: np.random.Generator, flat: np.ndarray, width: int, rows: np.ndarray
) -> np.ndarray:
    """For each entry of ``rows``, a column drawn from that row's weights (built by _flat_sampler)."""
    pos = np.searchsorted(flat, rows + rng.random(len(rows)), side="right")
    return np.clip(pos - rows * width, 0, width - 1)


# ===================================================================================== users
@dataclass
class Users:
    n: int
    ids: np.ndarray
    age_group: np.ndarray
    region: np.ndarray
    theta: np.ndarray  # (n, leaves) category preference, rows sum to 1
    theta_flat: np.ndarray
    fav_brands: np.ndarray  # (n, favourite_brands)
    fav_values: np.ndarray  # (n, taste attributes) value codes
    tier_pref: np.ndarray
    activity: np.ndarray
    bias: np.ndarray
    #: ``ids`` as an Arrow string array (tables take from it)
    id_array: object = None

    def sample_leaf(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        return _sample_rows(rng, self.theta_flat, self.theta.shape[1], users)


def make_users(
    rng: np.random.Generator,
    cfg: SampleConfig,
    tax: Taxonomy,
    brand_weight: np.ndarray,
    leaf_brands: list[np.ndarray],
    items: Items,
) -> Users:
    n, n_leaves = cfg.n_users, tax.n_leaves
    width = max(6, len(str(n)))
    ids = np.asarray([f"U{i + 1:0{width}d}" for i in range(n)], dtype=object)
    age = rng.choice(len(AGE_GROUPS), size=n, p=AGE_SHARES)
    region = rng.integers(0, len(REGIONS), size=n)

    # Dirichlet preference over leaves around the leaves' appeal, tilted by age group
    appeal = np.bincount(items.leaf, weights=items.popularity, minlength=n_leaves) ** 0.5
    base = appeal[None, :] * AGE_DOMAIN_TILT[age][:, tax.leaf_domain]
    alpha = cfg.taste_concentration * base / base.sum(axis=1, keepdims=True)
    theta = rng.standard_gamma(alpha) + 1e-12
    theta /= theta.sum(axis=1, keepdims=True)
    theta_flat = _flat_sampler(theta)

    # favourite brands: brands of the leaves the user likes, by brand popularity
    k = cfg.favourite_brands
    fav_leaf = _sample_rows(rng, theta_flat, n_leaves, np.repeat(np.arange(n), k))
    sizes = np.asarray([len(b) for b in leaf_brands])
    flat_brands = np.concatenate(leaf_brands)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    bw = brand_weight[flat_brands]
    cum = np.zeros_like(bw)
    for lf in range(n_leaves):  # per-leaf cumulative weights, each ending at lf + 1
        seg = slice(starts[lf], starts[lf + 1])
        cum[seg] = lf + np.cumsum(bw[seg]) / bw[seg].sum()
    pos = np.searchsorted(cum, fav_leaf + rng.random(len(fav_leaf)), side="right")
    pos = np.clip(pos, starts[fav_leaf], starts[fav_leaf + 1] - 1)
    fav_brands = flat_brands[pos].reshape(n, k)

    # favourite values of the taste attributes (colors, scents, ...), common values likelier
    fav_values = np.empty((n, len(tax.taste_attrs)), dtype=np.int64)
    for t, a in enumerate(tax.taste_attrs):
        codes = np.arange(tax.value_offset[a], tax.value_offset[a + 1])
        freq = (
            np.bincount(items.attr_code[items.attr_attr == a] - codes[0], minlength=len(codes))
            + 1.0
        )
        fav_values[:, t] = rng.choice(codes, size=n, p=freq / freq.sum())

    return Users(
        n=n,
        ids=ids,
        age_group=age,
        region=region,
        theta=theta,
        theta_flat=theta_flat,
        fav_brands=fav_brands,
        fav_values=fav_values,
        tier_pref=rng.choice(3, size=n, p=(0.4, 0.4, 0.2)),
        activity=np.exp(rng.normal(0.0, cfg.activity_sigma, size=n)),
        bias=rng.normal(0.0, 0.35, size=n),
    )


def fit_terms(
    users: Users, items: Items, u: np.ndarray, i: np.ndarray, cfg: SampleConfig
) -> np.ndarray:
    """Brand, attribute and price fit of items ``i`` for users ``u`` (broadcasting)."""
    brand = (users.fav_brands[u] == items.brand[i][..., None]).any(-1)
    codes = items.taste_codes[i]
    attr = ((codes == users.fav_values[u]) & (codes >= 0)).sum(-1)
    price = np.abs(items.price_tier[i] - users.tier_pref[u])
    return cfg.brand_weight * brand + cfg.attribute_weight * attr - cfg.price_weight * price / 2.0


# ============================================================================== interactions
@dataclass
class Interactions:
    user: np.ndarray
    item: np.ndarray
    mode: np.ndarray
    timestamp: np.ndarray
    rating: np.ndarray
    split: np.ndarray | None


class _Chooser:
    """Draws items for interaction slots by mode (vectorised, chunked)."""

    def __init__(self, rng, cfg, items: Items, users: Users, relations: dict[str, np.ndarray]):
        self.rng, self.cfg, self.items, self.users = rng, cfg, items, users
        self.pop_cum = np.cumsum(items.popularity)
        self.adj = {}
        for name, edges in relations.items():
            heads, tails = edges
            off = np.searchsorted(heads, np.arange(items.n + 1))
            self.adj[name] = (off, tails)

    def popular(self, k: int) -> np.ndarray:
        r = self.rng.random(k) * self.pop_cum[-1]
        return np.minimum(np.searchsorted(self.pop_cum, r, side="right"), self.items.n - 1)

    def taste(self, u: np.ndarray) -> np.ndarray:
        out = np.empty(len(u), dtype=np.int64)
        k = self.cfg.taste_candidates
        for s in range(0, len(u), _CHUNK):
            uu = u[s : s + _CHUNK]
            leaf = self.users.sample_leaf(self.rng, uu)
            cand = self.items.sample_in_leaf(self.rng, np.repeat(leaf, k), tempered=True).reshape(
                -1, k
            )
            score = fit_terms(self.users, self.items, uu[:, None], cand, self.cfg)
            score = score + self.rng.gumbel(size=score.shape)
            out[s : s + _CHUNK] = cand[np.arange(len(uu)), np.argmax(score, axis=1)]
        return out

    def neighbour(self, prev: np.ndarray) -> np.ndarray:
        """An also_bought (75 %) or also_viewed neighbour of ``prev``; popular item if it has none."""
        ab_off, ab_t = self.adj["also_bought"]
        av_off, av_t = self.adj["also_viewed"]
        n_ab = ab_off[prev + 1] - ab_off[prev]
        n_av = av_off[prev + 1] - av_off[prev]
        use_ab = ((self.rng.random(len(prev)) < 0.75) & (n_ab > 0)) | (n_av == 0)
        r = self.rng.random(len(prev))
        ab = (
            ab_t[np.minimum(ab_off[prev] + (r * n_ab).astype(np.int64), max(len(ab_t) - 1, 0))]
            if len(ab_t)
            else prev
        )
        av = (
            av_t[np.minimum(av_off[prev] + (r * n_av).astype(np.int64), max(len(av_t) - 1, 0))]
            if len(av_t)
            else prev
        )
        out = np.where(use_ab, ab, av)
        none = (n_ab == 0) & (n_av == 0)
        out[none] = self.popular(int(none.sum()))
        return out

    def choose(self, user: np.ndarray, mode: np.ndarray) -> np.ndarray:
        """Items for slots in (user, sequence) order; a follow slot follows the slot before it."""
        item = np.zeros(len(user), dtype=np.int64)
        sel = np.flatnonzero(mode == TASTE)
        item[sel] = self.taste(user[sel])
        sel = np.flatnonzero(mode == POPULARITY)
        item[sel] = self.popular(len(sel))
        sel = np.flatnonzero(mode == NOISE)
        item[sel] = self.rng.integers(0, self.items.n, size=len(sel))
        follow = mode == FOLLOW
        if follow.any():
            idx = np.arange(len(mode))
            last_other = np.maximum.accumulate(np.where(~follow, idx, 0))
            depth = np.where(follow, idx - last_other, 0)
            for d in range(1, int(depth.max()) + 1):
                sel = np.flatnonzero(depth == d)
                item[sel] = self.neighbour(item[sel - 1])
        return item


def _allocate(rng: np.random.Generator, cfg: SampleConfig, activity: np.ndarray) -> np.ndarray:
    """Interactions per user: a minimum each, the rest by heavy-tailed activity, capped."""
    n = len(activity)
    lo = cfg.min_user_interactions
    cap = min(cfg.n_items, max(lo, int(cfg.max_user_share * cfg.n_items)))
    counts = np.full(n, lo, dtype=np.int64)
    remaining = cfg.n_interactions - counts.sum()
    for _ in range(6):
        if remaining <= 0:
            break
        room = cap - counts
        w = activity * (room > 0)
        if w.sum() == 0:
            break
        add = np.minimum(rng.multinomial(remaining, w / w.sum()), room)
        counts += add
        remaining -= int(add.sum())
    return counts


def make_interactions(
    rng: np.random.Generator,
    cfg: SampleConfig,
    items: Items,
    users: Users,
    relations: dict[str, np.ndarray],
) -> Interactions:
    chooser = _Chooser(rng, cfg, items, users, relations)
    target = _allocate(rng, cfg, users.activity)
    user = np.repeat(np.arange(users.n), target)
    starts = np.concatenate([[0], np.cumsum(target)])
    seq = np.arange(len(user)) - starts[user]
    mode = rng.choice(len(MODES), size=len(user), p=cfg.mode_shares)
    mode[(seq == 0) & (mode == FOLLOW)] = TASTE
    item = chooser.choose(user, mode)

    # keep each (user, item) once; refill the gaps (drawing twice what is missing, keeping the
    # first unique ones) by taste or popularity in up to 4 rounds, then uniformly at random.
    # ``seen`` holds the sorted keys kept so far, so a round only checks its new slots.
    key = user * items.n + item
    seen, first = np.unique(key, return_index=True)
    keep = np.zeros(len(key), dtype=bool)
    keep[first] = True
    user, item, mode, seq = user[keep], item[keep], mode[keep], seq[keep]
    next_seq = target.copy()
    for round_ in range(5):
        missing = target - np.bincount(user, minlength=users.n)
        if missing.sum() == 0:
            break
        draw = 2 * missing
        new_user = np.repeat(np.arange(users.n), draw)
        new_seq = (
            next_seq[new_user]
            + np.arange(len(new_user))
            - np.repeat(np.concatenate([[0], np.cumsum(draw)[:-1]]), draw)
        )
        next_seq += draw
        if round_ < 4:
            shares = np.asarray(cfg.mode_shares)[[TASTE, POPULARITY]] + 1e-9
            new_mode = rng.choice([TASTE, POPULARITY], size=len(new_user), p=shares / shares.sum())
        else:
            new_mode = np.full(len(new_user), NOISE)
        new_item = chooser.choose(new_user, new_mode)
        new_key = new_user * items.n + new_item
        at = np.minimum(np.searchsorted(seen, new_key), len(seen) - 1)
        fresh = np.zeros(len(new_key), dtype=bool)
        fresh[np.unique(new_key, return_index=True)[1]] = True
        fresh &= seen[at] != new_key
        fresh_user = new_user[fresh]
        rank = np.arange(len(fresh_user)) - np.searchsorted(
            fresh_user, fresh_user
        )  # new_user is sorted
        ok = np.flatnonzero(fresh)[rank < missing[fresh_user]]
        added = np.sort(new_key[ok])
        seen = np.insert(seen, np.searchsorted(seen, added), added)
        user = np.concatenate([user, new_user[ok]])
        item = np.concatenate([item, new_item[ok]])
        mode = np.concatenate([mode, new_mode[ok]])
        seq = np.concatenate([seq, new_seq[ok]])
    order = np.argsort(user * (int(next_seq.max()) + 1) + seq, kind="stable")
    user, item, mode = user[order], item[order], mode[order]

    timestamp = _timestamps(rng, cfg, user, mode, users.n)
    rating = _ratings(rng, cfg, items, users, user, item)
    split = _split(cfg, user, timestamp, users.n)
    return Interactions(
        user=user, item=item, mode=mode, timestamp=timestamp, rating=rating, split=split
    )


def _timestamps(
    rng, cfg: SampleConfig, user: np.ndarray, mode: np.ndarray, n_users: int
) -> np.ndarray:
    """Strictly increasing per user: a lifetime span per user, exponential gaps within it, and
    short gaps (hours to days) before an interaction that follows a co-purchase link."""
    window = cfg.end_time - cfg.start_time
    n_u = np.bincount(user, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(n_u)])
    pos = np.arange(len(user)) - starts[user]
    lifetime = window * (0.05 + 0.75 * rng.beta(2.0, 2.0, size=n_users))
    mean_gap = lifetime / np.maximum(n_u - 1, 1)
    gap = rng.exponential(1.0, size=len(user)) * mean_gap[user]
    follow = mode == FOLLOW
    gap[follow] = rng.exponential(1.5 * _DAY, size=int(follow.sum()))
    gap = np.where(pos == 0, 0.0, np.floor(gap) + 1.0)
    cum = np.cumsum(gap)
    cum -= cum[starts[user]]
    total = cum[np.maximum(starts[1:] - 1, 0)]
    factor = np.minimum(1.0, 0.95 * window / np.maximum(total, 1.0))
    cum = np.floor(cum * factor[user]) + pos  # + pos keeps them strictly increasing
    span = total * factor + n_u
    begin = cfg.start_time + np.floor(rng.random(n_users) * np.maximum(window - span, 0))
    return (begin[user] + cum).astype(np.int64)


def _ratings(
    rng, cfg: SampleConfig, items: Items, users: Users, user: np.ndarray, item: np.ndarray
) -> np.ndarray:
    """1-5 stars from the taste fit (category preference, brand, attributes, price), the item's
    quality, the user's leniency and noise; skewed positive like marketplace ratings."""
    out = np.empty(len(user), dtype=np.float64)
    n_leaves = users.theta.shape[1]
    fits = np.empty(len(user))
    for s in range(0, len(user), _CHUNK):
        u, i = user[s : s + _CHUNK], item[s : s + _CHUNK]
        cat = np.log(n_leaves * users.theta[u, items.leaf[i]] + 0.05)
        fits[s : s + _CHUNK] = 0.35 * cat + 0.4 * fit_terms(users, items, u, i, cfg)
    z = (fits - fits.mean()) / (fits.std() + 1e-9)
    latent = (
        0.3
        + 0.9 * z
        + 0.8 * items.quality[item]
        + users.bias[user]
        + rng.normal(0.0, 0.7, len(user))
    )
    out[:] = 1.0 + (latent > -1.6) + (latent > -1.0) + (latent > -0.35) + (latent > 0.35)
    return out


def _split(
    cfg: SampleConfig, user: np.ndarray, timestamp: np.ndarray, n_users: int
) -> np.ndarray | None:
    """Split codes (0 train, 1 valid, 2 test, as in ``SPLITS``) or None for ``split="none"``."""
    if cfg.split == "none":
        return None
    split = np.zeros(len(user), dtype=np.int8)
    if cfg.split == "leave_last_out":
        n_u = np.bincount(user, minlength=n_users)
        ends = np.cumsum(n_u)
        eligible = n_u >= 3
        split[ends[eligible] - 1] = 2
        split[ends[eligible] - 2] = 1
    else:  # global time cut: the last 10 % of the time line is test, the 10 % before it valid
        valid_from, test_from = np.quantile(timestamp, [0.8, 0.9])
        split[timestamp >= valid_from] = 1
        split[timestamp >= test_from] = 2
    return split


# =================================================================================== reviews
@dataclass
class Reviews:
    rows: np.ndarray  # interaction index of each review
    text: np.ndarray
    summary: np.ndarray
    timestamp: np.ndarray
    mention: np.ndarray  # whether the text talks about the item's mention attribute
    sentiment: np.ndarray


def _pick(rng: np.random.Generator, pool: tuple[str, ...], k: int) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), size=k)]


def make_reviews(
    rng: np.random.Generator, cfg: SampleConfig, items: Items, inter: Interactions
) -> Reviews:
    """Template reviews for a share of interactions (capped at ``max_reviews``): an opener, maybe a
    sentence about one of the item's attributes, a detail and a closer, all agreeing with the
    rating; a ``review_noise`` share gets typos, emoji or HTML entities."""
    n = len(inter.user)
    rows = np.flatnonzero(rng.random(n) < cfg.review_share)
    if len(rows) > cfg.max_reviews:
        rows = np.sort(rng.choice(rows, size=cfg.max_reviews, replace=False))
    k = len(rows)
    rating = inter.rating[rows].astype(np.int64)
    sentiment = np.where(rating <= 2, 0, np.where(rating == 3, 1, 2))
    item = inter.item[rows]
    nouns = np.asarray([leaf.short for leaf in vocab.LEAVES], dtype=object)[items.leaf[item]]

    text = np.empty(k, dtype=object)
    detail = np.empty(k, dtype=object)
    closer = np.empty(k, dtype=object)
    emoji = np.empty(k, dtype=object)
    for s in range(3):
        sel = np.flatnonzero(sentiment == s)
        # "{n}" -> the product noun: split each template once, glue per review
        pool = vocab.REVIEW_OPENERS[s]
        t = rng.integers(0, len(pool), size=len(sel))
        pre = np.asarray([o.split("{n}")[0] for o in pool], dtype=object)[t]
        post = np.asarray([o.split("{n}")[-1] if "{n}" in o else "" for o in pool], dtype=object)[t]
        has_noun = np.asarray(["{n}" in o for o in pool], dtype=bool)[t]
        text[sel] = np.where(has_noun, pre + nouns[sel] + post, pre)
        detail[sel] = _pick(rng, vocab.REVIEW_DETAILS[s], len(sel))
        closer[sel] = _pick(rng, vocab.REVIEW_CLOSERS[s], len(sel))
        emoji[sel] = _pick(rng, vocab.REVIEW_EMOJI[s], len(sel))
    mention_text = items.review_mentions[item, 2 * sentiment + rng.integers(0, 2, size=k)]
    mention = (rng.random(k) < 0.7) & (items.review_mention_attr[item] >= 0)
    text = text + np.where(mention, " " + mention_text, "")
    text = text + np.where(rng.random(k) < 0.5, " " + detail, "")
    text = text + np.where(rng.random(k) < 0.6, " " + closer, "")

    noisy = rng.random(k) < cfg.review_noise
    kind = rng.integers(0, 3, size=k)
    series = pd.Series(text, dtype=object)
    typo = np.flatnonzero(noisy & (kind == 0))
    if len(typo):
        sub = series.iloc[typo].astype("string")
        for right, wrong in vocab.REVIEW_TYPOS.items():
            sub = sub.str.replace(rf"\b{right}\b", wrong, regex=True)
        series.iloc[typo] = sub.astype(object)
    with_emoji = np.flatnonzero(noisy & (kind == 1))
    series.iloc[with_emoji] = series.iloc[with_emoji] + " " + emoji[with_emoji]
    html = np.flatnonzero(noisy & (kind == 2))
    if len(html):
        sub = series.iloc[html].str.replace("'", "&#39;", regex=False)
        series.iloc[html] = sub.str.replace(". ", ".<br />", regex=False)

    summary = np.empty(k, dtype=object)
    for stars, pool in vocab.REVIEW_SUMMARIES.items():
        sel = np.flatnonzero(rating == stars)
        summary[sel] = _pick(rng, pool, len(sel))
    delay = np.floor(rng.exponential(3.0 * _DAY, size=k)).astype(np.int64) + 3600
    return Reviews(
        rows=rows,
        text=series.to_numpy(dtype=object),
        summary=summary,
        timestamp=inter.timestamp[rows] + delay,
        mention=mention,
        sentiment=sentiment,
    )
