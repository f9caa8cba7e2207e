"""The audit command on a damaged pipeline output: one `error:` line and exit code 2."""

import shutil

import pytest

from hierdata.audit.__main__ import main as audit_main


@pytest.mark.parametrize("damage", ["run.json", "parquet"])
def test_damaged_output_is_one_error_line(v3_output, tmp_path, capsys, damage) -> None:
    out = tmp_path / "out"
    shutil.copytree(v3_output[0], out)
    if damage == "run.json":
        (out / "run.json").write_text("{not json")
        start = f"error: {out}/run.json is not readable JSON"
    else:
        part = sorted((out / "tables" / "boxes").glob("*.parquet"))[0]
        part.write_bytes(part.read_bytes()[:100])
        start = "error: a file of the pipeline output is damaged"
    assert audit_main([str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(start)
