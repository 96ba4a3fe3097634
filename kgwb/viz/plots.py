"""plotly figures for 01_explore (and later stages).  Each builder takes tables, returns a Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

TEMPLATE = "plotly_white"


def setup_notebook() -> str:
    """Use the mimetype renderer (JupyterLab draws it natively) plus the offline ``notebook``
    renderer, which embeds plotly.js once per notebook so the HTML the pipeline renders works
    without network.  Also switches progress bars off outside interactive frontends
    (:func:`kgwb.notebooks.configure_progress`).  Returns the renderer name."""
    from kgwb.notebooks import configure_progress

    configure_progress()
    pio.renderers.default = "plotly_mimetype+notebook"
    pio.templates.default = TEMPLATE
    return pio.renderers.default


def long_tail(popularity: pd.DataFrame, *, title: str = "Item popularity (long tail)") -> go.Figure:
    """Interactions per item against popularity rank, log-log, with the cumulative share."""
    pop = popularity[popularity["interactions"] > 0]
    if len(pop) > 500:  # log-spaced ranks keep the curve's shape with a few hundred points
        idx = np.unique(np.geomspace(1, len(pop), 500).astype(int) - 1)
        pop = pop.iloc[idx]
    fig = go.Figure()
    fig.add_trace(
        go.Scattergl(
            x=pop["rank"], y=pop["interactions"], mode="lines", name="interactions per item"
        )
    )
    fig.add_trace(
        go.Scattergl(
            x=pop["rank"],
            y=pop["cumulative_share"],
            mode="lines",
            name="cumulative share",
            yaxis="y2",
        )
    )
    fig.update_layout(
        title=title,
        xaxis={"title": "item rank", "type": "log"},
        yaxis={"title": "interactions", "type": "log"},
        yaxis2={"title": "cumulative share", "overlaying": "y", "side": "right", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def lorenz(popularity: pd.DataFrame, activity: pd.DataFrame) -> go.Figure:
    """Lorenz curves of item popularity and user activity (the Gini coefficients made visible)."""
    fig = go.Figure()
    for name, counts in (
        ("items", popularity["interactions"]),
        ("users", activity["interactions"]),
    ):
        x = np.sort(counts.to_numpy(dtype=float))
        if not len(x) or x.sum() == 0:
            continue
        cum = np.concatenate([[0.0], np.cumsum(x) / x.sum()])
        share = np.linspace(0, 1, len(cum))
        step = max(1, len(cum) // 400)
        fig.add_trace(go.Scatter(x=share[::step], y=cum[::step], mode="lines", name=name))
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="equality", line={"dash": "dot"})
    )
    fig.update_layout(
        title="Lorenz curves",
        xaxis_title="share of items / users (least active first)",
        yaxis_title="share of interactions",
    )
    return fig


def activity_histogram(activity: pd.DataFrame) -> go.Figure:
    """Distribution of interactions per user (log-binned counts)."""
    fig = px.histogram(
        activity, x="interactions", nbins=60, log_y=True, title="Interactions per user"
    )
    fig.update_layout(xaxis_title="interactions per user", yaxis_title="users")
    return fig


def breakdown_bars(table: pd.DataFrame, column: str) -> go.Figure:
    """Items and interaction share per category/brand value."""
    fig = px.bar(
        table,
        x=column,
        y="interactions",
        hover_data=["items", "interaction_share"],
        title=f"Interactions per {column}",
    )
    fig.update_layout(xaxis_tickangle=-45)
    return fig


def text_length_box(ds_items: pd.DataFrame, reviews: pd.DataFrame | None = None) -> go.Figure:
    """Box plots of text lengths (words) per field, drawn from precomputed quartiles so the
    figure stays small whatever the number of texts."""
    fields: list[tuple[str, pd.Series]] = []
    for col in ("title", "description"):
        if col in ds_items.columns:
            fields.append((f"items.{col}", ds_items[col]))
    if reviews is not None and "text" in reviews.columns:
        fields.append(("reviews.text", reviews["text"]))
    fig = go.Figure()
    for name, series in fields:
        words = series.dropna().astype(str).str.split().str.len()
        if not len(words):
            continue
        q1, med, q3 = (float(words.quantile(q)) for q in (0.25, 0.5, 0.75))
        iqr = q3 - q1
        fig.add_trace(
            go.Box(
                name=name,
                q1=[q1],
                median=[med],
                q3=[q3],
                lowerfence=[float(max(words.min(), q1 - 1.5 * iqr))],
                upperfence=[float(min(words.max(), q3 + 1.5 * iqr))],
                mean=[float(words.mean())],
                boxpoints=False,
            )
        )
    fig.update_layout(title="Text length (words)", yaxis_title="words", showlegend=False)
    return fig


def learning_curves(curves: pd.DataFrame, *, metric: str = "valid_recall@20") -> go.Figure:
    """Training loss and a validation metric per epoch, one line per run (long-form input with
    columns run, epoch, loss and the metric — :meth:`ExperimentResult.curves`)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", metric))
    if curves.empty or not {"run", "epoch", "loss"} <= set(curves.columns):
        # e.g. only the popularity baseline, which does not train
        fig.update_layout(title="Learning curves (no trained model in this run)")
        return fig
    for i, (run, g) in enumerate(curves.groupby("run", sort=False)):
        color = px.colors.qualitative.Plotly[i % len(px.colors.qualitative.Plotly)]
        fig.add_trace(
            go.Scatter(
                x=g["epoch"],
                y=g["loss"],
                name=str(run),
                legendgroup=str(run),
                line={"color": color},
            ),
            row=1,
            col=1,
        )
        if metric in g:
            m = g.dropna(subset=[metric])
            fig.add_trace(
                go.Scatter(
                    x=m["epoch"],
                    y=m[metric],
                    name=str(run),
                    legendgroup=str(run),
                    showlegend=False,
                    line={"color": color},
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title="Learning curves")
    return fig


def model_comparison(
    table: pd.DataFrame, *, metrics: tuple[str, ...] = ("test recall@20", "test ndcg@20")
) -> go.Figure:
    """Grouped bars of test metrics per run (a row of :class:`ExperimentResult.table` each)."""
    long = table.melt(
        id_vars=["run"], value_vars=[m for m in metrics if m in table], var_name="metric"
    )
    fig = px.bar(
        long, x="run", y="value", color="metric", barmode="group", title="Model comparison"
    )
    fig.update_layout(xaxis_title="", yaxis_title="")
    return fig


def pca_2d(vectors: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Two principal components of ``vectors`` (centred SVD; sign fixed so runs are stable)."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    if len(x) > 20000:  # fit on a seeded sample, project everything
        fit = x[np.random.default_rng(seed).choice(len(x), 20000, replace=False)]
    else:
        fit = x
    _, _, vt = np.linalg.svd(fit, full_matrices=False)
    comps = vt[:2]
    comps *= np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])[:, None]
    return x @ comps.T


