"""The audit report's layout: every file the audit writes under OUTPUT/report/.

Names are relative to the report folder (what index.html links to); ReportLayout makes URLs.
"""

from dataclasses import dataclass

from schemas.layout import OutputLayout

INDEX_HTML = "index.html"
STATS_JSON = "stats.json"
LABEL_PAIRS_CSV = "label_pairs.csv"
PLOTS_DIR = "plots"
GALLERY_DIR = "gallery"


def plot_name(plot: str) -> str:
    """A plot's PNG: plots/{plot}.png."""
    return f"{PLOTS_DIR}/{plot}.png"


def gallery_name(split: str, member: str) -> str:
    """A gallery crop copied from a shard: gallery/{split}-{tar member name}."""
    return f"{GALLERY_DIR}/{split}-{member}"


@dataclass(frozen=True)
class ReportLayout:
    """URLs under one report folder (local path or fsspec URL)."""

    root: str  # the report folder itself

    @classmethod
    def of_output(cls, output_root: str) -> "ReportLayout":
        """The report of a pipeline output: OutputLayout(output_root).report_dir."""
        return cls(OutputLayout(output_root).report_dir)

    def url(self, name: str) -> str:
        """The URL of a report-relative name such as plot_name("thresholds")."""
        return f"{self.root.rstrip('/')}/{name}"

    @property
    def index_html(self) -> str:
        return self.url(INDEX_HTML)
