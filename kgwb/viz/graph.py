"""Interactive graph views of the KG: capped ego graphs drawn with vis-network (pyvis's bundle).

:func:`ego_graph` picks the neighbourhood of one node as a ``networkx.MultiDiGraph``, keeping at
most ``max_nodes`` nodes; :func:`ego_html` draws it; :func:`graph_html` draws any such graph (the
explained-recommendation paths use it too).  The page is one self-contained HTML file: the
vis-network script and stylesheet that ship inside the ``pyvis`` package are inlined, nothing is
fetched from a CDN, so it opens offline, in a notebook output and in the pipeline's reports.

Which neighbours are kept when there are more than ``max_nodes`` (deterministic)
    Breadth first: the centre, then every kept node's neighbours one hop further, hop by hop, so a
    hop-2 node is only considered once all of hop 1 fit.  Within a hop candidates are ranked by
    the best edge linking them to the nodes already kept: higher confidence first, then by source
    (catalog and extracted before dataset before interaction: facts about the product before
    co-purchase signals), then by higher degree in the whole KG (the better-connected neighbours
    show more of the graph's structure), then by node id.  The view holds every KG edge between
    kept nodes.  ``g.graph["dropped"]`` counts the neighbours left out.

Drawing
    Node colour and shape per node type (:data:`NODE_STYLES`), edge style per source
    (:data:`EDGE_STYLES`): catalog solid, extracted dashed with width growing with confidence,
    interaction thin and grey, dataset dotted.  Tooltips carry the provenance: for an extracted
    edge the text span it was read from, the field, the confidence and the extractor.

Untrusted text
    Names and spans come from product text, so they are data, never markup.  Labels are drawn on
    the canvas as text.  Tooltips are turned into DOM elements whose ``textContent`` is set by the
    page script (vis-network never parses them as HTML, whatever its version does with strings).
    The graph data is embedded as JSON with ``<``, ``>``, ``&`` and the JavaScript line separators
    written as ``\\uXXXX`` escapes, so no ``</script>`` or ``<!--`` can end or alter the script it
    sits in; the page title is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kgwb.errors import ConfigError, DataError
from kgwb.kg.model import PROVENANCE_COLUMNS, KnowledgeGraph
from kgwb.stage import StageConfig, option

#: node type -> vis-network colour and shape (other types get :data:`DEFAULT_NODE_STYLE`)
NODE_STYLES: dict[str, dict[str, str]] = {
    "item": {"color": "#4C78A8", "shape": "dot"},
    "brand": {"color": "#F58518", "shape": "diamond"},
    "category": {"color": "#54A24B", "shape": "triangle"},
    "value": {"color": "#B279A2", "shape": "square"},
    "user": {"color": "#9D9D9D", "shape": "triangleDown"},
}
DEFAULT_NODE_STYLE = {"color": "#E45756", "shape": "star"}

#: edge source -> vis-network edge options (extracted edges also get a width by confidence)
EDGE_STYLES: dict[str, dict[str, Any]] = {
    "catalog": {"color": "#555555", "width": 2.0, "dashes": False},
    "extracted": {"color": "#E45756", "width": 1.0, "dashes": [8, 5]},
    "interaction": {"color": "#BBBBBB", "width": 0.5, "dashes": False},
    "dataset": {"color": "#4C78A8", "width": 1.5, "dashes": [2, 4]},
}
DEFAULT_EDGE_STYLE = {"color": "#888888", "width": 1.0, "dashes": False}

#: node role (explained-path views) -> border colour and label prefix
ROLE_STYLES: dict[str, dict[str, str]] = {
    "user": {"border": "#111111", "prefix": "user: ", "meaning": "the user"},
    "history": {"border": "#2CA02C", "prefix": "bought: ", "meaning": "bought (history)"},
    "recommended": {
        "border": "#D62728",
        "prefix": "recommended: ",
        "meaning": "recommended",
    },
}

#: vis-network shape -> a character drawing it in the legend
SHAPE_GLYPHS = {
    "dot": "●",
    "diamond": "◆",
    "triangle": "▲",
    "square": "■",
    "triangleDown": "▼",
    "star": "★",
}

#: ranking of edge sources when choosing neighbours (lower is kept first)
SOURCE_PRIORITY = {"catalog": 0, "extracted": 0, "dataset": 1, "interaction": 2}

LABEL_CHARS = 40


# ------------------------------------------------------------------------------ selection
def _present(value: Any) -> bool:
    return (
        value is not None
        and value is not pd.NA
        and not (isinstance(value, float) and math.isnan(value))
    )


def _node_degrees(kg: KnowledgeGraph, nodes: Iterable[str] | None = None) -> pd.Series:
    """Edge count per node in the whole KG (both directions), optionally only for ``nodes``."""
    ends = pd.concat([kg.edges["head"], kg.edges["tail"]], ignore_index=True)
    if nodes is not None:
        ends = ends[ends.isin(pd.Index(list(nodes)))]
    return ends.value_counts()


def _check_node(kg: KnowledgeGraph, node_id: str) -> None:
    if not (kg.nodes["node_id"] == node_id).any():
        hint = ""
        if ":" not in node_id:
            hint = f" (node ids carry their type, e.g. 'item:{node_id}')"
        raise DataError(
            f"node {node_id!r} is not in the knowledge graph{hint}",
            expected="a node id like 'item:B00X', 'brand:acme' or 'category:Shampoo'",
        )


@dataclass
class EgoConfig(StageConfig):
    """How much of a node's neighbourhood a view shows (the flags of ``kgwb viz ego``)."""

    hops: int = option(2, "neighbourhood radius")
    max_nodes: int = option(200, "node cap")

    def validate(self) -> None:
        if self.max_nodes < 1:
            raise ConfigError(f"max_nodes must be at least 1, not {self.max_nodes}")


