"""The report's PNG plots, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Each function returns PNG bytes; the report writes them next to index.html.
"""

import io as bytes_io

import networkx as nx
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from hierdata import trees

_DPI = 100
_PANELS = (
    ("label_pairs", "label pairs accepted"),
    ("tree_edges", "tree edges (label → label)"),
    ("training_pairs", "training pairs (image⊃box + box⊃box)"),
)


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = bytes_io.BytesIO()
    # No "Software" metadata: the same statistics give the same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def compact(value: float | None) -> str:
    """1234 -> "1.2k", 2_500_000 -> "2.5M"; None -> "–"."""
    if value is None:
        return "–"
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}{suffix}"
    return f"{value:g}"


HEATMAP_WIDTH_INCHES = 9.0  # 900 px at _DPI: the page shows it at its own size, not shrunk
HEATMAP_FONT_SIZE = 10  # points at 900 px


def text_colour(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads better on a cell of this colour.

    Args:
        rgba: the cell's colour, channels in [0, 1] (sRGB as matplotlib gives them).
    Returns:
        "black" on a light cell (relative luminance above 0.4), else "white".
    """
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # 0.18 in linear light is mid-grey (L* 50): viridis' yellow end is far above it.
    return "black" if luminance > 0.18 else "white"


def sensitivity_heatmaps(grid: dict) -> bytes:
    """Three heatmaps (label pairs, tree edges, training pairs) over frequency x proportion,
    log-coloured, each cell annotated, the run's chosen thresholds outlined in red.

    The panels are stacked, each HEATMAP_WIDTH_INCHES wide, so the numbers keep their size on a
    900 px page; each number is black or white by its cell's luminance."""
    frequencies, proportions = grid["frequency"], grid["proportion"]
    panel_height = 0.42 * len(proportions) + 1.3
    figure = Figure(figsize=(HEATMAP_WIDTH_INCHES, panel_height * len(_PANELS) + 0.5))
    cmap = colormaps["viridis"]
    for index, (key, title) in enumerate(_PANELS):
        axes = figure.add_subplot(len(_PANELS), 1, index + 1)
        values = np.array(
            [[np.nan if v is None else v for v in row] for row in grid[key]], dtype=float
        )
        positive = values[np.isfinite(values) & (values > 0)]
        norm = (
            LogNorm(positive.min(), max(positive.max(), positive.min() + 1))
            if positive.size
            else None
        )
        shown = np.ma.masked_invalid(np.where(values > 0, values, np.nan))
        image = axes.imshow(shown, cmap=cmap, norm=norm, aspect="auto", origin="lower")
        for row, column in np.ndindex(values.shape):
            value = values[row, column]
            filled = np.isfinite(value) and value > 0  # else the cell is blank (white)
            axes.text(
                column,
                row,
                compact(None if np.isnan(value) else value),
                ha="center",
                va="center",
                fontsize=HEATMAP_FONT_SIZE,
                color=text_colour(image.to_rgba(value)) if filled else "black",
            )
        chosen_column = frequencies.index(grid["chosen"]["frequency"])
        chosen_row = proportions.index(grid["chosen"]["proportion"])
        axes.add_patch(
            Rectangle(
                (chosen_column - 0.5, chosen_row - 0.5),
                1,
                1,
                fill=False,
                edgecolor="red",
                linewidth=2.5,
            )
        )
        axes.set_xticks(range(len(frequencies)), [str(f) for f in frequencies])
        axes.set_yticks(range(len(proportions)), [f"{p:g}" for p in proportions])
        axes.set_xlabel("min_pair_frequency", fontsize=HEATMAP_FONT_SIZE)
        axes.set_ylabel("min_pair_proportion", fontsize=HEATMAP_FONT_SIZE)
        axes.tick_params(labelsize=HEATMAP_FONT_SIZE)
        axes.set_title(title, fontsize=HEATMAP_FONT_SIZE + 1)
    figure.suptitle("Threshold sensitivity (red: the run's thresholds)")
    figure.tight_layout()
    return _png(figure)


def _layered_positions(tree: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Root at the left, one column per depth; leaves one row apart in depth-first order,
    each parent level with the middle of its children."""
    y: dict[str, float] = {}
    next_leaf = 0.0
    for label in nx.dfs_postorder_nodes(tree, trees.ROOT):
        children = list(tree.successors(label))
        if children:
            y[label] = sum(y[c] for c in children) / len(children)
        else:
            y[label], next_leaf = next_leaf, next_leaf - 1
    return {label: (float(tree.nodes[label]["depth"]), y[label]) for label in y}


TREE_LABEL_OFFSET = (0.04, 0.12)  # (depth columns, leaf rows) from a label's dot


def tree_top_levels(small: nx.DiGraph) -> bytes:
    """The first levels of the label tree (tree_stats.top_levels) as a left-to-right
    dendrogram: horizontal text stays readable with hundreds of leaves."""
    return _png(tree_figure(small))


def tree_figure(small: nx.DiGraph) -> Figure:
    """tree_top_levels' figure: every label at TREE_LABEL_OFFSET from its dot."""
    positions = _layered_positions(small)
    leaves = sum(1 for label in small if small.out_degree(label) == 0)
    depth = max(small.nodes[label]["depth"] for label in small)
    figure = Figure(figsize=(3.4 * (depth + 1), max(3.0, 0.2 * leaves + 1.2)))
    axes = figure.add_subplot()
    for parent in small:
        children = list(small.successors(parent))
        if not children:
            continue
        (x0, y0), elbow = positions[parent], positions[parent][0] + 0.5
        ys = [positions[child][1] for child in children]
        # Elbow edges: out of the parent, one vertical spine, then into each child.
        axes.plot([x0, elbow], [y0, y0], color="#9aa5b1", linewidth=0.8)
        axes.plot([elbow, elbow], [min(ys), max(ys)], color="#9aa5b1", linewidth=0.8)
        for child, y1 in zip(children, ys, strict=True):
            axes.plot([elbow, positions[child][0]], [y1, y1], color="#9aa5b1", linewidth=0.8)
    for label, (x, y) in positions.items():
        axes.scatter(
            [x], [y], s=14, zorder=2, color="#d64545" if label == trees.ROOT else "#1f6feb"
        )
        # One placement for every label, internal or leaf: just above and right of its dot,
        # on white, so an internal label never hides its outgoing edge.
        axes.text(
            x + TREE_LABEL_OFFSET[0],
            y + TREE_LABEL_OFFSET[1],
            small.nodes[label]["name"],
            fontsize=8,
            ha="left",
            va="bottom",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.3},
        )
    axes.set_xlim(-0.2, depth + 1.0)
    axes.set_ylim(min(y for _, y in positions.values()) - 0.8, 1.0)
    axes.axis("off")
    axes.set_title(f"Label tree, first {depth} levels (largest subtrees first)")
    figure.tight_layout()
    return figure


def _tail_start(values: dict[int, int], share: float = 0.99, least: int = 10) -> int:
    """The smallest value at or below which `share` of the counts lie (at least `least`)."""
    total, running = sum(values.values()), 0
    for value in sorted(values):
        running += values[value]
        if running >= share * total:
            return max(least, value)
    return least


def _bars(axes, histogram: dict, title: str, xlabel: str, clip_tail: bool = False) -> None:
    """Bar chart of {value: count}; with clip, the top 1% tail is summed into one last bar."""
    values = {int(k): int(v) for k, v in histogram.items()}
    clip = _tail_start(values) if clip_tail and values else None
    if clip is not None and max(values) > clip:
        over = sum(n for k, n in values.items() if k > clip)
        values = {k: n for k, n in values.items() if k <= clip}
        values[clip + 1] = over
        axes.annotate(
            f"last bar: > {clip}", (0.98, 0.95), xycoords="axes fraction", ha="right", fontsize=8
        )
    axes.bar(list(values), list(values.values()), color="#1f6feb", width=0.85)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")


def tree_distributions(summary: dict) -> bytes:
    figure = Figure(figsize=(11, 3.6))
    _bars(
        figure.add_subplot(1, 2, 1),
        summary["depth_histogram"],
        "Depth of each label",
        "depth (1 = under the root)",
    )
    _bars(
        figure.add_subplot(1, 2, 2),
        summary["branching_histogram"],
        "Children per label (labels with children)",
        "children",
        clip_tail=True,
    )
    figure.tight_layout()
    return _png(figure)


def per_image_histograms(histograms: dict, means: dict) -> bytes:
    """Images by distinct classes, classes across their hierarchy trees, and kept boxes."""
    panels = (
        ("classes", "Distinct classes per image"),
        ("hierarchy_classes", "Classes across each image's hierarchy trees"),
        ("kept_boxes", "Kept boxes per image"),
    )
    figure = Figure(figsize=(15, 3.8))
    for index, (key, title) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        _bars(
            axes,
            histograms.get(key, {}),
            f"{title}\n(mean {means.get(key + '_mean') or 0:.2f})",
            key.replace("_", " "),
            clip_tail=True,
        )
        axes.set_ylabel("images")
    figure.tight_layout()
    return _png(figure)


def class_frequency(top: list[dict]) -> bytes:
    """Kept boxes of the most frequent labels, descending, log scale (like the paper's Fig. 7)."""
    figure = Figure(figsize=(14, 5))
    axes = figure.add_subplot()
    if top:
        axes.bar(range(len(top)), [row["boxes"] for row in top], color="#1f6feb")
        axes.set_xticks(range(len(top)), [row["name"] for row in top], rotation=90, fontsize=8)
        axes.set_yscale("log")
    axes.set_ylabel("kept boxes (log)")
    axes.set_title(f"Class frequency of the top {len(top)} labels")
    axes.set_xlim(-0.6, max(len(top), 1) - 0.4)
    figure.tight_layout()
    return _png(figure)
