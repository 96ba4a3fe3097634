"""Exports of a :class:`~kgwb.kg.model.KnowledgeGraph` to other tools' formats.

Files (dispatched by name through :func:`export`: ``neo4j`` | ``rdf`` | ``graphml`` | ``recbole``):

- :func:`to_neo4j` — ``nodes.csv`` / ``edges.csv`` with ``neo4j-admin database import`` headers
  (``id:ID``, ``:LABEL``, ``:START_ID``, ``:END_ID``, ``:TYPE``, typed ``confidence:double``,
  ``start:long``, ``end:long``), RFC-4180 quoted, plus ``import.cypher``, a ``LOAD CSV`` script
  for a running server.  Every node has the label ``Node`` and a label from its type (``Item``,
  ``Brand`` ...); the relationship type is the relation upper-cased (``has_brand`` ->
  ``HAS_BRAND``) and the exact relation is kept in the ``relation`` property.
- :func:`to_rdf` — RDF through rdflib (Turtle by default).  IRIs under ``base`` (default
  :data:`DEFAULT_BASE`): nodes ``<base>node/<node_id percent-encoded>``, relations
  ``<base>relation/<relation>``, node types as classes ``<base>type/<type>``, and the properties
  below under ``<base>vocab#``.  A node carries ``rdf:type``, ``rdfs:label`` (its name) and
  ``kgv:nodeId`` (the exact id).  Each distinct triple is asserted directly, and each KG edge row
  is also described by a standard RDF reification (no RDF-star needed)::

      <base>edge/17  a rdf:Statement ;
          rdf:subject <head> ; rdf:predicate <relation> ; rdf:object <tail> ;
          kgv:source "extracted" ; kgv:confidence 0.83 ;           # always
          kgv:itemId, kgv:field, kgv:start, kgv:end, kgv:text, kgv:extractor   # when set

  so a triple asserted by two sources has two statements.  ``provenance=False`` writes only the
  direct triples (rdflib keeps the graph in memory: for million-edge graphs prefer that, or Neo4j).
- :func:`to_graphml` — GraphML through networkx (:func:`to_networkx`; null attributes omitted).
- :func:`to_recbole` — RecBole atomic files ``NAME.kg`` (``head_id:token relation_id:token
  tail_id:token``, the deduplicated triples, interaction edges left out since RecBole reads those
  from ``NAME.inter``) and ``NAME.link`` (``item_id:token entity_id:token``: the item's raw id,
  the node id without ``item:``), tab-separated, for RecBole's knowledge-aware models (KGAT, KGCN,
  CKE ...).

In memory: :func:`to_networkx` (MultiDiGraph, whole graph or the k-hop neighbourhood of some
nodes), :func:`to_pyg_hetero` (PyTorch Geometric ``HeteroData``) and :func:`to_pykeen` (a PyKEEN
``TriplesFactory``).  Heavy libraries are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from kgwb.atomic import atomic_file, write_text
from kgwb.errors import DataError, UnknownNameError
from kgwb.kg.model import KnowledgeGraph

DEFAULT_BASE = "http://kgwb.example.org/"
#: Sources whose edges go to RecBole's .kg file (interactions belong in .inter).
RECBOLE_KG_SOURCES = ("catalog", "extracted", "dataset")
RDF_FORMATS = ("turtle", "nt", "ntriples", "n3", "xml", "pretty-xml", "trig", "nquads", "json-ld")

_PROVENANCE_TO_RDF = {
    "item_id": "itemId",
    "field": "field",
    "start": "start",
    "end": "end",
    "text": "text",
    "extractor": "extractor",
}


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def _native(value: Any) -> Any:
    """numpy / pandas scalars as plain Python values (GraphML and RDF writers want those)."""
    return value.item() if hasattr(value, "item") else value


def _edge_records(edges: pd.DataFrame) -> list[dict[str, Any]]:
    """Edge rows as dicts without their null entries."""
    return [
        {k: _native(v) for k, v in row.items() if _present(v)}
        for row in edges.astype(object).to_dict("records")
    ]


# ------------------------------------------------------------------------------ Neo4j
def neo4j_label(node_type: str) -> str:
    """A Neo4j label for a node type: ``item`` -> ``Item``, ``attr value`` -> ``AttrValue``."""
    parts = re.findall(r"[A-Za-z0-9]+", node_type)
    label = "".join(p[:1].upper() + p[1:] for p in parts)
    return label if label and not label[0].isdigit() else f"T{label}"


def neo4j_rel_type(relation: str) -> str:
    """A Neo4j relationship type for a relation: ``has_brand`` -> ``HAS_BRAND``."""
    rel = re.sub(r"[^A-Za-z0-9]+", "_", relation).strip("_").upper()
    return rel if rel and not rel[0].isdigit() else f"R_{rel}"


def cypher_string(text: str) -> str:
    """A single-quoted Cypher string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cypher_identifier(name: str) -> str:
    """A backtick-quoted Cypher identifier (label, type, property)."""
    return "`" + name.replace("`", "``") + "`"


