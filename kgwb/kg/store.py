"""The embedded graph store: a :class:`~kgwb.kg.model.KnowledgeGraph` loaded into LadybugDB.

LadybugDB (``ladybug``, the maintained successor of Kùzu) is an embedded, on-disk property-graph
database queried with Cypher.  :meth:`GraphStore.build` bulk-loads a KG with ``COPY ... FROM``
Parquet files (1.1M triples in about ten seconds on two CPU cores), :meth:`GraphStore.open` reopens
it, :meth:`GraphStore.query` runs any Cypher and returns a DataFrame.

Schema (what your Cypher is written against)::

    NODE TABLE Node(id STRING PRIMARY KEY,   -- the KG node_id, e.g. "item:B00X", "brand:acme"
                    type STRING,             -- item | brand | category | value | user | ...
                    name STRING)
    REL TABLE  Edge(FROM Node TO Node,
                    relation STRING,         -- the KG relation, e.g. "has_brand", "color"
                    source STRING,           -- catalog | interaction | extracted | dataset
                    confidence DOUBLE,       -- in [0, 1]
                    item_id STRING,          -- provenance of extracted edges (NULL otherwise):
                    field STRING,            --   the item and text field it was read from,
                    span_start INT64,        --   the character span [span_start, span_end)
                    span_end INT64,
                    text STRING,             --   the surface text of the span
                    extractor STRING)        --   name@version of the extractor

One node table and one relationship table, with the KG's type and relation as properties, so a
query reads ``MATCH (i:Node {type: 'item'})-[e:Edge {relation: 'has_brand'}]->(b) RETURN ...``
whatever types the KG holds.  (Per-type tables would let the engine skip other types' edges, but
neighbour look-ups already start from the primary-key index and take about a millisecond.)  The
KG's provenance columns ``start`` / ``end`` are stored as ``span_start`` / ``span_end`` because
``END`` is a Cypher keyword: ``e.end`` would not parse.  A KG edge row becomes one ``Edge``, so a
triple asserted by two sources is two parallel edges.

Values go into queries only as parameters (``$name`` in the Cypher, ``parameters={"name": ...}``),
never by formatting strings into the query text; every helper method here does so.  A query the
engine rejects (syntax error, unknown table or property), or one that names a ``$parameter`` it
was not given, raises :class:`QueryError`, which quotes the query.

On disk a store is a folder (by convention ``store/`` inside the saved KG's folder, see
:func:`default_store_path`) holding ``graph.lbug`` (the database) and ``store.json`` (schema
version, counts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from kgwb.atomic import clean_leftovers, swap_in, write_json
from kgwb.errors import ConfigError, KgwbError
from kgwb.kg.model import KnowledgeGraph

SCHEMA_VERSION = 1
DB_FILE = "graph.lbug"
META_FILE = "store.json"

NODE_TABLE = "Node"
EDGE_TABLE = "Edge"
#: Edge property -> KG edge column it is loaded from.
EDGE_PROPERTIES: dict[str, str] = {
    "relation": "relation",
    "source": "source",
    "confidence": "confidence",
    "item_id": "item_id",
    "field": "field",
    "span_start": "start",
    "span_end": "end",
    "text": "text",
    "extractor": "extractor",
}
SCHEMA_DDL = (
    f"CREATE NODE TABLE {NODE_TABLE}(id STRING PRIMARY KEY, type STRING, name STRING)",
    f"CREATE REL TABLE {EDGE_TABLE}(FROM {NODE_TABLE} TO {NODE_TABLE}, relation STRING,"
    " source STRING, confidence DOUBLE, item_id STRING, field STRING, span_start INT64,"
    " span_end INT64, text STRING, extractor STRING)",
)

Direction = Literal["out", "in", "both"]


class StoreError(KgwbError):
    """The store folder is missing, is not a store, already exists, or the store is closed."""


class QueryError(StoreError):
    """The engine rejected a query; ``str(err)`` gives the engine's message and the query."""

    def __init__(self, message: str, query: str, parameters: Mapping[str, Any] | None) -> None:
        self.reason = message
        self.query = query
        self.parameter_names = sorted(parameters or {})
        text = f"{message}\nquery: {query}"
        if self.parameter_names:
            text += f"\nparameters: {', '.join(self.parameter_names)}"
        super().__init__(text)