def ego_graph(kg: KnowledgeGraph, node_id: str, *, hops: int = 2, max_nodes: int = 200) -> Any:
    """The neighbourhood of ``node_id`` within ``hops`` edges (followed in either direction) as a
    ``networkx.MultiDiGraph`` of at most ``max_nodes`` nodes, chosen as the module docstring says.

    Node attributes: type, name, hop (distance from the centre), degree (in the whole KG).  Edge
    attributes: relation, source, confidence and the provenance columns that are set.  Graph
    attributes: centre, hops, max_nodes, dropped (neighbours within ``hops`` left out).
    """
    if max_nodes < 1:
        raise ConfigError(f"max_nodes must be at least 1, not {max_nodes}")
    _check_node(kg, node_id)
    hop_of, dropped = _ego_hops(kg, node_id, hops, max_nodes)
    return _ego_networkx(kg, node_id, hop_of, hops=hops, max_nodes=max_nodes, dropped=dropped)


def _ego_hops(kg: KnowledgeGraph, node_id: str, hops: int, max_nodes: int) -> tuple[dict, int]:
    """The hop of each node kept (breadth first, at most ``max_nodes``) and how many
    neighbours within ``hops`` were left out."""
    edges = kg.edges
    heads = edges["head"].to_numpy(dtype=object)
    tails = edges["tail"].to_numpy(dtype=object)
    conf = edges["confidence"].to_numpy(dtype=float)
    prio = edges["source"].map(SOURCE_PRIORITY).fillna(3).to_numpy(dtype=float)
    hop_of: dict[str, int] = {node_id: 0}
    frontier = {node_id}
    dropped = 0
    for hop in range(1, max(int(hops), 0) + 1):
        if not frontier:
            break
        front = pd.Index(list(frontier))
        out_mask = pd.Index(heads).isin(front)
        in_mask = pd.Index(tails).isin(front)
        cand = pd.DataFrame(
            {
                "node": np.concatenate([tails[out_mask], heads[in_mask]]),
                "confidence": np.concatenate([conf[out_mask], conf[in_mask]]),
                "priority": np.concatenate([prio[out_mask], prio[in_mask]]),
            }
        )
        cand = cand[~cand["node"].isin(pd.Index(list(hop_of)))]
        if cand.empty:
            break
        chosen, left_out = _choose_neighbours(kg, cand, max_nodes - len(hop_of))
        dropped += left_out
        for n in chosen:
            hop_of[n] = hop
        frontier = set(chosen)
        if len(hop_of) >= max_nodes:
            # what the next hop would have added is left out too
            if hop < hops:
                nxt = pd.Index(list(frontier))
                more = set(tails[pd.Index(heads).isin(nxt)]) | set(heads[pd.Index(tails).isin(nxt)])
                dropped += len(more - set(hop_of))
            break
    return hop_of, dropped