NEO4J_NODE_HEADER = ("id:ID", ":LABEL", "type", "name")
NEO4J_EDGE_HEADER = (
    ":START_ID",
    ":END_ID",
    ":TYPE",
    "relation",
    "source",
    "confidence:double",
    "item_id",
    "field",
    "start:long",
    "end:long",
    "text",
    "extractor",
)


def to_neo4j(kg: KnowledgeGraph, out_dir: str | Path, *, batch_size: int = 10_000) -> list[Path]:
    """Write ``nodes.csv``, ``edges.csv`` and ``import.cypher`` into ``out_dir``.

    Offline: ``neo4j-admin database import full --nodes=nodes.csv --relationships=edges.csv
    --multiline-fields=true neo4j`` (names may contain newlines).  Running server: copy the CSVs
    into its ``import/`` folder and run ``cypher-shell -f import.cypher``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nodes = kg.nodes
    labels = {t: neo4j_label(t) for t in nodes["type"].dropna().unique()}
    rel_types = {r: neo4j_rel_type(r) for r in kg.edges["relation"].dropna().unique()}

    def cell(value: Any) -> Any:
        return _native(value) if _present(value) else None

    nodes_csv = out / "nodes.csv"
    with atomic_file(nodes_csv) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(NEO4J_NODE_HEADER)
        for nid, ntype, name in nodes[["node_id", "type", "name"]].itertuples(index=False):
            label = f"Node;{labels[ntype]}" if _present(ntype) else "Node"
            w.writerow((nid, label, cell(ntype), cell(name)))

    edges_csv = out / "edges.csv"
    cols = ["head", "tail", "relation", "relation", "source", "confidence"]
    cols += ["item_id", "field", "start", "end", "text", "extractor"]
    with atomic_file(edges_csv) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(NEO4J_EDGE_HEADER)
        for row in kg.edges[cols].astype(object).itertuples(index=False):
            values = [cell(v) for v in row]
            values[2] = rel_types[values[2]]
            w.writerow(values)

    script = out / "import.cypher"
    write_text(script, _neo4j_script(labels, rel_types, batch_size))
    return [nodes_csv, edges_csv, script]


def _neo4j_script(labels: dict[str, str], rel_types: dict[str, str], batch_size: int) -> str:
    q = cypher_identifier
    lines = [
        "// kgwb knowledge graph: copy nodes.csv and edges.csv into the Neo4j import/ folder, then",
        "//   cypher-shell -f import.cypher",
        "// Values come from the CSV rows; the labels, types and filters below are quoted literals.",
        "CREATE CONSTRAINT kgwb_node_id IF NOT EXISTS FOR (n:Node) REQUIRE n.id IS UNIQUE;",
        "",
    ]
    for node_type in sorted(labels):
        lines += [
            "LOAD CSV WITH HEADERS FROM 'file:///nodes.csv' AS row",
            f"WITH row WHERE row.type = {cypher_string(node_type)}",
            "CALL { WITH row",
            f"  CREATE (n:Node:{q(labels[node_type])}"
            f" {{id: row.{q('id:ID')}, type: row.type, name: row.name}})",
            f"}} IN TRANSACTIONS OF {int(batch_size)} ROWS;",
            "",
        ]
    for rel_type in sorted(set(rel_types.values())):
        lines += [
            "LOAD CSV WITH HEADERS FROM 'file:///edges.csv' AS row",
            f"WITH row WHERE row.{q(':TYPE')} = {cypher_string(rel_type)}",
            "CALL { WITH row",
            f"  MATCH (h:Node {{id: row.{q(':START_ID')}}})",
            f"  MATCH (t:Node {{id: row.{q(':END_ID')}}})",
            f"  CREATE (h)-[:{q(rel_type)} {{relation: row.relation, source: row.source,",
            f"    confidence: toFloat(row.{q('confidence:double')}), item_id: row.item_id,",
            f"    field: row.field, start: toInteger(row.{q('start:long')}),",
            f"    end: toInteger(row.{q('end:long')}), text: row.text, extractor: row.extractor}}]->(t)",
            f"}} IN TRANSACTIONS OF {int(batch_size)} ROWS;",
            "",
        ]
    return "\n".join(lines)


# -------------------------------------------------------------------------------- RDF
def node_iri(node_id: str, base: str = DEFAULT_BASE) -> str:
    """The IRI of a node: its id percent-encoded (``/``, spaces, quotes ...) under ``base``."""
    return f"{base}node/{quote(node_id, safe=':')}"


def to_rdf(
    kg: KnowledgeGraph,
    path: str | Path,
    format: str = "turtle",
    *,
    base: str = DEFAULT_BASE,
    provenance: bool = True,
) -> Path:
    """Serialise ``kg`` as RDF (see the module docstring for the vocabulary) to ``path``."""
    if format not in RDF_FORMATS:
        raise UnknownNameError("RDF format", format, list(RDF_FORMATS))
    graph = to_rdflib(kg, base=base, provenance=provenance)
    out = Path(path)
    with atomic_file(out) as tmp:
        graph.serialize(destination=str(tmp), format=format, encoding="utf-8")
    return out


def to_rdflib(kg: KnowledgeGraph, *, base: str = DEFAULT_BASE, provenance: bool = True) -> Any:
    """``kg`` as an ``rdflib.Graph`` (what :func:`to_rdf` serialises)."""
    from rdflib import RDF, RDFS, XSD, Graph, Literal, Namespace, URIRef

    node_ns, rel_ns = Namespace(f"{base}node/"), Namespace(f"{base}relation/")
    type_ns, edge_ns = Namespace(f"{base}type/"), Namespace(f"{base}edge/")
    vocab = Namespace(f"{base}vocab#")
    g = Graph()
    for prefix, ns in (("kgn", node_ns), ("kgr", rel_ns), ("kgt", type_ns)):
        g.bind(prefix, ns)
    g.bind("kge", edge_ns)
    g.bind("kgv", vocab)

    def node(nid: str) -> URIRef:
        return URIRef(node_iri(nid, base))

    def rel(relation: str) -> URIRef:
        return rel_ns[quote(relation, safe="")]

    for nid, ntype, name in kg.nodes[["node_id", "type", "name"]].itertuples(index=False):
        s = node(nid)
        g.add((s, RDF.type, type_ns[quote(ntype, safe="")]))
        g.add((s, vocab.nodeId, Literal(nid)))
        if _present(name):
            g.add((s, RDFS.label, Literal(name)))
    for relation in kg.edges["relation"].dropna().unique():
        g.add((rel(relation), RDFS.label, Literal(relation)))
    for h, r, t in kg.triples().itertuples(index=False):
        g.add((node(h), rel(r), node(t)))
    if provenance:
        for i, record in enumerate(_edge_records(kg.edges)):
            st = edge_ns[str(i)]
            g.add((st, RDF.type, RDF.Statement))
            g.add((st, RDF.subject, node(record["head"])))
            g.add((st, RDF.predicate, rel(record["relation"])))
            g.add((st, RDF.object, node(record["tail"])))
            g.add((st, vocab.source, Literal(record["source"])))
            g.add((st, vocab.confidence, Literal(float(record["confidence"]), datatype=XSD.double)))
            for col, prop in _PROVENANCE_TO_RDF.items():
                if col in record:
                    g.add((st, vocab[prop], Literal(record[col])))
    return g


# -------------------------------------------------------------------------- networkx
def _k_hop_nodes(kg: KnowledgeGraph, seeds: Iterable[str], hops: int) -> set[str]:
    seeds = list(seeds)
    known = set(kg.nodes["node_id"])
    missing = [s for s in seeds if s not in known]
    if missing:
        raise DataError(
            f"node {missing[0]!r} is not in the knowledge graph"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            expected="node ids like 'item:B00X'",
        )
    reached = set(seeds)
    frontier = set(seeds)
    heads, tails = kg.edges["head"], kg.edges["tail"]
    for _ in range(max(int(hops), 0)):
        out_mask, in_mask = heads.isin(frontier), tails.isin(frontier)
        found = set(tails[out_mask]) | set(heads[in_mask])
        frontier = found - reached
        if not frontier:
            break
        reached |= frontier
    return reached


def to_networkx(kg: KnowledgeGraph, nodes: Iterable[str] | None = None, hops: int = 0) -> Any:
    """``kg`` as a ``networkx.MultiDiGraph``: the whole graph, or, given ``nodes``, the subgraph
    induced by everything within ``hops`` edges of them (edges followed in either direction).

    Node attributes: type, name.  Edge attributes: relation, source, confidence and the
    provenance columns that are set.  Parallel edges (one triple from two sources) are kept.
    """
    import networkx as nx

    node_table, edge_table = kg.nodes, kg.edges
    if nodes is not None:
        keep = _k_hop_nodes(kg, [nodes] if isinstance(nodes, str) else nodes, hops)
        node_table = node_table[node_table["node_id"].isin(keep)]
        edge_table = edge_table[edge_table["head"].isin(keep) & edge_table["tail"].isin(keep)]
    g = nx.MultiDiGraph(name=str(kg.meta.get("name", "kgwb")))
    for nid, ntype, name in node_table[["node_id", "type", "name"]].itertuples(index=False):
        attrs = {"type": ntype}
        if _present(name):
            attrs["name"] = name
        g.add_node(nid, **attrs)
    for record in _edge_records(edge_table):
        head, tail = record.pop("head"), record.pop("tail")
        g.add_edge(head, tail, **record)
    return g


def to_graphml(kg: KnowledgeGraph, path: str | Path) -> Path:
    """Write ``kg`` as GraphML (via :func:`to_networkx`)."""
    import networkx as nx

    out = Path(path)
    with atomic_file(out) as tmp, open(tmp, "wb") as f:
        if out.suffix == ".gz":  # what networkx does for a .gz path
            with gzip.GzipFile(fileobj=f, mode="wb") as zipped:
                nx.write_graphml(to_networkx(kg), zipped)
        else:
            nx.write_graphml(to_networkx(kg), f)
    return out


# ------------------------------------------------------------------------ PyG, PyKEEN
def to_pyg_hetero(
    kg: KnowledgeGraph, *, sources: tuple[str, ...] | None = None
) -> tuple[Any, dict[str, pd.Index]]:
    """``kg`` as a PyTorch Geometric ``HeteroData`` plus the node mappings.

    Node types are the KG's node types (``data[type].num_nodes``); edge types are
    ``(head type, relation, tail type)`` with ``edge_index`` (int64, local indices) and
    ``edge_attr`` (float32, shape ``[E, 1]``: the confidence).  Every KG edge row (optionally only
    from ``sources``) is an edge, so parallel edges are kept.  ``mappings[type]`` is a
    ``pandas.Index`` of node ids: ``mappings["item"][3]`` is the id of item 3 and
    ``mappings["item"].get_loc("item:B00X")`` its index.
    """
    import numpy as np
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    mappings: dict[str, pd.Index] = {}
    for ntype, group in kg.nodes.groupby("type", sort=True, observed=True):
        mappings[str(ntype)] = pd.Index(group["node_id"].to_numpy(dtype=object), name=str(ntype))
        data[str(ntype)].num_nodes = len(group)

    node_type = pd.Series(kg.nodes["type"].to_numpy(), index=kg.nodes["node_id"].to_numpy())
    edges = kg.edges if sources is None else kg.edges[kg.edges["source"].isin(sources)]
    head_type = edges["head"].map(node_type)
    tail_type = edges["tail"].map(node_type)
    for end, types in (("head", head_type), ("tail", tail_type)):
        if types.isna().any():
            i = int(types.isna().to_numpy().nonzero()[0][0])
            raise DataError(
                f"edge {end} {edges[end].iloc[i]!r} is not a node",
                line=i + 1,
                row_kind="edge row",
                column=end,
            )
    keys = pd.DataFrame({"h": head_type, "r": edges["relation"], "t": tail_type})
    for (htype, relation, ttype), idx in keys.groupby(["h", "r", "t"], sort=True).groups.items():
        part = edges.loc[idx]
        src = mappings[htype].get_indexer(part["head"].to_numpy(dtype=object))
        dst = mappings[ttype].get_indexer(part["tail"].to_numpy(dtype=object))
        store = data[str(htype), str(relation), str(ttype)]
        store.edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
        conf = part["confidence"].to_numpy(dtype=np.float32).reshape(-1, 1)
        store.edge_attr = torch.from_numpy(conf)
    return data, mappings


def to_pykeen(
    kg: KnowledgeGraph,
    *,
    sources: tuple[str, ...] | None = None,
    create_inverse_triples: bool = False,
) -> Any:
    """A PyKEEN ``TriplesFactory`` from the deduplicated labeled triples (node ids as entity
    labels, relations as relation labels); nodes on no triple are not entities."""
    from pykeen.triples import TriplesFactory

    triples = kg.triples(sources=sources)
    if triples.empty:
        raise DataError("no triples to export" + (f" from sources {sources}" if sources else ""))
    return TriplesFactory.from_labeled_triples(
        triples.to_numpy(dtype=str), create_inverse_triples=create_inverse_triples
    )


# ---------------------------------------------------------------------------- RecBole
# RecBole splits lines on tabs and reads them with pandas, which would take a leading quote as
# the start of a quoted field.
_BAD_TOKEN = r'[\t\r\n]|^"'


def to_recbole(
    kg: KnowledgeGraph,
    out_dir: str | Path,
    name: str,
    *,
    sources: tuple[str, ...] | None = RECBOLE_KG_SOURCES,
    item_type: str = "item",
) -> list[Path]:
    """Write ``out_dir/NAME.kg`` and ``out_dir/NAME.link`` (see the module docstring).

    RecBole expects them in ``data_path/NAME/`` beside ``NAME.inter``; ids containing a tab or
    line break cannot be written as tokens and raise :class:`~kgwb.errors.DataError`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    triples = kg.triples(sources=sources)
    items = kg.nodes.loc[kg.nodes["type"] == item_type, "node_id"]
    prefix = f"{item_type}:"
    link = pd.DataFrame(
        {
            "item_id:token": items.str.removeprefix(prefix).to_numpy(dtype=object),
            "entity_id:token": items.to_numpy(dtype=object),
        }
    )
    kg_table = triples.set_axis(["head_id:token", "relation_id:token", "tail_id:token"], axis=1)
    paths = []
    for suffix, table in ((".kg", kg_table), (".link", link)):
        path = out / f"{name}{suffix}"
        for col in table.columns:
            bad = table[col].astype("string").str.contains(_BAD_TOKEN, regex=True).fillna(False)
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise DataError(
                    f"{table[col].iloc[i]!r} contains a tab or line break, or starts with a quote,"
                    " and cannot be a RecBole token",
                    file=path,
                    line=i + 2,
                    column=col,
                )
        with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as f:
            f.write("\t".join(table.columns) + "\n")
            for row in table.itertuples(index=False):
                f.write("\t".join(row) + "\n")
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- dispatch
def _export_rdf(kg: KnowledgeGraph, out: Path, **options: Any) -> list[Path]:
    return [to_rdf(kg, out, **options)]


