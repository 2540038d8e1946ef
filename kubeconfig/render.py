"""YAML in and out, atomic private writes, and where a kubeconfig may be written.

The I/O shell of the kubeconfig package and its only door to PyYAML.

The symlink rule (enforced by :func:`check_write_target`): kubeiam writes
credentials-bearing files, so it never lets a link steer them somewhere the
user did not choose. When the path to write goes through a symbolic link
(the file itself or any directory above it):

1. a link as the last component must point at an existing file: a dangling
   link would create a new file wherever the link points;
2. the resolved file, when it exists, must be a regular file owned by the
   current user;
3. the resolved file's directory must be owned by the current user (or
   root) and not writable by group or others, so nobody else can swap the
   file or the temporary file.

The write then goes to the resolved file (temporary file in its directory,
fsync, rename), so the link itself stays a link, as dotfile managers expect.
A path without links only has to be, if it exists, a regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from authenticator import atomicfile, yamlio
from kubeconfig.errors import KubeconfigError

__all__ = [
    "check_write_target",
    "dump_yaml",
    "ensure_private_dir",
    "first_path_defining",
    "kubeconfig_paths",
    "load_yaml_file",
    "write_atomic",
]


dump_yaml = yamlio.dump_yaml


def load_yaml_file(path: Path) -> tuple[object, bytes] | None:
    """Read and parse a YAML file.

    Args:
        path: The file.

    Returns:
        ``(document, raw bytes)``, or None when the file does not exist.

    Raises:
        KubeconfigError: The file cannot be read, is not UTF-8, or is not
            YAML (the message names the file and the line).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KubeconfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KubeconfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        return yamlio.load_yaml(text), raw
    except yamlio.YAMLError as exc:
        raise KubeconfigError(f"{path}: {exc}") from exc


def ensure_private_dir(path: Path) -> None:
    """Create a directory (and its missing parents) with mode 0700 when it is missing.

    Every directory created here is 0700 whatever the umask (``mkdir -p``
    and ``Path.mkdir(parents=True)`` create the parents 0777 minus the umask,
    so under umask 000 ``~/.kube`` would be world-writable). Existing
    directories are left as they are.

    Args:
        path: The directory.

    Raises:
        KubeconfigError: It cannot be created or is not a directory.
    """
    missing: list[Path] = []
    here = path
    while not os.path.lexists(here) and here != here.parent:
        missing.append(here)
        here = here.parent
    try:
        for directory in reversed(missing):
            try:
                os.mkdir(directory, 0o700)
            except FileExistsError:
                continue  # created meanwhile by someone else: leave it
            os.chmod(directory, 0o700)
    except OSError as exc:
        raise KubeconfigError(
            f"{directory}: cannot create directory: {exc.strerror}"
        ) from exc
    if not path.is_dir():
        raise KubeconfigError(f"{path}: exists and is not a directory")


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` atomically and durably (:mod:`authenticator.atomicfile`).

    The temporary file has ``mode`` from its creation, so the content is never
    readable by others, and readers see either the old or the new file.

    Args:
        path: The file to write (its directory must exist).
        data: The new content.
        mode: The file's permission bits, e.g. 0o600.

    Raises:
        KubeconfigError: The file cannot be written.
    """
    try:
        atomicfile.write_atomic(path, data, mode=mode, durable=True)
    except OSError as exc:
        raise KubeconfigError(f"{path}: cannot write: {exc.strerror}") from exc


def kubeconfig_paths(
    explicit: str | None, env: Mapping[str, str], home: Path
) -> list[Path]:
    """List the kubeconfig files kubectl would load, the way kubectl finds them.

    ``--kubeconfig`` wins; else each non-empty entry of ``KUBECONFIG`` (split
    on ``os.pathsep``, duplicates dropped); else ``~/.kube/config``.

    Args:
        explicit: ``--kubeconfig``.
        env: The environment.
        home: The user's home directory.

    Returns:
        The candidate files, in order; the first is where new entries go.
    """
    if explicit:
        return [Path(explicit).expanduser()]
    listed = [
        Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p
    ]
    if listed:
        return list(dict.fromkeys(listed))
    return [home / ".kube" / "config"]


def _has_link(path: Path) -> bool:
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        if current.is_symlink():
            return True
    return False


def check_write_target(path: Path, *, uid: int | None = None) -> Path:
    """Apply the symlink rule (module docstring) and return the file to write.

    Args:
        path: The kubeconfig path as given.
        uid: The current user (default ``os.getuid()``).

    Returns:
        The resolved path; its directory exists or will be created 0700.

    Raises:
        KubeconfigError: The rule refuses the path; the message names the
            link and where it leads.
    """
    me = os.getuid() if uid is None else uid
    absolute = Path(os.path.abspath(path))
    if not _has_link(absolute):
        if absolute.exists() and not absolute.is_file():
            raise KubeconfigError(f"{absolute}: exists and is not a regular file")
        return absolute
    real = Path(os.path.realpath(absolute))
    if absolute.is_symlink() and not real.exists():
        raise KubeconfigError(
            f"{absolute}: refusing to follow a dangling symlink to {real} "
            "(it would create a new file there)"
        )
    if real.exists():
        info = real.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise KubeconfigError(
                f"{absolute}: links to {real}, which is not a regular file"
            )
        if info.st_uid != me:
            raise KubeconfigError(
                f"{absolute}: refusing to follow a symlink to {real}, "
                "owned by another user"
            )
    parent = real.parent
    try:
        pinfo = parent.stat()
    except FileNotFoundError as exc:
        raise KubeconfigError(
            f"{absolute}: links into {parent}, which does not exist"
        ) from exc
    if pinfo.st_uid not in (me, 0):
        raise KubeconfigError(
            f"{absolute}: refusing to follow a symlink into {parent}, "
            "owned by another user"
        )
    if stat.S_IMODE(pinfo.st_mode) & 0o022:
        raise KubeconfigError(
            f"{absolute}: refusing to follow a symlink into {parent}, "
            "which is writable by group or others"
        )
    return real


def first_path_defining(paths: Sequence[Path], section: str, name: str) -> Path | None:
    """Return the first of ``paths`` whose ``section`` has an entry called ``name``.

    Unreadable or malformed files are skipped here; the file that is finally
    written is checked strictly by the caller.

    Args:
        paths: Candidate kubeconfig files.
        section: ``clusters``, ``users`` or ``contexts``.
        name: The entry name.

    Returns:
        The file, or None.
    """
    for path in paths:
        try:
            loaded = load_yaml_file(path)
        except KubeconfigError:
            continue
        if loaded is None or not isinstance(loaded[0], dict):
            continue
        entries = loaded[0].get(section)
        if isinstance(entries, list) and any(
            isinstance(e, dict) and e.get("name") == name for e in entries
        ):
            return path
    return None
