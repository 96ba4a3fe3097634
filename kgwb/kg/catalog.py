"""Catalog → knowledge graph: structured fields and the triples a dataset already carries.

From any :class:`~kgwb.data.schema.Dataset`:

* ``item`` nodes (name = title), ``brand`` nodes (``produced_by``), ``category`` nodes from the
  category path (item ``belongs_to`` its leaf, each category ``subcategory_of`` its parent),
* structured attributes as ``value`` nodes keyed by ``attribute=normalised value`` with the
  relation ``has_<attribute>`` (``item —has_color→ value:color=red``),
* the dataset's own KG (``kgat`` ``kg_final.txt``, RecBole ``.kg``/``.link``, Amazon ``related``)
  with source ``dataset``; entities linked to items become the item nodes,
* optionally users and their interactions (``interacted``, source ``interaction``).

Edges that several sources state are kept once, by precedence catalog > dataset.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from kgwb.data.schema import Dataset
from kgwb.kg.model import KnowledgeGraph

_SPACE = re.compile(r"\s+")
_REL_SAFE = re.compile(r"[^0-9a-z]+")


def normalise_value(value: str) -> str:
    """Canonical text of an attribute value: Unicode NFKC, case-folded, single spaces, trimmed."""
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return _SPACE.sub(" ", text).strip()


def relation_for(attribute: str) -> str:
    """``Color`` → ``has_color``; ``Shoe type`` → ``has_shoe_type``."""
    return "has_" + (_REL_SAFE.sub("_", normalise_value(attribute)).strip("_") or "attribute")


def normalise_series(values: pd.Series) -> pd.Series:
    """Vectorised :func:`normalise_value` (the same result, computed once per distinct value)."""
    uniques = pd.unique(values.astype("string").fillna(""))
    mapping = {u: normalise_value(u) for u in uniques}
    return values.astype("string").fillna("").map(mapping).astype("string")


def _edges(head, relation, tail, source: str) -> pd.DataFrame:
    head = pd.Series(head, dtype="string").reset_index(drop=True)
    rel = (
        relation
        if isinstance(relation, str)
        else pd.Series(relation, dtype="string").reset_index(drop=True)
    )
    return pd.DataFrame(
        {
            "head": head,
            "relation": rel,
            "tail": pd.Series(tail, dtype="string").reset_index(drop=True),
            "source": source,
            "confidence": 1.0,
        }
    )


def catalog_graph(dataset: Dataset, *, include_users: bool = False) -> KnowledgeGraph:
    """Build the catalog part of the product KG from ``dataset`` (see module docstring)."""
    items = dataset.items
    item_ids = items["item_id"].astype("string")
    item_nodes = "item:" + item_ids
    names = items["title"].astype("string").fillna(item_ids) if "title" in items else item_ids
    node_frames = [pd.DataFrame({"node_id": item_nodes, "type": "item", "name": names})]
    edge_frames: list[pd.DataFrame] = []
    parts = [
        _brand_part(items, item_nodes),
        _category_part(items, item_nodes),
        _attribute_part(dataset.item_attributes),
    ]
    if dataset.kg is not None and len(dataset.kg):
        kg_nodes, kg_edges = _dataset_triples(dataset)
        parts.append(([kg_nodes], [kg_edges]))
    if include_users and len(dataset.users):
        parts.append(_user_part(dataset))
    for part_nodes, part_edges in parts:
        node_frames += part_nodes
        edge_frames += part_edges

    nodes = pd.concat(node_frames, ignore_index=True).drop_duplicates("node_id", keep="first")
    if edge_frames:
        edges, nodes = _merge_edges(pd.concat(edge_frames, ignore_index=True), nodes)
    else:
        from kgwb.kg.model import empty_edges

        edges = empty_edges()
    meta = {
        "dataset": dataset.name,
        "include_users": include_users,
        "built_from": ["catalog"] + (["dataset_kg"] if dataset.kg is not None else []),
    }
    return KnowledgeGraph(nodes=nodes.reset_index(drop=True), edges=edges, meta=meta)


#: node frames and edge frames of one part of the catalog graph
_Part = tuple[list[pd.DataFrame], list[pd.DataFrame]]


def _brand_part(items: pd.DataFrame, item_nodes: pd.Series) -> _Part:
    if "brand" not in items.columns:
        return [], []
    has = items["brand"].notna() & (items["brand"].astype("string").str.strip() != "")
    brand = items.loc[has, "brand"].astype("string").str.strip()
    brand_nodes = "brand:" + brand
    return (
        [pd.DataFrame({"node_id": brand_nodes, "type": "brand", "name": brand})],
        [_edges(item_nodes[has], "produced_by", brand_nodes, "catalog")],
    )


def _category_part(items: pd.DataFrame, item_nodes: pd.Series) -> _Part:
    """Category nodes from ``category_path`` (``A > B > C``) or ``category``: each item
    belongs to its leaf, each category is a subcategory of the one before it."""
    path_col = "category_path" if "category_path" in items.columns else None
    if not path_col and "category" not in items.columns:
        return [], []
    paths = items[path_col].astype("string") if path_col else items["category"].astype("string")
    has = paths.notna() & (paths.str.strip() != "")
    parts = paths[has].str.split(r"\s*>\s*", regex=True)
    leaf = parts.str[-1].str.strip()
    belongs = _edges(item_nodes[has], "belongs_to", "category:" + leaf, "catalog")
    chains = (
        parts.explode()
        .str.strip()
        .reset_index()
        .rename(columns={"index": "row", path_col or "category": "name"})
    )
    chains["level"] = chains.groupby("row").cumcount()
    nodes = pd.DataFrame(
        {
            "node_id": "category:" + chains["name"],
            "type": "category",
            "name": chains["name"],
        }
    )
    parent = chains.groupby("row")["name"].shift(1)
    child_of = chains[parent.notna()].assign(parent=parent[parent.notna()])
    child_of = child_of.drop_duplicates(["name", "parent"])
    subcategory = _edges(
        "category:" + child_of["name"],
        "subcategory_of",
        "category:" + child_of["parent"],
        "catalog",
    )
    return [nodes], [belongs, subcategory]


def _attribute_part(attrs: pd.DataFrame | None) -> _Part:
    """One value node per (attribute, normalised value), linked by the attribute's relation."""
    if attrs is None or not len(attrs):
        return [], []
    a = attrs.dropna(subset=["value"])
    norm_val = normalise_series(a["value"])
    norm_attr = normalise_series(a["attribute"])
    keep = norm_val != ""
    a, norm_val, norm_attr = a[keep], norm_val[keep], norm_attr[keep]
    value_nodes = "value:" + norm_attr + "=" + norm_val
    rel_map = {x: relation_for(x) for x in pd.unique(a["attribute"].astype("string"))}
    relations = a["attribute"].astype("string").map(rel_map)
    return (
        [
            pd.DataFrame(
                {"node_id": value_nodes, "type": "value", "name": a["value"].astype("string")}
            )
        ],
        [_edges("item:" + a["item_id"].astype("string"), relations, value_nodes, "catalog")],
    )