def default_store_path(kg_dir: str | Path) -> Path:
    """Where the store of the KG saved in ``kg_dir`` goes by convention: ``kg_dir/store``."""
    return Path(kg_dir) / "store"


def is_store(path: str | Path) -> bool:
    p = Path(path)
    return (p / META_FILE).is_file() and (p / DB_FILE).exists()


def _cypher_string(text: str) -> str:
    """A Cypher single-quoted string literal.  Only used for file paths in ``COPY FROM``, which
    the engine does not accept as parameters; every value goes in as a parameter."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# String literals, quoted names and comments, then a $parameter: the scanner below skips the first
# four so that a "$" inside 'text' is not taken for a parameter.
_CYPHER_TOKENS = re.compile(
    r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|//[^\n]*|/\*.*?\*/"""
    r"|\$([A-Za-z_][A-Za-z0-9_]*|[0-9]+)",
    re.DOTALL,
)


def query_parameters(cypher: str) -> list[str]:
    """The ``$name`` parameters ``cypher`` references, in order of first use (string literals,
    quoted names and comments are skipped)."""
    names: list[str] = []
    for match in _CYPHER_TOKENS.finditer(cypher):
        name = match.group(1)
        if name is not None and name not in names:
            names.append(name)
    return names


def _node_frame(kg: KnowledgeGraph) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": kg.nodes["node_id"].astype("string"),
            "type": kg.nodes["type"].astype("string"),
            "name": kg.nodes["name"].astype("string"),
        }
    )


def _edge_frame(kg: KnowledgeGraph) -> pd.DataFrame:
    e = kg.edges
    # COPY maps Parquet columns by position: FROM, TO, then the properties in DDL order.
    cols = {"from": e["head"], "to": e["tail"]}
    cols.update({prop: e[col] for prop, col in EDGE_PROPERTIES.items()})
    return pd.DataFrame(cols).reset_index(drop=True)


