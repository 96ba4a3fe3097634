"""Ego graph views: neighbour selection under the node cap, styles, provenance tooltips, offline
self-contained HTML, and untrusted product text that stays text in a real (headless) browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from kgwb.errors import DataError
from kgwb.kg.model import KnowledgeGraph
from kgwb.viz.graph import ego_graph, ego_html, graph_html, vis_data

XSS_IMG = "<img src=x onerror=\"window.__xss=(window.__xss||[]).concat(['img'])\">"
XSS_SCRIPT = "</script><script>window.__xss=(window.__xss||[]).concat(['script'])</script>"
XSS_ALERT = "<script>alert(1)</script><!--"


def _node(nid: str, ntype: str, name: str) -> dict:
    return {"node_id": nid, "type": ntype, "name": name}


def _edge(h, r, t, source="catalog", confidence=1.0, **prov) -> dict:
    return {"head": h, "relation": r, "tail": t, "source": source, "confidence": confidence, **prov}


@pytest.fixture
def star_kg() -> KnowledgeGraph:
    """centre item C; brand B (catalog), 3 colours (extracted, confidence 0.9/0.6/0.3), 6 users
    (interaction); users each bought 3 more items (hop 2)."""
    nodes = [_node("item:C", "item", "Centre item"), _node("brand:B", "brand", "Acme")]
    edges = [_edge("item:C", "produced_by", "brand:B")]
    for i, conf in enumerate((0.9, 0.6, 0.3)):
        nodes.append(_node(f"value:color=c{i}", "value", f"c{i}"))
        edges.append(
            _edge(
                "item:C",
                "has_color",
                f"value:color=c{i}",
                "extracted",
                conf,
                item_id="C",
                field="title",
                start=0,
                end=2,
                text=f"c{i}",
                extractor="bio@1",
            )
        )
    for u in range(6):
        nodes.append(_node(f"user:u{u}", "user", f"u{u}"))
        edges.append(_edge(f"user:u{u}", "interacted", "item:C", "interaction"))
        for j in range(3):
            nid = f"item:u{u}x{j}"
            nodes.append(_node(nid, "item", nid))
            edges.append(_edge(f"user:u{u}", "interacted", nid, "interaction"))
    # u5 is the most connected user: it should win ties among users
    for j in range(4):
        nodes.append(_node(f"item:extra{j}", "item", f"extra{j}"))
        edges.append(_edge("user:u5", "interacted", f"item:extra{j}", "interaction"))
    return KnowledgeGraph(nodes=pd.DataFrame(nodes), edges=pd.DataFrame(edges))


def test_ego_graph_keeps_all_within_cap(star_kg):
    g = ego_graph(star_kg, "item:C", hops=2, max_nodes=1000)
    assert g.number_of_nodes() == len(star_kg.nodes)
    assert g.graph["dropped"] == 0
    assert g.nodes["item:C"]["hop"] == 0 and g.nodes["user:u0"]["hop"] == 1
    assert g.nodes["item:u0x0"]["hop"] == 2
    # provenance of extracted edges travels with the edge
    attrs = next(iter(g.get_edge_data("item:C", "value:color=c0").values()))
    assert attrs["source"] == "extracted" and attrs["text"] == "c0" and attrs["start"] == 0


def test_ego_graph_selection_order_under_cap(star_kg):
    # 1 + 10 neighbours at hop 1; room for 6: brand (catalog, 1.0) first, then the users
    # (confidence 1.0, interaction; most connected first), the low-confidence colours last
    g = ego_graph(star_kg, "item:C", hops=2, max_nodes=7)
    kept = set(g.nodes)
    assert len(kept) == 7 and "item:C" in kept and "brand:B" in kept
    assert "user:u5" in kept  # highest degree among equally confident interaction edges
    assert not any(n.startswith("value:") for n in kept)
    assert all(d["hop"] <= 1 for _, d in g.nodes(data=True))  # BFS: hop 1 before hop 2
    assert g.graph["dropped"] > 0
    # deterministic
    assert sorted(ego_graph(star_kg, "item:C", hops=2, max_nodes=7).nodes) == sorted(kept)

    g2 = ego_graph(star_kg, "item:C", hops=1, max_nodes=3)
    assert set(g2.nodes) == {"item:C", "brand:B", "user:u5"}
    g3 = ego_graph(star_kg, "item:C", hops=1, max_nodes=1 + 1 + 6 + 2)
    # colours ranked by confidence: 0.3 is the one dropped after the users
    assert "value:color=c0" in g3 and "value:color=c1" in g3 and "value:color=c2" not in g3

    assert set(ego_graph(star_kg, "item:C", hops=2, max_nodes=1).nodes) == {"item:C"}


def test_ego_graph_unknown_node(star_kg):
    with pytest.raises(DataError, match="item:nope.*not in the knowledge graph"):
        ego_graph(star_kg, "item:nope")
    with pytest.raises(DataError, match="e.g. 'item:C'"):
        ego_graph(star_kg, "C")


def test_styles_and_tooltips(star_kg):
    data = vis_data(ego_graph(star_kg, "item:C", hops=1, max_nodes=100))
    by_id = {n["id"]: n for n in data["nodes"]}
    assert by_id["brand:B"]["shape"] != by_id["item:C"]["shape"]
    assert by_id["brand:B"]["color"] != by_id["value:color=c0"]["color"]
    edges = {(e["from"], e["to"]): e for e in data["edges"]}
    catalog = edges[("item:C", "brand:B")]
    hi, lo = edges[("item:C", "value:color=c0")], edges[("item:C", "value:color=c2")]
    inter = edges[("user:u0", "item:C")]
    assert catalog["dashes"] is False and hi["dashes"] and lo["dashes"]
    assert hi["width"] > lo["width"] > inter["width"]
    assert "“c0”" in hi["title"] and "title of C [0:2]" in hi["title"]
    assert "confidence 0.90" in hi["title"] and "extractor: bio@1" in hi["title"]


def test_html_is_self_contained(star_kg, tmp_path):
    out = tmp_path / "ego.html"
    page = ego_html(star_kg, "item:C", hops=2, max_nodes=50, path=out)
    assert out.read_text(encoding="utf-8") == page
    assert "vis.Network" in page and "new vis.DataSet" in page
    # nothing to fetch: no script/link/img with a src or href
    assert not re.search(r"<(script|link|img|iframe)[^>]*\b(src|href)\s*=", page, re.I)
    # and the page forbids the browser to fetch anything at all
    assert "Content-Security-Policy\" content=\"default-src 'none';" in page


def _xss_kg() -> KnowledgeGraph:
    nodes = [
        _node("item:1", "item", XSS_IMG),
        _node("item:2", "item", XSS_SCRIPT),
        _node("brand:<b>", "brand", XSS_ALERT),
        _node("value:color=x", "value", "red\u2028</SCRIPT >"),
    ]
    edges = [
        _edge("item:1", "produced_by", "brand:<b>"),
        _edge("item:2", "produced_by", "brand:<b>"),
        _edge(
            "item:1",
            "has_color",
            "value:color=x",
            "extracted",
            0.8,
            item_id="1",
            field="title",
            start=0,
            end=5,
            text=XSS_IMG,
            extractor="x<script>@1",
        ),
    ]
    return KnowledgeGraph(nodes=pd.DataFrame(nodes), edges=pd.DataFrame(edges))


def test_untrusted_text_cannot_leave_the_data_script():
    page = ego_html(_xss_kg(), "item:1", hops=2, max_nodes=10)
    body = page.split('<div id="kgwb-graph"></div>', 1)[1]
    # the only closing script tags are ours (vis bundle + page script); no raw payload markup
    assert body.lower().count("</script") == 2
    assert "<img" not in page and "<!--" not in page
    assert "\u2028" not in page
    decoded = json.loads(page.split("var kgwbData = ", 1)[1].split(";\n", 1)[0])
    assert {n["label"] for n in decoded["nodes"]} >= {XSS_IMG[:39] + "…"}
    # the title attribute of the page is escaped too
    title_page = graph_html(ego_graph(_xss_kg(), "item:2"), title=XSS_SCRIPT)
    head = title_page.split("<body>", 1)[0]
    assert "<script>window" not in head and "&lt;/script&gt;" in head


# --------------------------------------------------------------- real browser check
_CHROMIUM = next(
    (c for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None
)

_SENTINEL = (
    "<script>window.__xss=[];window.alert=function(){window.__xss.push('alert')};"
    "window.confirm=window.prompt=window.alert;</script>"
)
# After the page ran: show every node's and edge's tooltip through vis-network's own popup
# code, record what the tooltip shows, whether any element was injected, and what fired.
_PROBE = """<script>
setTimeout(function () {
  var out = {network: !!window.kgwbNetwork, tooltips: [], imgs: 0, scripts: 0};
  try {
    var net = window.kgwbNetwork;
    out.nodes = net.body.data.nodes.length;
    out.edges = net.body.data.edges.length;
    var ih = net.interactionHandler;
    // hide the edges while hovering the nodes, so an edge drawn across a node cannot take its
    // popup (the physics layout decides where edges run)
    net.body.data.edges.update(net.body.data.edges.get().map(function (e) {
      return {id: e.id, hidden: true};
    }));
    net.redraw();
    net.body.data.nodes.forEach(function (n) {
      var pos = net.canvasToDOM(net.getPosition(n.id));
      ih.popupObj = undefined; ih.popup && ih.popup.hide();
      ih._checkShowPopup(pos);
      var tip = document.querySelector('div.vis-tooltip');
      out.tooltips.push(tip ? tip.textContent : null);
      out.imgs += tip ? tip.querySelectorAll('img,script').length : 0;
    });
  } catch (err) { out.error = String(err); }
  out.imgs += document.querySelectorAll('img').length;
  setTimeout(function () {
    out.xss = window.__xss;
    var pre = document.createElement('pre');
    pre.id = 'kgwb-probe';
    pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }, 500);
}, 1500);
</script>"""


def _run_chromium(page_file: Path, tmp_path: Path) -> dict:
    cmd = [
        _CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page_file.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="kgwb-probe">(.*?)</pre>', done.stdout, re.S)
    assert match, f"probe result not in the DOM; chromium said:\n{done.stderr[-2000:]}"
    import html as _html

    return json.loads(_html.unescape(match.group(1)))


@pytest.mark.skipif(
    _CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install chromium chromium-driver)",
)
def test_untrusted_text_stays_text_in_a_browser(tmp_path):
    page = ego_html(_xss_kg(), "item:1", hops=2, max_nodes=10)
    page = page.replace("<head>", "<head>" + _SENTINEL, 1).replace("</body>", _PROBE + "</body>")
    page_file = tmp_path / "xss.html"
    page_file.write_text(page, encoding="utf-8")
    result = _run_chromium(page_file, tmp_path)
    assert result.get("error") is None, result
    assert result["network"] and result["nodes"] == 4 and result["edges"] == 3
    assert result["xss"] == [], result  # no onerror, no injected script, no alert
    assert result["imgs"] == 0, result
    # the payloads are displayed verbatim as text in the tooltips
    shown = "\n".join(t for t in result["tooltips"] if t)
    assert XSS_IMG in shown and XSS_SCRIPT in shown and XSS_ALERT in shown, result


# ------------------------------------------------------------------ larger graphs
def test_cap_on_a_large_ego_graph():
    from kgwb.data.sample import generate
    from kgwb.kg.catalog import catalog_graph

    kg = catalog_graph(generate("small"), include_users=True)
    ends = pd.concat([kg.edges["head"], kg.edges["tail"]])
    hub = ends.value_counts().index[0]
    for cap in (50, 300):
        g = ego_graph(kg, hub, hops=2, max_nodes=cap)
        assert g.number_of_nodes() == cap and hub in g
        assert g.graph["dropped"] > 0
        assert g.number_of_edges() > 0


def test_cap_on_amazon_beauty_brand(shared_datasets, tmp_path):
    folder = shared_datasets / "amazon-beauty" / "kgat"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    from kgwb.data import load_dataset
    from kgwb.kg.catalog import catalog_graph

    kg = catalog_graph(load_dataset(folder, format="kgat"))
    items = kg.nodes.loc[kg.nodes["type"] == "item", "node_id"]
    ends = pd.concat([kg.edges["head"], kg.edges["tail"]])
    counts = ends.value_counts()
    non_items = counts[~counts.index.isin(items)]
    top = non_items.index[0]  # the most connected entity (a brand or category)
    g = ego_graph(kg, top, hops=2, max_nodes=500)
    assert g.number_of_nodes() == 500 and top in g and g.graph["dropped"] > 0
    page = ego_html(kg, top, hops=2, max_nodes=500, path=tmp_path / "beauty.html")
    assert len(json.loads(page.split("var kgwbData = ", 1)[1].split(";\n", 1)[0])["nodes"]) <= 500


@pytest.mark.skipif(
    _CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install chromium chromium-driver)",
)
def test_browser_probe_catches_an_unescaped_page(tmp_path):
    """Control: the same page with its JSON escaping undone lets the payload run, so the check
    above would have caught it."""
    page = ego_html(_xss_kg(), "item:1", hops=2, max_nodes=10)
    # ("<!--" is dropped: inside a script it would swallow the rest of the page, probe included)
    page = page.replace("\\u003c", "<").replace("\\u003e", ">").replace("<!--", "")
    page = page.replace("<head>", "<head>" + _SENTINEL, 1).replace("</body>", _PROBE + "</body>")
    page_file = tmp_path / "unsafe.html"
    page_file.write_text(page, encoding="utf-8")
    result = _run_chromium(page_file, tmp_path)
    assert "script" in result["xss"], result


def run_cli(argv: list[str]) -> int:
    """Run one of kgwb.viz.cli's commands (registered on a parser of its own)."""
    import argparse

    from kgwb.viz.cli import register

    parser = argparse.ArgumentParser(prog="kgwb")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_viz_ego(tmp_path, capsys):
    from kgwb.data.sample import generate
    from kgwb.kg.catalog import catalog_graph

    catalog_graph(generate("tiny")).save(tmp_path / "build" / "kg")
    out = tmp_path / "ego.html"
    argv = ["viz", "ego", str(tmp_path / "build"), "item:I00001", "--max-nodes", "25"]
    assert run_cli([*argv, "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nodes"] == 25 and report["dropped"] > 0
    page = out.read_text(encoding="utf-8")
    nodes = json.loads(page.split("var kgwbData = ", 1)[1].split(";\n", 1)[0])["nodes"]
    assert len(nodes) == 25 and "item:I00001" in {n["id"] for n in nodes}
    with pytest.raises(DataError, match="not in the knowledge graph"):
        run_cli(["viz", "ego", str(tmp_path / "build"), "I00001", "--out", str(out)])
