"""The one way kubeiam replaces a file: write a private temp file, rename it over.

Used by the kubeconfig and PKI writers (durable: the data and the directory
entry are fsynced before the call returns) and by the token cache (not
durable: a lost cache entry only costs one STS-free re-mint, and the token
path must stay fast). Either way readers see the old file or the new one,
never a part, and the content is never readable by others on the way.
Stdlib only, so the token path can import it at no cost.
"""

from __future__ import annotations

import os
import time

__all__ = ["write_atomic"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically.

    The temporary file is created next to ``path`` with ``mode`` from the
    start (``O_EXCL``, no symlink followed) and renamed over ``path``; on any
    failure it is removed and ``path`` is left as it was.

    Args:
        path: The file to write (its directory must exist).
        data: The new content.
        mode: The file's permission bits, e.g. 0o600.
        durable: fsync the file before the rename and the directory after it.

    Raises:
        OSError: The file cannot be written (``path`` is unchanged).
    """
    directory, name = os.path.split(os.fspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, _FLAGS, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have narrowed it
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if durable:  # the rename is durable only once the directory entry is on disk
        _fsync_directory(directory or ".")


# No contextlib here: the token cache imports this module on kubectl's hot path,
# where every extra stdlib module shows in the start-up time (a test pins the list).
def _unlink_quietly(path: str) -> None:
    try:  # noqa: SIM105 - contextlib stays off the token hot path
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory: str) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename stands
    finally:
        os.close(dir_fd)