def _choose_neighbours(kg: KnowledgeGraph, cand: pd.DataFrame, room: int) -> tuple[list, int]:
    """The candidates that fit in ``room`` (by their best linking edge: highest confidence,
    then the most trusted source, then degree) and how many were left out."""
    best = cand.groupby("node", sort=False).agg(
        confidence=("confidence", "max"), priority=("priority", "min")
    )
    if len(best) <= room:
        return sorted(best.index), 0
    best["degree"] = _node_degrees(kg, best.index).reindex(best.index).fillna(0)
    best = best.reset_index().sort_values(
        ["confidence", "priority", "degree", "node"],
        ascending=[False, True, False, True],
        kind="mergesort",
    )
    return best["node"].iloc[:room].tolist(), len(best) - room


def _ego_networkx(
    kg: KnowledgeGraph, node_id: str, hop_of: dict, *, hops: int, max_nodes: int, dropped: int
) -> Any:
    import networkx as nx

    edges = kg.edges
    keep = pd.Index(list(hop_of))
    node_table = kg.nodes[kg.nodes["node_id"].isin(keep)]
    edge_table = edges[edges["head"].isin(keep) & edges["tail"].isin(keep)]
    degrees = _node_degrees(kg, keep)
    g = nx.MultiDiGraph(centre=node_id, hops=int(hops), max_nodes=int(max_nodes), dropped=dropped)
    for nid, ntype, name in node_table[["node_id", "type", "name"]].itertuples(index=False):
        attrs: dict[str, Any] = {
            "type": ntype,
            "hop": hop_of[nid],
            "degree": int(degrees.get(nid, 0)),
        }
        if _present(name):
            attrs["name"] = name
        g.add_node(nid, **attrs)
    for record in _edge_records(edge_table):
        g.add_edge(record.pop("head"), record.pop("tail"), **record)
    return g


def _edge_records(edges: pd.DataFrame) -> list[dict[str, Any]]:
    cols = ["head", "tail", "relation", "source", "confidence"]
    cols += [c for c in PROVENANCE_COLUMNS if c in edges.columns]
    out = []
    for row in edges[cols].astype(object).itertuples(index=False):
        rec = {c: v for c, v in zip(cols, row) if _present(v)}
        if "confidence" in rec:
            rec["confidence"] = float(rec["confidence"])
        for c in ("start", "end"):
            if c in rec:
                rec[c] = int(rec[c])
        out.append(rec)
    return out


# ------------------------------------------------------------------------------- drawing
def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_tooltip(nid: str, attrs: dict[str, Any]) -> str:
    lines = [str(attrs.get("name", nid)), f"id: {nid}", f"type: {attrs.get('type', '?')}"]
    if "degree" in attrs:
        lines.append(f"edges in the KG: {attrs['degree']}")
    if "hop" in attrs:
        lines.append(f"hops from the centre: {attrs['hop']}")
    for key in ("role", "note"):
        if key in attrs:
            lines.append(f"{key}: {attrs[key]}")
    return "\n".join(lines)


