"""The audit report's names (schemas.report_layout): relative names and URLs under a report."""

from schemas.report_layout import (
    INDEX_HTML,
    LABEL_PAIRS_CSV,
    STATS_JSON,
    ReportLayout,
    gallery_name,
    plot_name,
)


def test_relative_names():
    assert (INDEX_HTML, STATS_JSON, LABEL_PAIRS_CSV) == (
        "index.html",
        "stats.json",
        "label_pairs.csv",
    )
    assert plot_name("tree_top") == "plots/tree_top.png"
    assert gallery_name("validation", "0a1b.b003.jpg") == "gallery/validation-0a1b.b003.jpg"


def test_report_of_an_output_root_local_or_url():
    assert ReportLayout.of_output("/tmp/run/").root == "/tmp/run/report"
    report = ReportLayout.of_output("gs://bucket/run")
    assert report.index_html == "gs://bucket/run/report/index.html"
    assert report.url(plot_name("thresholds")) == "gs://bucket/run/report/plots/thresholds.png"
    assert ReportLayout("memory://r/").url(STATS_JSON) == "memory://r/stats.json"
