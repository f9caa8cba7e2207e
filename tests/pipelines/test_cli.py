"""The `hier-openimages` console command and option spellings (dashes or underscores)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hierdata.cli_args import underscore_option_names
from pipelines import cli
from pipelines.arguments import known_flags

from .conftest import LOW

KNOWN = {"--max_steps", "--batch_pairs", "--zero_shot", "--job-server-timeout", "--output"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--max-steps", "5"], ["--max_steps", "5"]),
        (["--max-steps=5"], ["--max_steps=5"]),
        (["--max_steps", "5"], ["--max_steps", "5"]),
        (["--zero-shot"], ["--zero_shot"]),
        # another library's dashed flag is kept as that library spells it
        (["--job-server-timeout", "60"], ["--job-server-timeout", "60"]),
        # unknown names, values and positionals are never touched
        (["--no-such-option", "a-b"], ["--no-such-option", "a-b"]),
        (["--output", "--max-steps"], ["--output", "--max_steps"]),
        (["out-dir", "--", "--max-steps"], ["out-dir", "--", "--max-steps"]),
    ],
)
def test_dashed_spellings_of_known_options_become_underscores(argv, expected):
    assert underscore_option_names(argv, KNOWN) == expected


def test_beam_spellings_keep_working():
    """Beam's options are underscores except --job-server-timeout; both stay accepted."""
    flags = known_flags()
    assert "--job-server-timeout" in flags and "--dataflow_job_file" in flags
    argv = ["--dataflow-job-file", "job.json", "--temp-location=gs://b/t", "--job-server-timeout"]
    assert underscore_option_names(argv, flags) == [
        "--dataflow_job_file",
        "job.json",
        "--temp_location=gs://b/t",
        "--job-server-timeout",
    ]


def test_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in ("build", "audit", "train", "evaluate", "experiment"):
        assert f"\n  {name} " in text


def test_unknown_subcommand_is_one_error_line(capsys):
    assert cli.main(["bild"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown subcommand 'bild'")


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "hier-openimages"
    if not script.exists():
        pytest.skip("project not installed in this interpreter's environment")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "experiment" in done.stdout


def test_build_accepts_dashed_options(shared_data, v3_run, tmp_path):
    """The same run as the v3_run fixture (underscores), spelt with dashes via the dispatcher:
    the resolved options are the same."""
    dashed = [flag.replace("_", "-") if flag.startswith("--") else flag for flag in LOW]
    argv = [
        "build",
        "--input",
        str(shared_data / "openimages-v3-head"),
        "--output",
        str(tmp_path),
        "--splits",
        "validation,test",
        "--skip-images",
        "--chunk-mib=0.01",
        *dashed,
    ]
    assert cli.main(argv) == 0
    ours = json.loads((tmp_path / "run.json").read_text())["options"]
    theirs = json.loads((v3_run / "run.json").read_text())["options"]
    ours.pop("output"), theirs.pop("output")
    assert ours == theirs
    assert ours["min_pair_frequency"] == 2 and ours["skip_images"] is True