def _edge_tooltip(head: str, tail: str, attrs: dict[str, Any]) -> str:
    source = attrs.get("source", "?")
    lines = [
        f"{attrs.get('relation', '?')}  ({source}, confidence {attrs.get('confidence', 1.0):.2f})",
        f"{head} → {tail}",
    ]
    if "text" in attrs or "field" in attrs:
        span = ""
        if "start" in attrs and "end" in attrs:
            span = f" [{attrs['start']}:{attrs['end']}]"
        where = f"{attrs.get('field', 'text')} of {attrs.get('item_id', head)}"
        lines.append(f"read from the {where}{span}: “{attrs.get('text', '')}”")
    if "extractor" in attrs:
        lines.append(f"extractor: {attrs['extractor']}")
    return "\n".join(lines)


def _edge_style(attrs: dict[str, Any]) -> dict[str, Any]:
    style = dict(EDGE_STYLES.get(attrs.get("source", ""), DEFAULT_EDGE_STYLE))
    if attrs.get("source") == "extracted":
        style["width"] = 1.0 + 3.0 * float(attrs.get("confidence", 0.0))
    return style


def vis_data(g: Any, *, centre: str | None = None, highlight: Iterable[str] = ()) -> dict[str, Any]:
    """The vis-network ``nodes`` / ``edges`` lists for graph ``g`` (plain text everywhere)."""
    centre = centre if centre is not None else g.graph.get("centre")
    marked = set(highlight)
    nodes = []
    for nid, attrs in g.nodes(data=True):
        style = NODE_STYLES.get(attrs.get("type", ""), DEFAULT_NODE_STYLE)
        size = 14 + min(12.0, 2.0 * math.log1p(attrs.get("degree", 1)))
        node = {
            "id": str(nid),
            "label": _short(attrs.get("name", nid)),
            "title": _node_tooltip(str(nid), attrs),
            "group": str(attrs.get("type", "")),
            "shape": style["shape"],
            "color": style["color"],
            "size": size,
        }
        if nid == centre or nid in marked:
            node.update(size=size + 10, borderWidth=4, font={"size": 18})
        role = ROLE_STYLES.get(str(attrs.get("role", "")))
        if role is not None:
            node["color"] = {"background": style["color"], "border": role["border"]}
            node["label"] = role["prefix"] + node["label"]
            node.update(borderWidth=5)
        nodes.append(node)
    edges = []
    multi = g.is_multigraph()
    items = (
        g.edges(keys=True, data=True)
        if multi
        else ((h, t, None, d) for h, t, d in g.edges(data=True))
    )
    show_labels = g.number_of_edges() <= 60
    for head, tail, _key, attrs in items:
        style = _edge_style(attrs)
        edge = {
            "from": str(head),
            "to": str(tail),
            "title": _edge_tooltip(str(head), str(tail), attrs),
            "arrows": "to",
            "color": {"color": style["color"]},
            "width": style["width"],
            "dashes": style["dashes"],
        }
        if show_labels:
            edge["label"] = str(attrs.get("relation", ""))
        edges.append(edge)
    return {"nodes": nodes, "edges": edges}


