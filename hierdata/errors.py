"""Errors a user can act on, and the one entry-point helper that turns them into an exit code.

Every command (pipeline, audit, train, evaluate, experiment) runs its body through
`run_command`: a user or data error becomes one `error: ...` line on stderr and exit code 2.
"""

import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_USER_ERROR = 2


class InputError(Exception):
    """Missing input, missing column, bad option: the user's to fix, never a traceback."""


class RejectBoundExceeded(InputError):
    """More input rows were rejected than --max_reject_fraction allows."""


class ImageRejectBoundExceeded(InputError):
    """More images were missing or corrupt than --max_image_reject_fraction allows, or no
    sample was written where shards were asked for."""


def user_error_in(err: BaseException) -> InputError | None:
    """The InputError that caused ``err``, following its ``__cause__``/``__context__`` chain.

    Runners re-raise a worker's exception wrapped (with the step name added); the original
    stays on the chain, so the user's error is found by type, not by its text.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, InputError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def one_line(err: InputError) -> str:
    """The error's own message on one line.

    An error relayed from another process arrives with that process's traceback in its text
    (torch's DataLoader re-raises a worker's InputError as "Caught InputError in DataLoader
    worker process 0. Original Traceback ..."): the message is then the last line that Python
    tagged with the error's class ("hierdata.errors.InputError: ..."), else the last line.
    """
    text = str(err).strip()
    if "\n" not in text:
        return text
    lines = text.splitlines()
    for kind in type(err).__mro__:
        tag = f"{kind.__module__}.{kind.__qualname__}: "
        tagged = [line[len(tag) :] for line in lines if line.startswith(tag)]
        if tagged:
            return tagged[-1].strip()
    return lines[-1].strip()


def run_command(
    body: Callable[[], int | None],
    classify: Callable[[BaseException], InputError | None] = user_error_in,
) -> int:
    """Run a command's body; a user error is one ``error:`` line and exit 2, nothing before it.

    Args:
        body: the command; returns its exit code (None means 0).
        classify: finds the user error inside any exception (default: by type, on the chain).
    Returns:
        The exit code. Other exceptions propagate: they are bugs, and their traceback is the
        report.
    """
    try:
        code = body()
    except Exception as err:
        user_error = classify(err)
        if user_error is None:
            raise
        print(f"error: {one_line(user_error)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return EXIT_OK if code is None else code