def _user_part(dataset: Dataset) -> _Part:
    """User nodes and their (training) interactions."""
    users = dataset.users["user_id"].astype("string")
    inter = dataset.interactions
    if dataset.has_split:
        inter = inter[inter["split"] == "train"]
    inter = inter.drop_duplicates(["user_id", "item_id"])
    return (
        [pd.DataFrame({"node_id": "user:" + users, "type": "user", "name": users})],
        [
            _edges(
                "user:" + inter["user_id"].astype("string"),
                "interacted",
                "item:" + inter["item_id"].astype("string"),
                "interaction",
            )
        ],
    )


def _merge_edges(edges: pd.DataFrame, nodes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Edges without duplicates (a catalog edge wins over the same one from interactions or
    the dataset's KG), and nodes for edge ends no table described (e.g. KG entities without
    an entity list)."""
    precedence = {"catalog": 0, "interaction": 1, "dataset": 2}
    edges["_p"] = edges["source"].map(precedence)
    edges = (
        edges.sort_values("_p", kind="stable")
        .drop_duplicates(["head", "relation", "tail"], keep="first")
        .drop(columns="_p")
        .reset_index(drop=True)
    )
    ends = pd.Index(pd.unique(pd.concat([edges["head"], edges["tail"]], ignore_index=True)))
    missing = ends.difference(pd.Index(nodes["node_id"]))
    if len(missing):
        types = missing.str.split(":", n=1).str[0]
        keys = missing.str.split(":", n=1).str[1]
        nodes = pd.concat(
            [nodes, pd.DataFrame({"node_id": missing, "type": types, "name": keys})],
            ignore_index=True,
        )
    return edges, nodes


def _dataset_triples(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map the dataset's entity ids to typed node ids and its triples to ``dataset`` edges."""
    kg = dataset.kg
    ent_ids = pd.Index(
        pd.unique(pd.concat([kg["head"], kg["tail"]], ignore_index=True).astype("string"))
    )
    node_of = pd.Series(pd.NA, index=ent_ids, dtype="string")
    type_of = pd.Series("entity", index=ent_ids, dtype="string")
    name_of = pd.Series(ent_ids, index=ent_ids, dtype="string")
    if dataset.entities is not None and len(dataset.entities):
        ents = dataset.entities.drop_duplicates("entity_id").set_index("entity_id")
        common = ent_ids.intersection(ents.index)
        type_of.loc[common] = ents.loc[common, "type"].astype("string").to_numpy()
        if "name" in ents.columns:
            names = ents.loc[common, "name"].astype("string")
            name_of.loc[common] = names.fillna(
                pd.Series(common, index=common, dtype="string")
            ).to_numpy()
    if dataset.item_entities is not None and len(dataset.item_entities):
        link = dataset.item_entities.drop_duplicates("entity_id").set_index("entity_id")["item_id"]
        common = ent_ids.intersection(link.index)
        node_of.loc[common] = ("item:" + link.loc[common].astype("string")).to_numpy()
        type_of.loc[common] = "item"
    unlinked = node_of.isna()
    prefix = type_of[unlinked] + ":"
    raw = pd.Series(
        ent_ids[unlinked.to_numpy()], index=ent_ids[unlinked.to_numpy()], dtype="string"
    )
    # RecBole entity ids already carry their type ("brand:Conair"): do not prefix twice
    already = np.asarray(
        [r.startswith(p) for r, p in zip(raw.to_numpy(), prefix.to_numpy())], dtype=bool
    )
    node_of.loc[unlinked] = np.where(already, raw, prefix + raw)
    # a name from the entity table wins; otherwise the id without its type prefix
    named = (name_of[unlinked] != raw).to_numpy()
    stripped = np.where(already & ~named, raw.str.split(":", n=1).str[1], name_of[unlinked])
    name_of.loc[unlinked] = stripped
    nodes = pd.DataFrame(
        {"node_id": node_of.to_numpy(), "type": type_of.to_numpy(), "name": name_of.to_numpy()}
    )
    edges = _edges(
        node_of.reindex(kg["head"].astype("string")).to_numpy(),
        kg["relation"].astype("string"),
        node_of.reindex(kg["tail"].astype("string")).to_numpy(),
        "dataset",
    )
    return nodes[nodes["type"] != "item"], edges
