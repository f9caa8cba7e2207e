"""Live progress of a local run and its closing summary (the entry point prints both on stdout,
so that stderr holds only logs and, for a user error, its one `error:` line).

Workers (DoFns in this process, or in the FnApiRunner's worker processes) add counts with
`add(name, n)` and `flush()` at the end of each bundle: each process rewrites one small JSON
file of its running totals in the folder the launcher names in HIER_PROGRESS_DIR, at most
twice a second. The launcher's `reporting` thread sums those files and prints one line at a
bounded rate: rewritten in place every 2 s on a terminal, a new line every 15 s otherwise. On
Dataflow the variable is unset, so workers write nothing (the job page shows element counts)
and the launcher prints the job's id, console URL and state (build_hier_openimages' logging).
"""

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TextIO

ENV = "HIER_PROGRESS_DIR"
TERMINAL_SECONDS = 2.0
LOG_SECONDS = 15.0
_FLUSH_SECONDS = 0.5

# Counter name -> how the line shows it, in pipeline order; the last one counted is the stage.
STAGES = (
    ("rows_read", "read annotations", "rows read"),
    ("images_mined", "mine images", "images mined"),
    ("samples_planned", "plan samples", "samples planned"),
    ("images_decoded", "decode images", "images decoded"),
    ("shards_written", "write shards", "shards written"),
)

_lock = threading.Lock()
_counts: dict[str, int] = {}
_dirty = False
_last_flush = 0.0


def add(name: str, n: int = 1) -> None:
    """Count n more of `name` in this process (a no-op outside a reporting local run)."""
    global _dirty
    if not n or ENV not in os.environ:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + int(n)
        _dirty = True
    if time.monotonic() - _last_flush >= _FLUSH_SECONDS:
        flush()


def flush() -> None:
    """Write this process's totals to its file in the progress folder (atomically)."""
    global _dirty, _last_flush
    folder = os.environ.get(ENV)
    if not folder or not _dirty or not os.path.isdir(folder):
        return
    with _lock:
        text = json.dumps(_counts)
        _dirty = False
        _last_flush = time.monotonic()
    path = os.path.join(folder, f"{os.getpid()}.json")
    temporary = f"{path}.{threading.get_ident()}.tmp"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def totals(folder: str) -> dict[str, int]:
    """The counts of every process that wrote to `folder`, summed."""
    summed: dict[str, int] = {}
    for name in os.listdir(folder):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name)) as handle:
                counts = json.load(handle)
        except (OSError, ValueError):  # being replaced right now: next time
            continue
        for key, value in counts.items():
            summed[key] = summed.get(key, 0) + int(value)
    return summed


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def progress_line(counts: Mapping[str, int], elapsed: float) -> str:
    """One progress line: elapsed time, the current stage, every count so far."""
    done = [(key, stage, what) for key, stage, what in STAGES if counts.get(key)]
    stage = done[-1][1] if done else "start"
    parts = [f"{counts[key]:,} {what}" for key, _, what in done]
    if counts.get("images_rejected"):
        parts.append(f"{counts['images_rejected']:,} image rejects")
    return f"progress {_clock(elapsed)} stage: {stage}" + (
        " | " + ", ".join(parts) if parts else ""
    )


@contextlib.contextmanager
def reporting(enabled: bool, stream: TextIO | None = None) -> Iterator[None]:
    """Print progress lines while the block runs (a local run); nothing when not enabled."""
    if not enabled:
        yield
        return
    stream = stream or sys.stderr
    terminal = stream.isatty()
    interval = TERMINAL_SECONDS if terminal else LOG_SECONDS
    folder = tempfile.mkdtemp(prefix="hier-progress-")
    previous = os.environ.get(ENV)
    os.environ[ENV] = folder
    started = time.monotonic()
    stop = threading.Event()
    shown = [False]

    def report() -> None:
        while not stop.wait(interval):
            line = progress_line(totals(folder), time.monotonic() - started)
            stream.write(f"\r\033[K{line}" if terminal else f"{line}\n")
            stream.flush()
            shown[0] = True

    thread = threading.Thread(target=report, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if terminal and shown[0]:
            stream.write("\r\033[K")  # the summary or the error line takes its place
            stream.flush()
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def _by_reason(per_reason: Mapping[str, int]) -> str:
    ordered = sorted(per_reason.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} {n:,}" for reason, n in ordered)


def summary_lines(record: Mapping, root: str) -> list[str]:
    """The closing summary of a run from its run.json: status, counts, rejects by reason,
    image rejects, where the outputs are."""
    counts = record.get("counts", {})

    def total(key: str) -> int:
        return sum(counts.get(key, {}).values())

    rejects: dict[str, int] = {}
    for per_reason in counts.get("rejects", {}).values():
        for reason, n in per_reason.items():
            rejects[reason] = rejects.get(reason, 0) + n
    rejected = sum(rejects.values())
    lines = [
        f"status: {record.get('status')} in {record.get('elapsed_seconds', 0):.1f} s "
        f"(run fingerprint {record.get('fingerprint')})",
        f"rows: {total('lines'):,} read, {total('rows'):,} valid, {rejected:,} rejected"
        + (f" ({_by_reason(rejects)})" if rejects else ""),
        f"boxes: {total('boxes'):,} in {total('images'):,} images, {total('kept_boxes'):,} kept; "
        f"pairs: {total('image_box_pairs'):,} image⊃box, {total('candidate_pairs'):,} box⊃box "
        f"candidates, {total('accepted_pairs'):,} accepted, {total('cross_image_pairs'):,} "
        "cross-image",
    ]
    images = record.get("images")
    if images is not None:
        lines.append(
            f"images: {images['planned']:,} planned, {images['written']:,} written to shards, "
            f"{images['rejected']:,} rejected"
            + (f" ({_by_reason(images['by_reason'])})" if images["by_reason"] else "")
        )
    shards = record.get("shards") or {}
    outputs = [f"{root}/run.json", f"{root}/tables/", f"{root}/trees/"]
    if shards:
        outputs.append(f"{root}/shards/")
        lines.append(
            "shards: "
            + ", ".join(
                f"{split} {s['shards']:,} ({s['samples']:,} samples, {s['bytes'] / 1e6:.1f} MB)"
                for split, s in sorted(shards.items())
            )
        )
    lines.append("outputs: " + ", ".join(outputs) + f" (report: python -m hierdata.audit {root})")
    return lines
