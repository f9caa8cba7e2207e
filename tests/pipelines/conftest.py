"""Shared fixtures of the pipeline tests: one V3 run on real data, the gcs emulator."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.build_hier_openimages import main

LOW = ["--min_pair_frequency", "2", "--min_pair_proportion", "0.05"]  # thresholds for tiny data


def run_ok(*args: str) -> None:
    assert main(list(args)) == 0


@pytest.fixture(scope="session")
def v3_run(shared_data, tmp_path_factory) -> Path:
    """The annotation stages on the V3 head (validation and test), in tiny chunks."""
    out = tmp_path_factory.mktemp("v3")
    run_ok(
        "--input",
        str(shared_data / "openimages-v3-head"),
        "--output",
        str(out),
        "--splits",
        "validation,test",
        "--skip_images",
        "--chunk_mib",
        "0.01",
        *LOW,
    )
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def gcs_emulator():
    """An in-memory gcp-storage-emulator; yields its URL for STORAGE_EMULATOR_HOST."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
            "--in-memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("gcp-storage-emulator did not start")
    yield host
    server.terminate()
    server.wait(timeout=10)
