"""The knobs of the sample generator: one frozen :class:`SampleConfig` per named size in :data:`SIZES`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kgwb.errors import ConfigError, UnknownNameError

#: how an interaction's item was chosen (see the package docstring)
MODES = ("taste", "popularity", "follow", "noise")
SPLIT_SCHEMES = ("leave_last_out", "time", "none")


@dataclass(frozen=True)
class SampleConfig:
    """Everything that shapes one generated dataset; ``generate(size, **overrides)`` replaces fields.

    Counts are targets: ``n_interactions`` is met to within a fraction of a percent (the per-user
    cap and the (user, item) de-duplication can leave a few slots empty).
    """

    n_users: int
    n_items: int
    n_interactions: int
    n_brands: int
    #: every user gets at least this many interactions (3 = everybody has train, valid and test)
    min_user_interactions: int = 3
    #: nobody interacts with more than this share of the catalog
    max_user_share: float = 0.2
    #: sigma of the log-normal user activity (larger = longer tail of heavy users)
    activity_sigma: float = 1.1
    #: Zipf exponent of item popularity (weight of the item of popularity rank r is r ** -exponent)
    popularity_exponent: float = 1.2
    #: total Dirichlet concentration of a user's category preference (smaller = pickier users)
    taste_concentration: float = 2.0
    #: favourite brands per user
    favourite_brands: int = 3
    #: shares of the four choice modes, in the order of MODES: taste, popularity, follow, noise
    mode_shares: tuple[float, float, float, float] = (0.6, 0.15, 0.15, 0.1)
    #: candidates drawn per taste choice before the user's brand / attribute / price fit picks one
    taste_candidates: int = 6
    #: weights of the fit terms in the taste choice and in the ratings
    brand_weight: float = 1.5
    attribute_weight: float = 0.8
    price_weight: float = 0.6
    #: share of items whose listing spells the brand exactly as the canonical name
    canonical_brand_share: float = 0.5
    #: share of items the KG links to their brand entity (the rest must be resolved from text)
    kg_brand_coverage: float = 0.85
    #: share of interactions with a review, and a cap on their number (texts are the slow part)
    review_share: float = 0.3
    max_reviews: int = 200_000
    #: share of reviews with noise (typos, emoji, HTML entities)
    review_noise: float = 0.25
    #: "leave_last_out", "time" or "none" (see the package docstring)
    split: str = "leave_last_out"
    #: the time window of the interactions (Unix seconds, 2018-01-01 .. 2024-01-01)
    start_time: int = 1_514_764_800
    end_time: int = 1_704_067_200

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_interactions", "n_brands"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)!r}")
        if self.n_items < 20:
            raise ConfigError(f"n_items must be at least 20, not {self.n_items}")
        if len(self.mode_shares) != len(MODES) or min(self.mode_shares) < 0:
            raise ConfigError(f"mode_shares must be {len(MODES)} non-negative shares for {MODES}")
        if abs(sum(self.mode_shares) - 1.0) > 1e-6:
            raise ConfigError(f"mode_shares must sum to 1, not {sum(self.mode_shares)}")
        if self.split not in SPLIT_SCHEMES:
            raise UnknownNameError("split scheme", self.split, list(SPLIT_SCHEMES))
        for name in (
            "max_user_share",
            "canonical_brand_share",
            "kg_brand_coverage",
            "review_share",
            "review_noise",
        ):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], not {getattr(self, name)!r}")
        if self.end_time <= self.start_time:
            raise ConfigError("end_time must be after start_time")

    def replace(self, **overrides: Any) -> SampleConfig:
        """A copy with ``overrides``; unknown names fail with the list of valid ones."""
        valid = [f.name for f in dataclasses.fields(self)]
        for name in overrides:
            if name not in valid:
                raise UnknownNameError("sample option", name, valid)
        if "mode_shares" in overrides:
            overrides["mode_shares"] = tuple(float(x) for x in overrides["mode_shares"])
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mode_shares"] = list(self.mode_shares)
        return out


#: the named sizes; ``tiny`` is for CI, ``small`` is the default everywhere
SIZES: dict[str, SampleConfig] = {
    "tiny": SampleConfig(
        n_users=200, n_items=150, n_interactions=3_000, n_brands=30, max_user_share=0.4
    ),
    "small": SampleConfig(n_users=2_000, n_items=1_000, n_interactions=40_000, n_brands=80),
    "medium": SampleConfig(n_users=6_000, n_items=3_000, n_interactions=100_000, n_brands=150),
    "large": SampleConfig(
        n_users=50_000, n_items=20_000, n_interactions=1_000_000, n_brands=400, max_user_share=0.05
    ),
    "xlarge": SampleConfig(
        n_users=200_000,
        n_items=60_000,
        n_interactions=5_000_000,
        n_brands=800,
        max_user_share=0.02,
        review_share=0.1,
    ),
}


def resolve_config(size: str | SampleConfig, overrides: dict[str, Any]) -> tuple[str, SampleConfig]:
    """``(size name, config)`` for a size name or a config, with ``overrides`` applied."""
    if isinstance(size, SampleConfig):
        name, config = "custom", size
    else:
        if size not in SIZES:
            raise UnknownNameError("sample size", str(size), list(SIZES))
        name, config = size, SIZES[size]
    if overrides:
        config = config.replace(**overrides)
    return name, config
