"""train, evaluate and experiment accept every option with dashes as with underscores."""

import pytest

from pipelines import cli
from training import experiment, train
from training.eval import evaluate


@pytest.mark.parametrize(
    ("parse", "argv"),
    [
        (train.parse_config, ["--max_steps", "7", "--batch_pairs", "8", "--shards", "a.tar"]),
        (evaluate.parse_config, ["--zero_shot", "--max_queries", "9", "--shards", "a.tar"]),
        (experiment.parse_config, ["--warmup_steps", "7", "--batch_pairs", "8"]),
    ],
)
def test_dashed_and_underscored_options_give_the_same_config(parse, argv):
    dashed = [token.replace("_", "-") if token.startswith("--") else token for token in argv]
    underscored = parse(argv)
    assert parse(dashed) == underscored
    assert underscored != parse([])  # the options took effect


@pytest.mark.parametrize("name", ["train", "evaluate", "experiment"])
def test_dispatcher_hands_the_command_line_to_each_command(name, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main([name, "--help"])
    assert exited.value.code == 0
    assert f"python -m training.{name}" in capsys.readouterr().out