class GraphStore:
    """A KG in an embedded LadybugDB database; see the module docstring for the schema.

    Use as a context manager (``with GraphStore.open(path) as store: ...``) or call
    :meth:`close`; an open read-write store locks its folder against other processes.
    """

    def __init__(self, path: Path, database: Any, connection: Any, *, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._db = database
        self._conn = connection

    # ------------------------------------------------------------------ life cycle
    @classmethod
    def build(
        cls,
        kg: KnowledgeGraph,
        path: str | Path,
        *,
        overwrite: bool = False,
        validate: bool = True,
    ) -> GraphStore:
        """Bulk-load ``kg`` into a new store at ``path`` and return it open (read-write).

        An existing store at ``path`` is replaced only with ``overwrite=True``; a folder that holds
        anything but a store is never replaced.  The store is built in a sibling temporary folder
        and moved into place at the end, so a failed build leaves ``path`` as it was.
        ``validate`` runs :meth:`KnowledgeGraph.validate` first, so a dangling edge or duplicate
        node id is reported by row rather than as an engine error halfway through the load.
        """
        import ladybug

        target = Path(path)
        if target.exists():
            if target.is_file() or (any(target.iterdir()) and not is_store(target)):
                raise StoreError(
                    f"{target}: exists and is not a kgwb graph store; refusing to replace it"
                )
            if is_store(target) and not overwrite:
                raise StoreError(
                    f"{target}: a graph store already exists here; pass overwrite=True to rebuild"
                    " it, or GraphStore.open() to use it"
                )
        if validate:
            kg.validate()
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(target)  # what a killed build left beside it
        work = target.with_name(f".{target.name}.building-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            t0 = time.perf_counter()
            staging = work / "staging"
            staging.mkdir()
            nodes_file, edges_file = staging / "nodes.parquet", staging / "edges.parquet"
            _node_frame(kg).to_parquet(nodes_file, index=False)
            _edge_frame(kg).to_parquet(edges_file, index=False)
            db = ladybug.Database(str(work / DB_FILE))
            conn = ladybug.Connection(db)
            try:
                for ddl in SCHEMA_DDL:
                    conn.execute(ddl)
                conn.execute(f"COPY {NODE_TABLE} FROM {_cypher_string(str(nodes_file.resolve()))}")
                conn.execute(f"COPY {EDGE_TABLE} FROM {_cypher_string(str(edges_file.resolve()))}")
            except RuntimeError as err:
                raise StoreError(f"{target}: loading the knowledge graph failed: {err}") from err
            finally:
                conn.close()
                db.close()
            shutil.rmtree(staging)
            meta = {
                "schema_version": SCHEMA_VERSION,
                "nodes": len(kg.nodes),
                "edges": len(kg.edges),
                "build_seconds": round(time.perf_counter() - t0, 3),
                "ladybug_version": getattr(ladybug, "__version__", "unknown"),
                "kg_meta": kg.meta,
            }
            write_json(work / META_FILE, meta)
            swap_in(work, target)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return cls.open(target, read_only=False)

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = True) -> GraphStore:
        """Open the store at ``path``.  Read-only by default, so several processes (two notebooks)
        can query the same store at once; ``read_only=False`` allows Cypher that writes."""
        import ladybug

        p = Path(path)
        if not p.exists():
            raise StoreError(f"{p}: no graph store here (build one with GraphStore.build)")
        if not is_store(p):
            raise StoreError(f"{p}: not a kgwb graph store (no {META_FILE} and {DB_FILE})")
        meta = json.loads((p / META_FILE).read_text())
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{p}: store schema version {meta.get('schema_version')!r}, this kgwb reads"
                f" {SCHEMA_VERSION}; rebuild it with GraphStore.build(..., overwrite=True)"
            )
        try:
            db = ladybug.Database(str(p / DB_FILE), read_only=read_only)
        except RuntimeError as err:
            raise StoreError(f"{p}: cannot open the graph store: {err}") from err
        return cls(p, db, ladybug.Connection(db), read_only=read_only)

    def close(self) -> None:
        """Close the connection and the database (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._db.close()
            self._conn = self._db = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("read-only" if self.read_only else "read-write")
        return f"GraphStore({str(self.path)!r}, {state})"

    @property
    def meta(self) -> dict[str, Any]:
        """What ``store.json`` records: schema version, node and edge counts, build time."""
        return json.loads((self.path / META_FILE).read_text())

    # ---------------------------------------------------------------------- queries
    def query(self, cypher: str, parameters: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run ``cypher`` with ``parameters`` (referenced as ``$name``) and return the rows.

        Put every value in ``parameters``: the engine binds them as values, so text such as
        ``"'}) DETACH DELETE n //"`` stays text.  With several ``;``-separated statements the
        rows of the last are returned.
        """
        if self._conn is None:
            raise StoreError(f"{self.path}: the graph store is closed")
        # The engine binds a missing parameter to NULL when no parameters are given at all (the
        # query then quietly matches nothing), so check the names here.
        missing = [name for name in query_parameters(cypher) if name not in (parameters or {})]
        if missing:
            raise QueryError(
                f"missing query parameter(s): {', '.join('$' + n for n in missing)}",
                cypher,
                parameters,
            )
        try:
            result = self._conn.execute(cypher, dict(parameters or {}))
        except RuntimeError as err:
            raise QueryError(str(err).strip(), cypher, parameters) from err
        if isinstance(result, list):
            result = result[-1]
        return result.get_as_df()

    def scalar(self, cypher: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """The single value a query returns (e.g. a count)."""
        df = self.query(cypher, parameters)
        if df.shape != (1, 1):
            raise QueryError(f"expected one value, got {df.shape[0]}x{df.shape[1]}", cypher, None)
        value = df.iat[0, 0]
        return value.item() if hasattr(value, "item") else value

    def count_nodes(self, node_type: str | None = None) -> int:
        if node_type is None:
            return int(self.scalar(f"MATCH (n:{NODE_TABLE}) RETURN count(n)"))
        return int(
            self.scalar(
                f"MATCH (n:{NODE_TABLE}) WHERE n.type = $type RETURN count(n)", {"type": node_type}
            )
        )

    def count_edges(self, relation: str | None = None) -> int:
        if relation is None:
            return int(self.scalar(f"MATCH ()-[e:{EDGE_TABLE}]->() RETURN count(e)"))
        return int(
            self.scalar(
                f"MATCH ()-[e:{EDGE_TABLE}]->() WHERE e.relation = $relation RETURN count(e)",
                {"relation": relation},
            )
        )

    def node(self, node_id: str) -> dict[str, Any] | None:
        """The node's ``{"node_id", "type", "name"}``, or None when there is no such node."""
        df = self.query(
            f"MATCH (n:{NODE_TABLE}) WHERE n.id = $id RETURN n.id AS node_id, n.type AS type,"
            " n.name AS name",
            {"id": node_id},
        )
        if df.empty:
            return None
        return {k: (None if pd.isna(v) else v) for k, v in df.iloc[0].items()}

    def find_nodes(
        self, text: str, *, node_type: str | None = None, limit: int = 50
    ) -> pd.DataFrame:
        """Nodes whose name or id contains ``text`` (case-insensitive), optionally of one type."""
        where = "(lower(n.name) CONTAINS $text OR lower(n.id) CONTAINS $text)"
        params: dict[str, Any] = {"text": text.lower(), "limit": int(limit)}
        if node_type is not None:
            where += " AND n.type = $type"
            params["type"] = node_type
        return self.query(
            f"MATCH (n:{NODE_TABLE}) WHERE {where} RETURN n.id AS node_id, n.type AS type,"
            " n.name AS name ORDER BY node_id LIMIT $limit",
            params,
        )

    def neighbors(
        self,
        node_id: str,
        relation: str | None = None,
        *,
        direction: Direction = "out",
        min_confidence: float = 0.0,
        limit: int = 100,
    ) -> pd.DataFrame:
        """Edges at ``node_id`` and the nodes at their other end, highest confidence first.

        Columns: node_id, type, name (the neighbour), relation, direction (``out``: ``node_id``
        is the head), source, confidence, and the provenance columns.
        """
        if direction not in ("out", "in", "both"):
            raise ConfigError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
        params: dict[str, Any] = {
            "id": node_id,
            "min_confidence": float(min_confidence),
            "limit": int(limit),
        }
        where = "e.confidence >= $min_confidence"
        if relation is not None:
            where += " AND e.relation = $relation"
            params["relation"] = relation
        # Two fixed patterns (the arrow is syntax, not a value); "both" runs the two.
        patterns = {
            "out": f"(a:{NODE_TABLE} {{id: $id}})-[e:{EDGE_TABLE}]->(b:{NODE_TABLE})",
            "in": f"(a:{NODE_TABLE} {{id: $id}})<-[e:{EDGE_TABLE}]-(b:{NODE_TABLE})",
        }
        returns = (
            "b.id AS node_id, b.type AS type, b.name AS name, e.relation AS relation,"
            " '{dir}' AS direction, e.source AS source, e.confidence AS confidence,"
            " e.item_id AS item_id, e.field AS field, e.span_start AS span_start,"
            " e.span_end AS span_end, e.text AS text, e.extractor AS extractor"
        )
        dirs = ["out", "in"] if direction == "both" else [direction]
        order = " ORDER BY confidence DESC, relation, node_id LIMIT $limit"
        frames = [
            self.query(
                f"MATCH {patterns[d]} WHERE {where} RETURN {returns.format(dir=d)}{order}", params
            )
            for d in dirs
        ]
        if len(frames) == 1:
            return _typed(frames[0])
        both = pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)
        both = both.sort_values(
            ["confidence", "relation", "node_id"], ascending=[False, True, True], kind="stable"
        )
        return _typed(both.head(int(limit)).reset_index(drop=True))

    def items_with(
        self,
        attribute_relation: str,
        value_node: str,
        *,
        min_confidence: float = 0.0,
        sources: Iterable[str] | None = None,
        item_type: str = "item",
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Items linked to ``value_node`` by ``attribute_relation`` (e.g. ``("color",
        "value:color=red")`` or ``("has_brand", "brand:acme")``).

        Columns: item_id (the node id), name, source, confidence, extractor; one row per edge,
        highest confidence first.
        """
        params: dict[str, Any] = {
            "relation": attribute_relation,
            "value": value_node,
            "item_type": item_type,
            "min_confidence": float(min_confidence),
        }
        where = "e.relation = $relation AND i.type = $item_type AND e.confidence >= $min_confidence"
        if sources is not None:
            where += " AND list_contains($sources, e.source)"
            params["sources"] = list(sources)
        cypher = (
            f"MATCH (i:{NODE_TABLE})-[e:{EDGE_TABLE}]->(v:{NODE_TABLE} {{id: $value}}) WHERE {where}"
            " RETURN i.id AS item_id, i.name AS name, e.source AS source,"
            " e.confidence AS confidence, e.extractor AS extractor"
            " ORDER BY confidence DESC, item_id"
        )
        if limit is not None:
            cypher += " LIMIT $limit"
            params["limit"] = int(limit)
        return self.query(cypher, params)

    def edges(
        self,
        head: str | None = None,
        relation: str | None = None,
        tail: str | None = None,
        *,
        limit: int = 1000,
    ) -> pd.DataFrame:
        """KG edge rows matching any of head / relation / tail (None = any), with provenance."""
        params: dict[str, Any] = {"limit": int(limit)}
        conditions = []
        for name, expr, value in (
            ("head", "h.id", head),
            ("relation", "e.relation", relation),
            ("tail", "t.id", tail),
        ):
            if value is not None:
                conditions.append(f"{expr} = ${name}")
                params[name] = value
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        cypher = (
            f"MATCH (h:{NODE_TABLE})-[e:{EDGE_TABLE}]->(t:{NODE_TABLE}){where}"
            " RETURN h.id AS head, e.relation AS relation, t.id AS tail, e.source AS source,"
            " e.confidence AS confidence, e.item_id AS item_id, e.field AS field,"
            " e.span_start AS span_start, e.span_end AS span_end, e.text AS text,"
            " e.extractor AS extractor ORDER BY head, relation, tail, source LIMIT $limit"
        )
        return _typed(self.query(cypher, params))

    def relation_counts(self) -> pd.DataFrame:
        """Edge counts per (relation, source), like :meth:`KnowledgeGraph.edge_types`."""
        return self.query(
            f"MATCH ()-[e:{EDGE_TABLE}]->() RETURN e.relation AS relation, e.source AS source,"
            " count(*) AS edges ORDER BY relation, source"
        )


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Span columns back to nullable integers (the engine's NULLs arrive as float NaN)."""
    for col in ("span_start", "span_end"):
        if col in df.columns:
            df[col] = df[col].astype("Int64")
    return df


__all__ = [
    "DB_FILE",
    "EDGE_PROPERTIES",
    "EDGE_TABLE",
    "META_FILE",
    "NODE_TABLE",
    "SCHEMA_DDL",
    "SCHEMA_VERSION",
    "GraphStore",
    "QueryError",
    "StoreError",
    "default_store_path",
    "is_store",
    "query_parameters",
]