def _script_json(obj: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>`` or ``&`` (so no ``</script>``,
    ``<!--``), and no U+2028/U+2029, which end a line in older JavaScript."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _vis_assets() -> tuple[str, str]:
    import pyvis

    lib = Path(pyvis.__file__).resolve().parent / "lib" / "vis-9.1.2"
    js = (lib / "vis-network.min.js").read_text(encoding="utf-8")
    css = (lib / "vis-network.css").read_text(encoding="utf-8")
    for text, name in ((js, "vis-network.min.js"), (css, "vis-network.css")):
        low = text.lower()
        if "</script" in low or "</style" in low or "<!--" in low:
            raise RuntimeError(f"{lib / name}: cannot be inlined (holds a closing tag)")
    return js, css


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>{css}</style>
<style>
body {{ font-family: sans-serif; margin: 0; }}
#kgwb-header {{ padding: 6px 10px; font-size: 14px; }}
#kgwb-legend {{ padding: 0 10px 6px; font-size: 12px; color: #333; }}
#kgwb-legend span.kgwb-key {{ margin-right: 14px; white-space: nowrap; }}
#kgwb-graph {{ width: 100%; height: {height}px; border-top: 1px solid #ddd; }}
div.vis-tooltip {{ white-space: pre-wrap; max-width: 480px; }}
</style>
</head>
<body>
<div id="kgwb-header">{header}</div>
<div id="kgwb-legend">{legend}</div>
<div id="kgwb-graph"></div>
<script>{js}</script>
<script>
(function () {{
  var kgwbData = {data};
  var kgwbOptions = {options};
  function asText(text) {{
    var el = document.createElement("div");
    el.textContent = text;
    return el;
  }}
  kgwbData.nodes.forEach(function (n) {{ if (typeof n.title === "string") n.title = asText(n.title); }});
  kgwbData.edges.forEach(function (e) {{ if (typeof e.title === "string") e.title = asText(e.title); }});
  var container = document.getElementById("kgwb-graph");
  var network = new vis.Network(
    container,
    {{ nodes: new vis.DataSet(kgwbData.nodes), edges: new vis.DataSet(kgwbData.edges) }},
    kgwbOptions
  );
  network.once("stabilizationIterationsDone", function () {{ network.setOptions({{ physics: false }}); }});
  window.kgwbNetwork = network;
}})();
</script>
</body>
</html>
"""


def legend_html(g: Any) -> str:
    """What the colours, shapes, edge styles and role borders of ``g``'s view mean (only those
    present), as escaped HTML."""
    keys = []
    types = sorted({str(a.get("type", "")) for _, a in g.nodes(data=True)})
    for t in types:
        style = NODE_STYLES.get(t, DEFAULT_NODE_STYLE)
        glyph = SHAPE_GLYPHS.get(style["shape"], "●")
        keys.append(
            f'<span class="kgwb-key"><span style="color:{style["color"]}">{glyph}</span> '
            f"{html.escape(t or 'other')}</span>"
        )
    edge_data = g.edges(data=True)
    sources = sorted({str(a.get("source", "")) for *_, a in edge_data})
    for src in sources:
        style = EDGE_STYLES.get(src, DEFAULT_EDGE_STYLE)
        dashes = style["dashes"]
        line = "solid" if not dashes else ("dotted" if dashes[0] <= 2 else "dashed")
        keys.append(
            f'<span class="kgwb-key"><span style="display:inline-block;width:28px;'
            f'border-top:2px {line} {style["color"]};vertical-align:middle"></span> '
            f"{html.escape(src or 'other')} edge</span>"
        )
    roles = [r for r in ROLE_STYLES if any(a.get("role") == r for _, a in g.nodes(data=True))]
    for r in roles:
        keys.append(
            f'<span class="kgwb-key"><span style="display:inline-block;width:10px;height:10px;'
            f'border:3px solid {ROLE_STYLES[r]["border"]};border-radius:50%"></span> '
            f"{html.escape(ROLE_STYLES[r]['meaning'])}</span>"
        )
    return "".join(keys)


def _options(n_nodes: int) -> dict[str, Any]:
    return {
        "interaction": {"hover": True, "tooltipDelay": 150, "navigationButtons": False},
        "edges": {"smooth": {"type": "continuous"}, "font": {"size": 10, "align": "middle"}},
        "nodes": {"font": {"size": 12}},
        "physics": {
            "solver": "barnesHut",
            "barnesHut": {"gravitationalConstant": -8000, "springLength": 120},
            "stabilization": {"iterations": 150 if n_nodes > 200 else 300},
        },
    }


def graph_html(
    g: Any,
    *,
    title: str = "kgwb graph",
    centre: str | None = None,
    highlight: Iterable[str] = (),
    height: int = 750,
    path: str | Path | None = None,
) -> str:
    """A self-contained HTML page drawing ``g`` (a networkx graph with kgwb node/edge attributes);
    written to ``path`` too when given.  See the module docstring for styles and escaping."""
    js, css = _vis_assets()
    data = vis_data(g, centre=centre, highlight=highlight)
    header = html.escape(title)
    dropped = g.graph.get("dropped")
    counts = f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges"
    if dropped:
        counts += f" ({dropped} more neighbours left out; raise max_nodes to see them)"
    page = _PAGE.format(
        title=html.escape(title),
        header=f"<strong>{header}</strong> &middot; {html.escape(counts)}",
        legend=legend_html(g),
        css=css,
        js=js,
        height=int(height),
        data=_script_json(data),
        options=_script_json(_options(g.number_of_nodes())),
    )
    if path is not None:
        from kgwb.atomic import write_text

        write_text(Path(path), page)
    return page


def ego_html(
    kg: KnowledgeGraph,
    node_id: str,
    *,
    hops: int = 2,
    max_nodes: int = 200,
    path: str | Path | None = None,
    height: int = 750,
) -> str:
    """The :func:`ego_graph` of ``node_id`` drawn as a self-contained HTML page (also written to
    ``path`` when given)."""
    g = ego_graph(kg, node_id, hops=hops, max_nodes=max_nodes)
    return graph_html(g, title=ego_title(g), centre=node_id, height=height, path=path)


def ego_title(g: Any) -> str:
    """The heading of an ego graph's page: the centre's name, id and the hop count."""
    centre = g.graph["centre"]
    name = g.nodes[centre].get("name", centre)
    return f"{_short(name, 80)} ({centre}) within {g.graph['hops']} hops"


def to_pyvis(g: Any, *, centre: str | None = None, height: str = "750px") -> Any:
    """``g`` as a ``pyvis.network.Network`` with the same styles, for pyvis's own tools.

    Its ``show()`` / ``write_html()`` use pyvis's template, which loads Bootstrap from a CDN and
    sets tooltips as strings; prefer :func:`graph_html` for files you share.
    """
    from pyvis.network import Network

    net = Network(height=height, width="100%", directed=True, cdn_resources="in_line")
    data = vis_data(g, centre=centre)
    for node in data["nodes"]:
        nid = node.pop("id")
        net.add_node(nid, **node)
    for edge in data["edges"]:
        net.add_edge(edge.pop("from"), edge.pop("to"), **edge)
    return net


def notebook_view(page: str, *, height: int = 780, path: str | Path | None = None) -> Any:
    """Show a page from :func:`graph_html` in a notebook output, isolated in an ``<iframe>``
    sandboxed to scripts only (no same-origin access, no forms, no top navigation), with a link to
    the HTML file ``path`` beside it when given.

    The link is relative to the folder the executed notebook is viewed from: ``KGWB_NOTEBOOK_DIR``
    (the pipeline sets it to the run folder, where it writes the notebook's HTML) or the kernel's
    working directory (JupyterLab)."""
    import os

    from IPython.display import HTML

    frame = (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" style="width:100%;height:{int(height)}px;'
        'border:1px solid #ddd" sandbox="allow-scripts"></iframe>'
    )
    from kgwb.notebooks import VIEW_MARK

    if path is None:
        return HTML(VIEW_MARK + frame)
    target = Path(path).resolve()
    base = Path(os.environ.get("KGWB_NOTEBOOK_DIR") or os.getcwd()).resolve()
    try:
        href = os.path.relpath(target, base)
    except ValueError:  # another drive (Windows)
        href = target.as_uri()
    link = (
        f'<div>file: <a href="{html.escape(Path(href).as_posix(), quote=True)}" target="_blank">'
        f"{html.escape(target.name)}</a> (opens offline in any browser)</div>"
    )
    return HTML(link + VIEW_MARK + frame)


__all__ = [
    "EDGE_STYLES",
    "NODE_STYLES",
    "SOURCE_PRIORITY",
    "ego_graph",
    "ego_html",
    "ego_title",
    "graph_html",
    "legend_html",
    "notebook_view",
    "to_pyvis",
    "vis_data",
]