def _export_graphml(kg: KnowledgeGraph, out: Path, **options: Any) -> list[Path]:
    return [to_graphml(kg, out, **options)]


def _export_recbole(kg: KnowledgeGraph, out: Path, **options: Any) -> list[Path]:
    options.setdefault("name", out.name)
    return to_recbole(kg, out, **options)


#: format name -> function(kg, out, **options) returning the files written.
EXPORTERS: dict[str, Callable[..., list[Path]]] = {
    "neo4j": to_neo4j,
    "rdf": _export_rdf,
    "graphml": _export_graphml,
    "recbole": _export_recbole,
}


def export(kg: KnowledgeGraph, format: str, out: str | Path, **options: Any) -> list[Path]:
    """Export ``kg`` in ``format`` (one of :data:`EXPORTERS`) to ``out`` and return the files.

    ``out`` is a folder for ``neo4j`` and ``recbole`` (whose dataset name defaults to the
    folder's name, as RecBole expects) and a file for ``rdf`` and ``graphml``.
    """
    if format not in EXPORTERS:
        raise UnknownNameError("export format", format, list(EXPORTERS))
    return EXPORTERS[format](kg, Path(out), **options)


__all__ = [
    "DEFAULT_BASE",
    "EXPORTERS",
    "RECBOLE_KG_SOURCES",
    "export",
    "neo4j_label",
    "neo4j_rel_type",
    "node_iri",
    "to_graphml",
    "to_neo4j",
    "to_networkx",
    "to_pyg_hetero",
    "to_pykeen",
    "to_rdf",
    "to_rdflib",
    "to_recbole",
]
