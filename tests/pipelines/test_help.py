"""The pipeline's --help: project options first, grouped, with defaults and help; examples;
then Beam's own options."""

import re

from pipelines.build_hier_openimages import main
from pipelines.help import GROUP_TITLES
from pipelines.options import OPTIONS


def _help(capsys) -> str:
    assert main(["--help"]) == 0
    return capsys.readouterr().out


def test_usage_is_one_line_and_groups_follow(capsys):
    text = _help(capsys)
    assert text.splitlines()[0] == (
        "usage: python -m pipelines.build_hier_openimages [options] [Beam options]"
    )
    positions = [text.index(f"\n{title}:\n") for _, title in GROUP_TITLES]
    assert positions == sorted(positions)


def test_the_design_defaults_are_shown(capsys):
    text = " ".join(_help(capsys).split())  # argparse wraps lines
    for flag, default in [
        ("--containment", "0.8"),
        ("--min_box_area", "0.01"),
        ("--min_pair_frequency", "50"),
        ("--min_pair_proportion", "0.1"),
    ]:
        assert re.search(rf"{flag} \S+ .*?Default: {re.escape(default)}\.", text), flag


def test_every_project_option_has_help_in_its_group(capsys):
    text = _help(capsys)
    groups = {group for group, _ in GROUP_TITLES}
    for option in OPTIONS:
        assert option.group in groups, option.name
        assert len(option.help.strip()) > 10, option.name
        assert f"  {option.flag} " in text or f"  {option.flag}\n" in text, option.name


def test_project_options_and_examples_come_before_beams(capsys):
    text = _help(capsys)
    last_project = max(text.index(f"  {option.flag}") for option in OPTIONS)
    examples = text.index("\nexamples:\n")
    assert last_project < examples < text.index("  --runner") < text.index("  --project")
