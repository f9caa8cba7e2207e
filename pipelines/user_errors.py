"""How a user error reaches the entry point, wherever it was raised.

In the launcher's process a worker's InputError stays on the exception chain (the runner
re-raises it with the step name added), and hierdata.errors.user_error_in finds it by type.
From other processes (--local_workers > 1, Dataflow) only text comes back: the worker's
traceback, in which an exception is tagged by Python's own "module.Class: message" line.
`user_error` recognises that tag by the full names of the InputError classes (a registry of
InputError and its subclasses), never by words of the message. `QuietUserErrors` keeps the
runner's own log copies of such an error off stderr, so the user sees one `error:` line.
"""

import logging
import re

from hierdata.errors import InputError, user_error_in


def input_error_classes() -> dict[str, type[InputError]]:
    """InputError and every subclass defined so far, by full name ("module.QualName")."""
    found: dict[str, type[InputError]] = {}
    pending: list[type[InputError]] = [InputError]
    while pending:
        kind = pending.pop()
        found[f"{kind.__module__}.{kind.__qualname__}"] = kind
        pending.extend(kind.__subclasses__())
    return found


def _tags(classes: dict[str, type[InputError]]) -> re.Pattern:
    """A registered full name and ": " at the start of a line, or after an escaped newline
    (a worker's log entry, quoted by the runner); the message runs to the end of the line."""
    names = "|".join(re.escape(name) for name in sorted(classes, key=len, reverse=True))
    return re.compile(rf"(?:^|(?<=\\n))\s*(?P<name>{names}): (?P<message>[^\n]*)", re.MULTILINE)


def tagged_user_error(text: str) -> InputError | None:
    """The last user error a traceback text names, rebuilt as its class with its message."""
    classes = input_error_classes()
    matches = list(_tags(classes).finditer(text))
    if not matches:
        return None
    last = matches[-1]
    return classes[last["name"]](last["message"].strip())


def user_error(err: BaseException) -> InputError | None:
    """The user error behind `err`: by type on its exception chain, else tagged in the text of
    an exception on the chain (a worker's error from another process). None for a bug."""
    found = user_error_in(err)
    seen: set[int] = set()
    current: BaseException | None = err
    while found is None and current is not None and id(current) not in seen:
        seen.add(id(current))
        found = tagged_user_error(str(current))
        current = current.__cause__ or current.__context__
    return found


class QuietUserErrors(logging.Filter):
    """Drop log records that report a user error: runners log a failing step's exception (or
    a worker's log line naming it) before raising it, and the entry point prints it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        raised = record.exc_info[1] if record.exc_info else None
        if raised is not None and user_error(raised) is not None:
            return False
        return tagged_user_error(record.getMessage()) is None
