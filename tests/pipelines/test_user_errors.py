"""User errors reach the entry point by type in-process, by their tagged line from workers."""

import logging

import pytest

from hierdata.errors import InputError, RejectBoundExceeded
from pipelines.user_errors import (
    QuietUserErrors,
    input_error_classes,
    tagged_user_error,
    user_error,
)

WORKER_TRACEBACK = """Traceback (most recent call last):
  File "/work/main/hierdata/runinfo.py", line 138, in check_reject_bound
    raise RejectBoundExceeded(
hierdata.errors.RejectBoundExceeded: 2 of 10 input rows rejected; see tables/rejects

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "apache_beam/runners/common.py", line 1623, in _reraise_augmented
hierdata.errors.RejectBoundExceeded: 2 of 10 input rows rejected; see tables/rejects \
[while running 'Run record/Write run.json']
"""


def test_registry_holds_input_error_and_its_subclasses() -> None:
    classes = input_error_classes()
    assert classes["hierdata.errors.InputError"] is InputError
    assert classes["hierdata.errors.RejectBoundExceeded"] is RejectBoundExceeded


def test_in_process_error_is_found_on_the_chain_by_type() -> None:
    try:
        try:
            raise RejectBoundExceeded("too many rejects")
        except RejectBoundExceeded as err:
            raise RuntimeError("step failed") from err
    except RuntimeError as wrapped:
        found = user_error(wrapped)
    assert isinstance(found, RejectBoundExceeded) and str(found) == "too many rejects"


def test_worker_traceback_text_gives_its_last_tagged_error() -> None:
    found = user_error(RuntimeError(WORKER_TRACEBACK))
    assert type(found) is RejectBoundExceeded
    assert str(found) == (
        "2 of 10 input rows rejected; see tables/rejects "
        "[while running 'Run record/Write run.json']"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Traceback ...\nValueError: bad value",  # not an InputError: a bug
        "the message mentions hierdata.errors.InputError: in passing",  # not at a line start
        "Traceback ...\nmy.hierdata.errors.InputError: lookalike",  # another module's class
        "InputError: no module name, so not the tag",
    ],
)
def test_text_without_a_tagged_input_error_is_not_a_user_error(text: str) -> None:
    assert tagged_user_error(text) is None
    assert user_error(RuntimeError(text)) is None


def test_tag_after_an_escaped_newline_in_a_relayed_log_line() -> None:
    relayed = 'Worker: message: "Traceback\\nhierdata.errors.InputError: input file not found"'
    assert isinstance(tagged_user_error(relayed), InputError)


def _record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("apache_beam", logging.ERROR, __file__, 1, message, (), exc_info)


def test_log_filter_drops_only_records_of_user_errors() -> None:
    quiet = QuietUserErrors()
    assert not quiet.filter(_record("step failed", RejectBoundExceeded("x")))
    assert not quiet.filter(_record(WORKER_TRACEBACK))
    assert quiet.filter(_record("step failed", ValueError("a bug")))
    assert quiet.filter(_record("an ordinary warning"))
