"""The mapping file source: read once, then polled and re-read when it changes."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from authenticator.errors import ConfigError
from authenticator.mapping import MappingSet, parse_mapping_text
from authenticator.mapping_model import with_group_prefixes
from webhook.settings import DEFAULT_MAX_FILE_BYTES
from webhook.sources import Failure, Update, fail_unexpected, log_unexpected

# One logger for every mapping source (webhook.sources, _file, _kube).
log = logging.getLogger("webhook.sources")


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
    text, _ = _read_file(Path(path), max_bytes)
    return with_group_prefixes(
        parse_mapping_text(
            text, source=source, where=str(path), reserved_prefixes=reserved_prefixes
        ),
        reserved_group_prefixes,
    )


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
    ) -> None:
        self.name = source
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
        """Load the file now, then watch it from a daemon thread."""
        self._stat = self._stat_now()
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

    def _stat_now(self) -> tuple[int, ...] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _poll(self, update: Update, fail: Failure) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._check(update, fail)
            except Exception as exc:  # the poll thread must survive
                log_unexpected(self.name, exc)

    def _check(self, update: Update, fail: Failure) -> None:
        current = self._stat_now()
        if current == self._stat:
            return
        if self._stop.wait(self._settle) or self._stat_now() != current:
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
            mapping_set = parse_mapping_text(
                text,
                source=self.name,
                where=str(self.path),
                reserved_prefixes=self._reserved,
            )
            mapping_set = with_group_prefixes(mapping_set, self._reserved_groups)
        except ConfigError as exc:
            fail(str(exc))
            return
        except Exception as exc:  # a bad file must not end the source
            fail_unexpected(self.name, exc, fail)
            return
        self._loaded = True
        update(mapping_set)
