"""``kgwb viz ego``, ``kgwb search`` and ``kgwb recommend``: graph views, semantic product search
and explained recommendations from the command line (JSON on stdout)."""

from __future__ import annotations

import argparse
from pathlib import Path

from kgwb.errors import KgwbError

SEARCH_INDEX_DIR = "search_index"
RECOMMENDATIONS_FILE = "recommendations.parquet"
TITLES_FILE = "item_titles.parquet"


def register(sub: argparse._SubParsersAction) -> None:
    from kgwb.viz.graph import EgoConfig

    viz = sub.add_parser("viz", help="interactive graph views (self-contained HTML)")
    viz_sub = viz.add_subparsers(dest="viz_command", metavar="VIEW")
    viz_sub.required = True
    ego = viz_sub.add_parser("ego", help="the capped neighbourhood of one KG node as HTML")
    ego.add_argument("kg_dir", help="folder written by 'kgwb kg build' (or its kg/ folder)")
    ego.add_argument("node_id", help="node id, e.g. item:B00X or brand:acme")
    EgoConfig.add_arguments(ego)
    ego.add_argument("--out", required=True, help="HTML file to write")
    ego.set_defaults(func=_ego)

    s = sub.add_parser("search", help="semantic product search over a built KG's items")
    s.add_argument("kg_dir", help="folder written by 'kgwb kg build' (or its kg/ folder)")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=10, help="results (default 10)")
    s.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="KG filter, repeatable: brand=Acme, category=Shampoo, has_color=red (same key twice:"
        " either value)",
    )
    s.add_argument("--model", default=None, help="encoder (default: bundled MiniLM)")
    s.add_argument("--rebuild", action="store_true", help="re-embed the items even if cached")
    s.add_argument(
        "--index",
        default=None,
        metavar="DIR",
        help="folder to keep the search index in (default: one per KG under the cache folder, "
        "$KGWB_CACHE or data/cache; the KG folder itself is never written)",
    )
    s.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where a (re)build embeds the items: in this process, or on Ray Data actors "
        "(pip install 'kgwb[scale]'; same vectors)",
    )
    s.add_argument("--workers", type=int, default=None, help="Ray actors (--engine ray)")
    s.add_argument("--address", default=None, help="Ray cluster address (default: local Ray)")
    s.set_defaults(func=_search)

    r = sub.add_parser("recommend", help="top-k items for a user from a training run (JSON)")
    r.add_argument("--run", required=True, help="training run folder")
    r.add_argument("--user", required=True, help="user id")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--explain", action="store_true", help="attach KG paths to each item")
    r.add_argument("--kg", default=None, help="built KG folder for --explain (default: RUN/kg)")
    r.add_argument(
        "--history",
        nargs="+",
        default=None,
        metavar="ITEM",
        help="the user's items for --explain (default: from the KG's user node or the run)",
    )
    r.add_argument("--max-hops", type=int, default=3, help="longest explanation path")
    r.add_argument("--paths", type=int, default=3, help="explanations per item (default 3)")
    r.set_defaults(func=_recommend)