OTHER_COLOR = "#BBBBBB"


def _distinct_colors(values: pd.Series) -> tuple[pd.Series, dict[str, str]]:
    """One colour per group, never repeated: Plotly's 10 colours for up to 10 groups, Dark24 for
    up to 24; beyond that the 23 most common keep their name and the rest become "other"."""
    counts = values.value_counts()
    palette = px.colors.qualitative.Plotly if len(counts) <= 10 else px.colors.qualitative.Dark24
    if len(counts) > len(palette):
        keep = set(counts.index[: len(palette) - 1])
        values = values.where(values.isin(keep), "other")
        counts = values.value_counts()
    names = sorted(n for n in counts.index if n != "other")
    colors = {n: palette[i] for i, n in enumerate(names)}
    if "other" in counts.index:
        colors["other"] = OTHER_COLOR
    return values, colors


def embedding_map(
    vectors: np.ndarray, labels: pd.DataFrame, *, color: str = "category", hover: str = "title"
) -> go.Figure:
    """Items placed by the first two principal components of their embeddings (text or KG),
    coloured by ``color`` (a column of ``labels``, one row per vector)."""
    xy = pca_2d(vectors)
    frame = labels.reset_index(drop=True).assign(pc1=xy[:, 0], pc2=xy[:, 1])
    colors = None
    if color in frame:
        frame[color] = frame[color].fillna("(none)").astype(str)
        frame[color], colors = _distinct_colors(frame[color])
    fig = px.scatter(
        frame,
        x="pc1",
        y="pc2",
        color=color if color in frame else None,
        hover_name=hover if hover in frame else None,
        title=f"Item embedding map (PCA), coloured by {color}",
        render_mode="webgl",
        color_discrete_map=colors,
        category_orders={color: list(colors)} if colors else None,
    )
    fig.update_traces(marker={"size": 5, "opacity": 0.7})
    return fig


def degree_distribution(edges: pd.DataFrame, nodes: pd.DataFrame) -> go.Figure:
    """Log-log degree distribution per node type of a KG (``kg.edges``, ``kg.nodes``)."""
    degree = pd.concat([edges["head"], edges["tail"]]).value_counts()
    frame = nodes[["node_id", "type"]].assign(
        degree=nodes["node_id"].map(degree).fillna(0).astype(int)
    )
    counts = (
        frame[frame["degree"] > 0].groupby(["type", "degree"]).size().rename("nodes").reset_index()
    )
    fig = px.scatter(
        counts,
        x="degree",
        y="nodes",
        color="type",
        log_x=True,
        log_y=True,
        title="Degree distribution per node type",
    )
    return fig


def extraction_errors(per_relation: pd.DataFrame) -> go.Figure:
    """Correct, wrong and missed extracted values per attribute (from the KG build's
    ``quality["extraction"]["per_relation"]`` table)."""
    t = per_relation.copy()
    t["correct"] = t["correct"]
    t["wrong"] = t["predicted"] - t["correct"]
    t["missed"] = t["true"] - t["correct"]
    t = t.sort_values("true", ascending=False)
    long = t.melt(
        id_vars=["relation"], value_vars=["correct", "wrong", "missed"], var_name="outcome"
    )
    fig = px.bar(
        long,
        x="relation",
        y="value",
        color="outcome",
        barmode="stack",
        title="Extraction outcomes per attribute",
        color_discrete_map={"correct": "#2ca02c", "wrong": "#d62728", "missed": "#7f7f7f"},
    )
    fig.update_layout(xaxis_tickangle=-45, yaxis_title="values")
    return fig


def confusion_heatmap(
    table: pd.DataFrame, *, title: str = "Attribute confusion (true × predicted)"
) -> go.Figure:
    """Heatmap of a count table such as :func:`kgwb.kg.quality.attribute_confusion`."""
    fig = px.imshow(
        table, text_auto=True, aspect="auto", color_continuous_scale="Blues", title=title
    )
    fig.update_layout(xaxis_title="predicted attribute", yaxis_title="true attribute")
    return fig
