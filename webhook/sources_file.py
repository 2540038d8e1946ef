"""The mapping file source: read once, then polled and re-read when it changes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from authenticator.errors import ConfigError
from authenticator.mapping import MappingSet, parse_mapping_text
from authenticator.mapping_child import ChildParseError, parse_in_child
from authenticator.mapping_model import with_group_prefixes
from webhook.settings import DEFAULT_MAX_FILE_BYTES
from webhook.sources import Failure, Update, fail_unexpected, log_unexpected

# One logger for every mapping source (webhook.sources, _file, _kube).
log = logging.getLogger("webhook.sources")

# A file at least this large is parsed in a child process
# (authenticator.mapping_child) and served packed: about 10,000 entries,
# 0.2 s of parsing.
CHILD_PARSE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """A mapping file as read once: its set, content hash and stat.

    ``kubeiam server`` reads each file before it forks its workers; they start
    serving this set (shared with the arbiter's memory) instead of reading the
    file again, and reload only when the stat and then the hash change.
    """

    mapping_set: MappingSet
    digest: str
    stat: tuple[int, ...] | None


def read_mapping_file(
    path: str | os.PathLike[str],
    *,
    reserved_prefixes: Sequence[str] = (),
    source: str = "file",
    reserved_group_prefixes: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    child_parse_bytes: int | None = None,
) -> LoadedFile:
    """Read and parse a mapping file, keeping its hash and stat for reloads.

    Arguments and errors are those of :func:`load_file_mappings`;
    ``child_parse_bytes``: a file this large or larger is parsed in a child
    process and served packed (``kubeiam server``'s arbiter, whose table the
    workers share), or in this process if no child can be run.
    """
    path = Path(path)
    stat = _stat(path)
    text, digest = _read_file(path, max_bytes)
    if child_parse_bytes is not None and len(text) >= child_parse_bytes:
        with contextlib.suppress(ChildParseError):  # the same set, parsed here
            return LoadedFile(
                parse_in_child(
                    text.encode("utf-8"),
                    source=source,
                    where=str(path),
                    reserved_prefixes=reserved_prefixes,
                    reserved_group_prefixes=reserved_group_prefixes,
                ),
                digest,
                stat,
            )
    mapping_set = with_group_prefixes(
        parse_mapping_text(
            text, source=source, where=str(path), reserved_prefixes=reserved_prefixes
        ),
        reserved_group_prefixes,
    )
    return LoadedFile(mapping_set, digest, stat)


def _stat(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load_file_mappings(
    path: str | os.PathLike[str],
    *,
    reserved_prefixes: Sequence[str] = (),
    source: str = "file",
    reserved_group_prefixes: Sequence[str] = (),
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> MappingSet:
    """Read and parse a mapping file (plain, aws-auth ConfigMap or CRD objects).

    Args:
        path: The file.
        reserved_prefixes: Username prefixes this source may not grant.
        source: The source name.
        reserved_group_prefixes: Group prefixes this source may not grant.
        max_bytes: A larger file is refused before it is parsed.

    Returns:
        The mapping set.

    Raises:
        ConfigError: The file cannot be read, or is invalid (every problem listed).
    """
    return read_mapping_file(
        path,
        reserved_prefixes=reserved_prefixes,
        source=source,
        reserved_group_prefixes=reserved_group_prefixes,
        max_bytes=max_bytes,
    ).mapping_set


def _read_file(path: Path, max_bytes: int) -> tuple[str, str]:
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise ConfigError(
            f"{path}: larger than the limit of {max_bytes} bytes; refused unread "
            "(raise the file source's maxBytes in the server config to allow it)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    return text, hashlib.sha256(data).hexdigest()


class FileSource:
    """A mapping file, re-read when it changes.

    A poll thread compares the file's inode, size, mtime and ctime every
    ``poll_interval`` seconds; a change is applied only once the file has
    stayed the same for a short settle time (so a writer that truncates and
    rewrites is not read half-way), and only if its content hash differs.

    Args:
        path: The mapping file.
        reserved_prefixes: Username prefixes this source may not grant.
        poll_interval: Seconds between checks.
        source: The source name.
        reserved_group_prefixes: Group prefixes this source may not grant.
        max_bytes: A larger file is refused before it is parsed.
        initial: The file as already read (by the arbiter before it forked):
            served at start instead of reading the file again.
        child_parse_bytes: A file this large or larger is parsed in a child
            process (and served packed).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        reserved_prefixes: Sequence[str] = (),
        poll_interval: float = 0.5,
        source: str = "file",
        reserved_group_prefixes: Sequence[str] = (),
        max_bytes: int = DEFAULT_MAX_FILE_BYTES,
        initial: LoadedFile | None = None,
        child_parse_bytes: int = CHILD_PARSE_BYTES,
    ) -> None:
        self.name = source
        self._initial = initial
        self._child_parse_bytes = child_parse_bytes
        self._max_bytes = max_bytes
        self.path = Path(path)
        self._reserved = tuple(reserved_prefixes)
        self._reserved_groups = tuple(reserved_group_prefixes)
        self._interval = poll_interval
        self._settle = min(0.1, poll_interval / 2)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stat: tuple[int, ...] | None = None
        self._digest = ""
        self._loaded = False

    def start(self, update: Update, fail: Failure) -> None:
        """Load the file now (or serve ``initial``), then watch it from a thread."""
        initial, self._initial = self._initial, None
        if initial is not None and initial.stat == _stat(self.path):
            self._stat, self._digest, self._loaded = initial.stat, initial.digest, True
            update(initial.mapping_set)
        else:  # none, or the file changed since: read it now
            self._stat = _stat(self.path)
            self._load(update, fail)
        self._thread = threading.Thread(
            target=self._poll,
            args=(update, fail),
            name=f"kubeiam-file-{self.path.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self, update: Update, fail: Failure) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._check(update, fail)
            except Exception as exc:  # the poll thread must survive
                log_unexpected(self.name, exc)

    def _check(self, update: Update, fail: Failure) -> None:
        current = _stat(self.path)
        if current == self._stat:
            return
        if self._stop.wait(self._settle) or _stat(self.path) != current:
            return  # still being written: look again at the next poll
        self._stat = current
        self._load(update, fail)

    def _load(self, update: Update, fail: Failure) -> None:
        try:
            text, digest = _read_file(self.path, self._max_bytes)
            if digest == self._digest:
                return
            if self._loaded and not text.strip():
                # Editors and config tools truncate before they write: an empty
                # file is a write in progress (or a mistake), never "no mappings".
                raise ConfigError(
                    f"{self.path}: the file is empty; keeping the last good "
                    "mappings (to remove every entry, write `mapRoles: []`)"
                )
            self._digest = digest
            mapping_set = self._parse(text)
        except ConfigError as exc:
            fail(str(exc))
            return
        except ChildParseError as exc:
            self._digest, self._stat = "", None  # not the text: try again next poll
            fail(str(exc))
            return
        except Exception as exc:  # a bad file must not end the source
            fail_unexpected(self.name, exc, fail)
            return
        self._loaded = True
        update(mapping_set)

    def _parse(self, text: str) -> MappingSet:
        """Parse here, or a large file in a child process (off this process's CPU)."""
        if len(text) >= self._child_parse_bytes:
            return parse_in_child(
                text.encode("utf-8"),
                source=self.name,
                where=str(self.path),
                reserved_prefixes=self._reserved,
                reserved_group_prefixes=self._reserved_groups,
            )
        return with_group_prefixes(
            parse_mapping_text(
                text,
                source=self.name,
                where=str(self.path),
                reserved_prefixes=self._reserved,
            ),
            self._reserved_groups,
        )