# ------------------------------------------------------------------------------- ego
def _ego(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json
    from kgwb.kg.cli import kg_folder
    from kgwb.kg.model import KnowledgeGraph
    from kgwb.viz.graph import EgoConfig, ego_graph, ego_title, graph_html

    config = EgoConfig.from_args(args)
    kg = KnowledgeGraph.load(kg_folder(args.kg_dir))
    g = ego_graph(kg, args.node_id, hops=config.hops, max_nodes=config.max_nodes)
    graph_html(g, title=ego_title(g), centre=args.node_id, path=args.out)
    print_json(
        {
            "out": str(args.out),
            "centre": args.node_id,
            "nodes": g.number_of_nodes(),
            "edges": g.number_of_edges(),
            "dropped": g.graph["dropped"],
        }
    )
    return 0


# ---------------------------------------------------------------------------- search
def parse_filters(pairs: list[str]) -> dict[str, str | list[str]]:
    """``["brand=Acme", "has_color=red", "has_color=blue"]`` → ``{"brand": "Acme",
    "has_color": ["red", "blue"]}``."""
    out: dict[str, list[str]] = {}
    for text in pairs:
        key, sep, value = text.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise KgwbError(f"--filter {text!r}: expected KEY=VALUE, e.g. brand=Acme")
        out.setdefault(key.strip(), []).append(value.strip())
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def default_index_dir(kg_dir: str | Path) -> Path:
    """Where the search index of the KG in ``kg_dir`` is cached: a folder under
    :func:`kgwb.paths.cache_dir` named after the KG's location and the state of its files, so
    a rebuilt KG gets a fresh index and the KG folder itself is never written."""
    import hashlib

    from kgwb.kg.cli import kg_folder
    from kgwb.paths import cache_dir

    folder = kg_folder(kg_dir).resolve()
    stamp = [str(folder)]
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        st = (folder / name).stat()
        stamp.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    digest = hashlib.sha1("\n".join(stamp).encode()).hexdigest()[:16]
    return cache_dir() / SEARCH_INDEX_DIR / f"{folder.parent.name}-{folder.name}-{digest}"


def load_or_build_index(
    kg_dir: str | Path,
    *,
    model: str | None = None,
    rebuild: bool = False,
    index_dir: str | Path | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
):
    """The search index of the KG in ``kg_dir``, built from its item nodes (names) and kept in
    ``index_dir`` (default :func:`default_index_dir`); rebuilt when absent, when ``rebuild`` or
    when it was built with another model; a build embeds on ``engine`` ("local" or "ray",
    :meth:`kgwb.search.SearchIndex.build`)."""
    import sys

    from kgwb.kg.cli import kg_folder
    from kgwb.kg.model import KnowledgeGraph
    from kgwb.search import SearchIndex, kg_items

    cache = Path(index_dir) if index_dir is not None else default_index_dir(kg_dir)
    if not rebuild and (cache / "index.json").is_file():
        index = SearchIndex.load(cache)
        if index.model == model:
            return index
    kg = KnowledgeGraph.load(kg_folder(kg_dir))
    items = kg_items(kg)
    print(f"kgwb: embedding {len(items)} item names into {cache}", file=sys.stderr)
    index = SearchIndex.build(
        items,
        text_columns=("title",),
        model=model,
        progress=True,
        engine=engine,
        address=address,
        workers=workers,
    )
    index.save(cache)
    return index


def check_filter_keys(store, filters) -> None:
    """Raise a :class:`KgwbError` naming the valid keys when a filter key names a relation the
    KG does not have (so an unknown key is never an empty answer without a word)."""
    from kgwb.search import FILTER_RELATIONS, filter_relation

    relations = set(
        store.query("MATCH (:Node)-[e:Edge]->(:Node) RETURN DISTINCT e.relation AS r")["r"]
    )
    unknown = [k for k in filters if filter_relation(k) not in relations]
    if unknown:
        aliases = [k for k, rel in FILTER_RELATIONS.items() if rel in relations]
        others = sorted(r for r in relations if r.startswith("has_"))
        raise KgwbError(
            f"--filter: unknown key(s) {', '.join(map(repr, unknown))}: the KG has no such "
            f"relation from its items (keys: {', '.join(aliases + others) or 'none'})"
        )


def filter_values_hint(store, key: str, limit: int = 8) -> list[str]:
    """A few values the KG has for filter ``key`` (most used first), for "nothing matched"."""
    from kgwb.search import filter_relation

    df = store.query(
        "MATCH (i:Node)-[e:Edge]->(v:Node) WHERE e.relation = $r AND i.type = 'item' "
        f"RETURN v.name AS name, count(*) AS n ORDER BY n DESC, name LIMIT {int(limit)}",
        {"r": filter_relation(key)},
    )
    return [str(x) for x in df["name"]]


def _index_options(args: argparse.Namespace) -> dict:
    return {
        "model": args.model,
        "rebuild": args.rebuild,
        "index_dir": args.index,
        "engine": args.engine,
        "address": args.address,
        "workers": args.workers,
    }


def _search(args: argparse.Namespace) -> int:
    import sys

    from kgwb.kg.cli import kg_folder
    from kgwb.kg.store import GraphStore, default_store_path

    filters = parse_filters(args.filter)
    if filters:
        with GraphStore.open(default_store_path(kg_folder(args.kg_dir))) as store:
            check_filter_keys(store, filters)
            index = load_or_build_index(args.kg_dir, **_index_options(args))
            res = index.search(args.query, k=args.k, filters=filters, store=store)
            if res.empty:
                from kgwb.search import allowed_items

                for key, value in filters.items():
                    if not allowed_items(store, {key: value}):
                        hint = ", ".join(filter_values_hint(store, key))
                        print(
                            f"kgwb search: no item matches {key}={value!r} (values in this KG "
                            f"include: {hint})",
                            file=sys.stderr,
                        )
                print(
                    "kgwb search: no item satisfies all the filters; nothing to rank",
                    file=sys.stderr,
                )
    else:
        index = load_or_build_index(args.kg_dir, **_index_options(args))
        res = index.search(args.query, k=args.k)
    print(res.to_json(orient="records", force_ascii=False, indent=2))
    return 0


# ------------------------------------------------------------------------- recommend
def recommendations_for(run_dir: str | Path, user: str, k: int):
    """(top-k DataFrame user_id/rank/item_id/score, the loaded recommender or None).

    Uses the run's saved recommender when :mod:`kgwb.train.recommend` can load one, else
    ``RUN/recommendations.parquet`` (columns user_id, item_id, score; rank optional)."""
    import pandas as pd

    run = Path(run_dir)
    if not run.is_dir():
        raise KgwbError(f"{run}: no such training run folder")
    loader = None
    try:
        from kgwb.train import recommend as rec_module

        loader = getattr(rec_module, "load_recommender", None) or getattr(
            getattr(rec_module, "RecommenderResult", None), "load", None
        )
    except ModuleNotFoundError:  # torch missing: the parquet route still works
        loader = None
    table = run / RECOMMENDATIONS_FILE
    if loader is not None and not table.is_file():
        try:
            result = loader(run)
        except (KgwbError, FileNotFoundError) as err:
            raise KgwbError(
                f"{run}: cannot load its recommender ({err}) and there is no {RECOMMENDATIONS_FILE}"
            ) from err
        return result.recommend([user], k), result
    if not table.is_file():
        raise KgwbError(
            f"{run}: no saved recommender this kgwb can load and no {RECOMMENDATIONS_FILE}"
            " (expected a folder written by 'kgwb train')"
        )
    df = pd.read_parquet(table)
    missing = {"user_id", "item_id", "score"} - set(df.columns)
    if missing:
        from kgwb.errors import DataError

        raise DataError(
            f"lacks columns {sorted(missing)}", file=table, expected="user_id, item_id, score"
        )
    mine = df[df["user_id"].astype(str) == str(user)]
    if mine.empty:
        raise KgwbError(f"{table}: no recommendations for user {user!r}")
    mine = mine.sort_values(["score", "item_id"], ascending=[False, True], kind="stable").head(k)
    mine = mine.assign(rank=range(1, len(mine) + 1))
    return mine[["user_id", "rank", "item_id", "score"]].reset_index(drop=True), None


def user_history(kg, user: str, recommender=None) -> list[str]:
    """Items the user interacted with: from the KG's ``user:ID`` node, else the recommender's
    training split."""
    node = f"user:{user}"
    e = kg.edges
    mine = e[(e["head"] == node) & (e["relation"] == "interacted")]["tail"]
    if len(mine):
        return sorted(str(x) for x in mine)
    data = getattr(recommender, "data", None)
    if data is not None:
        import numpy as np

        u = data.user_index([user])[0]
        train = np.asarray(data.split("train"))
        return sorted(str(data.item_ids[i]) for i in train[train[:, 0] == u][:, 1])
    return []


def _run_history(run_dir: str | Path, kg, user: str, recommender=None) -> list[str]:
    """The user's training items: the KG's user node, else the run's own training split (the
    recommender is loaded for it when only the saved top-k table was used)."""
    history = user_history(kg, user, recommender)
    if history or recommender is not None:
        return history
    try:
        from kgwb.train.recommend import load_recommender

        recommender = load_recommender(run_dir, device="cpu")
    except (ImportError, KgwbError, FileNotFoundError):
        return []
    if str(user) not in {str(u) for u in recommender.data.user_ids}:
        return []
    return user_history(kg, user, recommender)


def _item_titles(run_dir: str | Path, kg=None) -> dict[str, str]:
    """Item titles from the run (``item_titles.parquet``, written by ``kgwb train``), else the
    KG's item node names."""
    import pandas as pd

    table = Path(run_dir) / TITLES_FILE
    if table.is_file():
        df = pd.read_parquet(table).dropna(subset=["title"])
        return dict(zip(df["item_id"].astype(str), df["title"].astype(str)))
    if kg is None:
        return {}
    items = kg.nodes[kg.nodes["type"] == "item"].dropna(subset=["name"])
    ids = items["node_id"].astype(str).str.removeprefix("item:")
    return dict(zip(ids, items["name"].astype(str)))


def _recommend(args: argparse.Namespace) -> int:
    from kgwb.cli import print_json

    top, recommender = recommendations_for(args.run, args.user, args.k)
    out: dict = {"user": args.user, "run": str(args.run), "recommendations": []}
    rows = top.to_dict(orient="records")
    kg = None
    if args.explain:
        from kgwb.kg.cli import kg_folder
        from kgwb.kg.model import KnowledgeGraph
        from kgwb.viz.explain import PathExplainer

        kg_dir = args.kg if args.kg is not None else Path(args.run) / "kg"
        kg = KnowledgeGraph.load(kg_folder(kg_dir))
        history = args.history or _run_history(args.run, kg, args.user, recommender)
        if not history:
            raise KgwbError(
                f"no history for user {args.user!r} in {kg_dir} or the run; pass --history ITEM..."
            )
        known = set(kg.nodes["node_id"])
        history = [h for h in history if h in known or f"item:{h}" in known]
        explainer = PathExplainer(kg)
        out["history"] = history
        names = kg.nodes.set_index("node_id")["name"]
        for row in rows:
            item = str(row["item_id"])
            nid = item if item in known else f"item:{item}"
            if nid in known:
                paths = explainer.explain(history, item, max_hops=args.max_hops, k=args.paths)
                row["title"] = None if names.get(nid) is None else str(names[nid])
                row["explanations"] = [p.to_dict() for p in paths]
            else:
                row["explanations"] = []
    titles = _item_titles(args.run, kg)
    for row in rows:
        row["item_id"] = str(row["item_id"])
        if row.get("title") is None and row["item_id"] in titles:
            row["title"] = titles[row["item_id"]]
        row["user_id"] = str(row["user_id"])
        row["rank"] = int(row["rank"])
        row["score"] = float(row["score"])
        out["recommendations"].append(row)
    print_json(out)
    return 0
