"""Parse a large mapping text in a child process and serve the packed result.

A 100,000-entry mapping file is about 1.8 s of CPU to parse and check. Done in
a serving process, that work holds the GIL in 5 ms slices and its million
short-lived objects set off garbage collections, so reviews answered by the
same process wait; done by every worker at once, it also takes every core.
:func:`parse_in_child` runs the parse in ``python -m
authenticator.mapping_child`` at a lower CPU priority (``nice``, and
``SCHED_IDLE`` on Linux). The child answers in length-prefixed frames: a
:mod:`marshal` header, then the roles and the users as
:class:`~authenticator.mapping_model.PackedEntries` buffers. The serving
process builds no entries at all: it maps the answer and serves the lookups
from it (about 25 MB for 100,000 entries, against 40 MB of objects and the
fragmented pages they leave behind).

The text goes in and the answer comes back through unlinked temporary files:
the child reads the exact bytes the caller read and hashed (never a second
read of the mapping file) and gets the options as one JSON argument. It
answers ``{"error": message}`` for an invalid text (the same
:class:`~authenticator.errors.ConfigError` message an in-process parse gives)
or a header and the packed entries.
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from authenticator.errors import ConfigError, KubeIAMError
from authenticator.mapping import MappingSet, parse_mapping_text
from authenticator.mapping_model import MappingEntry, PackedEntries, with_group_prefixes

__all__ = [
    "CHILD_NICE",
    "ChildParseError",
    "parse_in_child",
    "quiet_section",
    "release_gradually",
]

# How much lower the child's CPU priority is than the server's.
CHILD_NICE = 19
# Buffers per packed entry list (PackedEntries.pack).
_PACKED = 6
# A parse that takes longer than this is stopped (the last good set stays).
_TIMEOUT_S = 600.0
_LENGTH = struct.Struct("<Q")


class ChildParseError(KubeIAMError):
    """The child process failed for a reason other than an invalid text."""


def parse_in_child(
    data: bytes,
    *,
    source: str,
    where: str,
    reserved_prefixes: Sequence[str] = (),
    reserved_group_prefixes: Sequence[str] = (),
    nice: int = CHILD_NICE,
) -> MappingSet:
    """Parse mapping text (UTF-8 bytes) in a child process.

    Args:
        data: The file's bytes, as read.
        source: The source name of the set.
        where: The file name used in problems.
        reserved_prefixes: Username prefixes the source may not grant.
        reserved_group_prefixes: Group prefixes the source may not grant.
        nice: The child's niceness increment.

    Returns:
        The same set :func:`authenticator.mapping.parse_mapping_text` (then
        ``with_group_prefixes``) returns in process.

    Raises:
        ConfigError: The text is invalid (the in-process message).
        ChildParseError: The child could not be run or did not answer.
    """
    options = {
        "source": source,
        "where": where,
        "reserved_prefixes": list(reserved_prefixes),
        "reserved_group_prefixes": list(reserved_group_prefixes),
        "nice": nice,
    }
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    # The text goes in and the answer comes back through unlinked temporary
    # files: one write here, no pipe to pump with the GIL held, and the answer
    # is mapped, not copied into this process's heap (freed with the set, to
    # the last page, and shared with the workers when the arbiter parses).
    with tempfile.TemporaryFile() as text_in, tempfile.TemporaryFile() as answer:
        text_in.write(data)
        text_in.seek(0)
        try:
            done = subprocess.run(  # noqa: S603 - our own module, no shell
                [
                    sys.executable,
                    "-m",
                    "authenticator.mapping_child",
                    json.dumps(options),
                ],
                stdin=text_in,
                stdout=answer,
                stderr=subprocess.PIPE,
                timeout=_TIMEOUT_S,
                env=env,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ChildParseError(
                f"cannot run the mapping parser process: {exc}"
            ) from exc
        if done.returncode != 0:
            last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise ChildParseError(
                f"the mapping parser process exited {done.returncode}"
                + (f": {last[0][:200]}" if last else "")
            )
        if os.fstat(answer.fileno()).st_size == 0:
            raise ChildParseError("the mapping parser gave no answer")
        mapped = mmap.mmap(answer.fileno(), 0, access=mmap.ACCESS_READ)
    return _read_answer(mapped)


def _frames(out: bytes | mmap.mmap) -> Iterator[memoryview]:
    view = memoryview(out)
    offset = 0
    while offset < len(view):
        if offset + _LENGTH.size > len(view):
            raise ChildParseError("the mapping parser's answer is cut short")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += _LENGTH.size
        if offset + length > len(view):
            raise ChildParseError("the mapping parser's answer is cut short")
        yield view[offset : offset + length]
        offset += length


# Bulk work in a serving process (freeing a large table of objects): the
# collector paused and the GIL handed over every 0.5 ms instead of 5 ms,
# while any such work runs (counted: sources reload from their own threads).
_QUIET_LOCK = threading.Lock()
_QUIET_SWITCH_S = 0.0005
_quiet_depth = 0
_quiet_saved: tuple[bool, float] = (True, 0.005)


@contextlib.contextmanager
def quiet_section() -> Iterator[None]:
    """Pause the collector and hand the GIL over often (bulk work beside requests)."""
    global _quiet_depth, _quiet_saved
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _quiet_saved = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(min(_quiet_saved[1], _QUIET_SWITCH_S))
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                sys.setswitchinterval(_quiet_saved[1])
                if _quiet_saved[0]:
                    gc.enable()


_RELEASE_CHUNK = 1_000


def release_gradually(retired: list[MappingSet]) -> None:
    """Drop replaced sets a thousand entries at a time.

    Freeing a 100,000-entry set of objects at once is one long stretch of
    deallocation that holds the GIL. The entries are held in a list, the set
    is dropped (only references go), and the entries are then dropped in
    chunks with request threads let in between. Packed entries
    (:class:`~authenticator.mapping_model.PackedEntries`) are a few buffers
    and simply go.

    Args:
        retired: The replaced sets, taken out of the list here; the list
            must hold the caller's only reference (a request still reading
            an older snapshot keeps its set until it is done).
    """
    entries: list[MappingEntry] = []
    while retired:
        mapping_set = retired.pop()
        for part in (mapping_set.roles, mapping_set.users):
            if not isinstance(part, PackedEntries):
                entries += part
        del mapping_set
    with quiet_section():
        while entries:
            del entries[-_RELEASE_CHUNK:]
            time.sleep(0)


def _read_answer(out: bytes | mmap.mmap) -> MappingSet:
    frames = list(_frames(out))
    # marshal our own child wrote, into a private temporary file
    header = marshal.loads(frames[0]) if frames else None  # noqa: S302
    if not isinstance(header, dict):
        raise ChildParseError("the mapping parser gave no answer")
    if "error" in header:
        raise ConfigError(str(header["error"]))
    if len(frames) != 1 + 2 * _PACKED:
        raise ChildParseError("the mapping parser's answer is incomplete")
    try:
        roles = PackedEntries(frames[1 : 1 + _PACKED])
        users = PackedEntries(frames[1 + _PACKED :])
    except ValueError as exc:
        raise ChildParseError(f"the mapping parser's answer is damaged: {exc}") from exc
    mapping_set = MappingSet(
        str(header["source"]),
        roles,
        users,
        tuple(header["accounts"]),
        tuple(header["reserved_prefixes"]),
        tuple(header["reserved_group_prefixes"]),
    )
    if mapping_set.entries != header["entries"]:
        raise ChildParseError("the mapping parser's answer is incomplete")
    return mapping_set


def _write(out: BinaryIO, frame: dict[str, object] | bytes) -> None:
    blob = frame if isinstance(frame, bytes) else marshal.dumps(frame)
    out.write(_LENGTH.pack(len(blob)))
    out.write(blob)


def _answer(options: dict[str, object], data: bytes, out: BinaryIO) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _write(out, {"error": f"{options['where']}: not UTF-8 text"})
        return
    try:
        mapping_set = with_group_prefixes(
            parse_mapping_text(
                text,
                source=str(options["source"]),
                where=str(options["where"]),
                reserved_prefixes=_texts(options["reserved_prefixes"]),
            ),
            _texts(options["reserved_group_prefixes"]),
        )
    except ConfigError as exc:
        _write(out, {"error": str(exc)})
        return
    _write(
        out,
        {
            "source": mapping_set.source,
            "accounts": list(mapping_set.accounts),
            "reserved_prefixes": list(mapping_set.reserved_prefixes),
            "reserved_group_prefixes": list(mapping_set.reserved_group_prefixes),
            "entries": mapping_set.entries,
        },
    )
    for entries in (mapping_set.roles, mapping_set.users):
        for buffer in PackedEntries.pack(entries):
            _write(out, buffer)


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def main(argv: Sequence[str]) -> int:
    """The child: options as JSON in argv[0], the text on stdin, frames on stdout."""
    options = json.loads(argv[0])
    with contextlib.suppress(OSError):  # not allowed here: the same priority
        os.nice(int(options.get("nice", 0)))
    if options.get("nice") and hasattr(os, "sched_setscheduler"):
        # SCHED_IDLE (Linux): run only on a core nothing else wants, and give
        # way at once when a server thread wakes (nice alone lets a slice run out).
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    gc.disable()  # a short-lived process: nothing to collect
    _answer(options, sys.stdin.buffer.read(), sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
