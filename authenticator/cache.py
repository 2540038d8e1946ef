"""The on-disk token cache of ``kubeiam token`` (docs/token-format.md).

kubectl runs the exec plugin at least once per command and keeps nothing
between processes, so this cache is what makes repeated kubectl calls cheap
(docs/token-format.md, the Kubernetes docs, client-go credential plugins).

- One file per key, named by a BLAKE2b-256 hash of the key: cluster ID,
  profile, role, session name, external ID, ``--forward-session-name``,
  region, endpoint, and a fingerprint of everything else that decides the
  signing identity (:func:`credentials_fingerprint`): the shared credentials
  and config files' paths and identity (device, inode, size, mtime) and the
  credential variables of the environment (hashed, never stored in clear).
  Two credentials files with the same profile name, keys rotated in place or
  a new session token in the environment are all a miss, never another
  credential's token; the fingerprint costs two ``stat`` calls.
- Directory 0700, files 0600. A directory or file that is group- or
  world-accessible, not ours, or not a plain file/directory is refused: the
  cache is ignored with a warning and a fresh token is minted.
- Files are written to a private temporary file (``O_CREAT|O_EXCL``, 0600) and
  renamed into place, so readers never see half a file; writers take an
  exclusive ``flock`` on a per-key lock file so concurrent kubectl processes
  mint once and share the token.
- A token is reused while at least 60 s of its advertised life remain; an
  unreadable or inconsistent entry is treated as absent and replaced.

Stdlib only: this module runs on every cache hit, where botocore must not load;
its value types are :class:`~authenticator.exec_credential.FrozenRecord` for the
start-up reason given in :mod:`authenticator.exec_credential`, and for the same
reason paths are plain strings (no pathlib) and the lock is a small class (no
contextlib).
"""

from __future__ import annotations

import errno
import os
import stat
import time

from authenticator._startup import (
    UTC,
    FrozenRecord,
    datetime,
    json_dumps,
    json_loads,
    timedelta,
)
from authenticator.atomicfile import write_atomic
from authenticator.errors import KubeIAMError
from authenticator.wire import ADVERTISED_TOKEN_LIFETIME

# The typing names are for the type checker only: a cache hit must not pay for
# importing collections.abc, contextlib or pathlib (see token_cli).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractContextManager
    from types import TracebackType

try:
    # CPython's built-in BLAKE2 (present since 3.6): importing hashlib would load
    # OpenSSL, ~4 ms on every kubectl call, for a file name.
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import blake2b

# docs/token-format.md: reuse a cached token while at least 60 s of its life remain.
MIN_REMAINING = timedelta(seconds=60)
# STS accepts X-Amz-Date up to 5 minutes in the future (docs/token-format.md); an
# entry "signed" later than that means the clock jumped back: do not trust it.
_MAX_FUTURE_SKEW = timedelta(minutes=5)
# Entry format version, bumped on incompatible changes.
_ENTRY_VERSION = 2
# How long a process waits for another one minting the same token.
DEFAULT_LOCK_TIMEOUT_S = 10.0
_LOCK_POLL_S = 0.02
# Environment variables that decide which credentials botocore signs with
# (botocore.credentials: env, assume-role-with-web-identity and container
# providers); their values go into the fingerprint hashed.
CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
)
# Permission bits: private directory and files (docs/token-format.md).
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_GROUP_OTHER = 0o077


class CacheRefusedError(KubeIAMError, OSError):
    """The cache location is not private or not usable; the caller mints without it."""


class CacheKey(FrozenRecord):
    """What a cached token depends on.

    Attributes:
        cluster_id: The signed ``x-k8s-aws-id``.
        profile: The AWS profile name in effect.
        role_arn: The role assumed before signing, or ``""``.
        region: The configured region.
        endpoint: The STS endpoint URL override, or ``default[+fips][+dualstack]``
            for the region's own host (resolved only when minting).
        credentials: :func:`credentials_fingerprint` of the files and
            environment the signing credentials come from.
        session_name: The role session name (``-s``), or ``""``.
        external_id: The external ID (``-e``), or ``""``.
        forward_session_name: Whether the caller's session name is forwarded.
    """

    __slots__ = (
        "cluster_id",
        "credentials",
        "endpoint",
        "external_id",
        "forward_session_name",
        "profile",
        "region",
        "role_arn",
        "session_name",
    )
    cluster_id: str
    credentials: str
    endpoint: str
    external_id: str
    forward_session_name: bool
    profile: str
    region: str
    role_arn: str
    session_name: str

    def __init__(
        self,
        *,
        cluster_id: str,
        profile: str,
        role_arn: str,
        region: str,
        endpoint: str,
        credentials: str = "",
        session_name: str = "",
        external_id: str = "",
        forward_session_name: bool = False,
    ) -> None:
        self._set(
            cluster_id=cluster_id,
            profile=profile,
            role_arn=role_arn,
            region=region,
            endpoint=endpoint,
            credentials=credentials,
            session_name=session_name,
            external_id=external_id,
            forward_session_name=forward_session_name,
        )

    def digest(self) -> str:
        """Return the hex BLAKE2b-256 of the key: the cache file's name."""
        raw = json_dumps(self.as_dict(), sort_keys=True)
        return blake2b(raw.encode("utf-8"), digest_size=32).hexdigest()


class CachedToken(FrozenRecord):
    """A token and its times.

    Attributes:
        token: The bearer token (hidden in ``repr``).
        signed_at: Its SigV4 signing time.
        expires_at: Its advertised expiry.
    """

    __slots__ = ("expires_at", "signed_at", "token")
    _SECRET_FIELDS = frozenset({"token"})
    expires_at: datetime
    signed_at: datetime
    token: str

    def __init__(self, token: str, signed_at: datetime, expires_at: datetime) -> None:
        self._set(token=token, signed_at=signed_at, expires_at=expires_at)


def is_fresh(entry: CachedToken, *, now: datetime) -> bool:
    """Return whether a cached token may be handed out at ``now``.

    Args:
        entry: The cached token.
        now: The current time (aware).
    """
    if entry.signed_at > now + _MAX_FUTURE_SKEW:
        return False
    if entry.expires_at - entry.signed_at > ADVERTISED_TOKEN_LIFETIME:
        return False
    return entry.expires_at - now >= MIN_REMAINING


def build_entry(key: CacheKey, entry: CachedToken) -> bytes:
    """Serialise a cache entry.

    Args:
        key: The key (stored in full, to detect digest collisions and stray files).
        entry: The token.
    """
    doc = {
        "version": _ENTRY_VERSION,
        "key": key.as_dict(),
        "token": entry.token,
        "signedAt": int(entry.signed_at.timestamp()),
        "expiresAt": int(entry.expires_at.timestamp()),
    }
    return json_dumps(doc).encode("utf-8")


def parse_entry(raw: bytes, key: CacheKey) -> CachedToken | None:
    """Parse a cache file; anything unexpected is None (a miss).

    Args:
        raw: The file's bytes.
        key: The key the file is expected to hold.
    """
    try:
        doc = json_loads(raw.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("version") != _ENTRY_VERSION:
        return None
    if doc.get("key") != key.as_dict():
        return None
    token, signed, expires = doc.get("token"), doc.get("signedAt"), doc.get("expiresAt")
    if not (
        isinstance(token, str)
        and token
        and type(signed) is int
        and type(expires) is int
    ):
        return None
    try:
        return CachedToken(
            token=token,
            signed_at=datetime.fromtimestamp(signed, UTC),
            expires_at=datetime.fromtimestamp(expires, UTC),
        )
    except (ValueError, OverflowError, OSError):
        return None


def normalise_path(path: str) -> str:
    """Return ``path`` spelled as ``str(pathlib.PurePosixPath(path))`` does.

    Empty and ``.`` components and trailing slashes go, ``..`` stays (folding
    it would be wrong across symbolic links). The trailing slash matters:
    ``lstat("link/")`` follows the link, so the symlink check needs it gone.

    Args:
        path: A POSIX path.
    """
    root = ""
    if path.startswith("/"):
        root = "//" if path.startswith("//") and not path.startswith("///") else "/"
    parts = [part for part in path.split("/") if part and part != "."]
    return (root + "/".join(parts)) or "."


def home_directory(env: Mapping[str, str]) -> str:
    """Return ``HOME``, or the home directory as :meth:`pathlib.Path.home` finds it.

    Args:
        env: The process environment.
    """
    home = env.get("HOME")
    if home:
        return home
    from pathlib import Path  # only without HOME: pathlib costs ~5 ms to import

    return str(Path.home())


def _file_identity(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "absent"
    if not stat.S_ISREG(st.st_mode):
        # /dev/null and the like: their times change with no change in content.
        return f"special:{stat.S_IFMT(st.st_mode)}:{st.st_rdev}"
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def credentials_fingerprint(env: Mapping[str, str]) -> str:
    """Return a digest of what decides the signing credentials besides the flags.

    The shared credentials file and the config file (``AWS_SHARED_CREDENTIALS_FILE``
    and ``AWS_CONFIG_FILE`` or their defaults under ``~/.aws``): absolute path,
    device, inode, size and modification time, so another file, an edit or a
    replacement changes the key; and every variable of :data:`CREDENTIAL_ENV`
    that is set (key IDs, secrets and session tokens included: only the digest
    is kept). Two ``stat`` calls and one BLAKE2b, no file is read.

    Args:
        env: The process environment.

    Returns:
        A hex BLAKE2b-256 digest.
    """
    home = ""
    parts: list[str] = []
    for var, default in (
        ("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        ("AWS_CONFIG_FILE", "config"),
    ):
        path = env.get(var)
        if not path:
            home = home or home_directory(env)
            path = os.path.join(home, ".aws", default)
        path = os.path.abspath(os.path.expanduser(path))
        parts.append(f"{var}={path}|{_file_identity(path)}")
    for name in CREDENTIAL_ENV:
        value = env.get(name)
        if value is not None:
            parts.append(f"{name}={value}")
    raw = "\n".join(parts).encode("utf-8", "surrogateescape")
    return blake2b(raw, digest_size=32, person=b"kubeiam-creds").hexdigest()


def _check_private(st: os.stat_result, what: str, path: str) -> None:
    if st.st_uid != os.geteuid():
        raise CacheRefusedError(f"{what} {path} is not owned by the current user")
    if st.st_mode & _GROUP_OTHER:
        want = _DIR_MODE if what == "directory" else _FILE_MODE
        raise CacheRefusedError(
            f"{what} {path} is group- or world-accessible "
            f"(mode {stat.S_IMODE(st.st_mode):04o}; want {want:04o})"
        )


def _make_private_dirs(path: str) -> None:
    """``mkdir -p`` where every directory created is 0700 whatever the umask.

    ``os.makedirs`` creates the parents 0777 minus the umask: under umask 000,
    ``~/.kube`` and ``~/.kube/cache`` would be world-writable. Existing
    directories are left alone.
    """
    missing: list[str] = []
    here = path
    while here and not os.path.lexists(here):
        missing.append(here)
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, _DIR_MODE)
        except FileExistsError:
            continue  # another kubectl process was faster: checked by the caller
        os.chmod(directory, _DIR_MODE)


class TokenCache:
    """A private directory of cached tokens.

    Args:
        directory: ``KUBEIAM_CACHE_DIR`` or ``~/.kube/cache/kubeiam``.
        lock_timeout_s: How long to wait for another process minting the same key.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> None:
        self.directory = normalise_path(os.fspath(directory))
        self.lock_timeout_s = lock_timeout_s

    def _path(self, key: CacheKey, suffix: str) -> str:
        return os.path.join(self.directory, f"{key.digest()}{suffix}")

    def check_directory(self, *, create: bool) -> bool:
        """Check (and optionally create) the cache directory.

        Args:
            create: Create it (mode 0700, parents as needed) when missing.

        Returns:
            False when it does not exist and ``create`` is False.

        Raises:
            CacheRefusedError: It is not a private directory of ours.
        """
        try:
            st = os.lstat(self.directory)
        except FileNotFoundError:
            if not create:
                return False
            _make_private_dirs(self.directory)
            st = os.lstat(self.directory)
        if stat.S_ISLNK(st.st_mode):
            raise CacheRefusedError(
                f"cache directory {self.directory} is a symbolic link"
            )
        if not stat.S_ISDIR(st.st_mode):
            raise CacheRefusedError(f"cache path {self.directory} is not a directory")
        _check_private(st, "directory", self.directory)
        return True

    def load_token(self, key: CacheKey) -> CachedToken | None:
        """Read the entry for ``key`` (no lock needed: files are replaced atomically).

        Args:
            key: The cache key.

        Returns:
            The entry, or None when absent or unreadable (corrupt = absent).

        Raises:
            CacheRefusedError: The directory or file is not private.
        """
        if not self.check_directory(create=False):
            return None
        path = self._path(key, ".json")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CacheRefusedError(
                    f"cache file {path} is a symbolic link"
                ) from exc
            raise
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise CacheRefusedError(f"cache file {path} is not a regular file")
            _check_private(st, "file", path)
            raw = handle.read(64 * 1024)
        return parse_entry(raw, key)

    def store_token(self, key: CacheKey, entry: CachedToken) -> None:
        """Write the entry for ``key`` atomically with mode 0600.

        Args:
            key: The cache key.
            entry: The token.

        Raises:
            CacheRefusedError: The directory is not private.
            OSError: The write failed.
        """
        self.check_directory(create=True)
        final = self._path(key, ".json")
        # not durable: a lost entry costs one re-mint; the token path stays fast
        write_atomic(final, build_entry(key, entry), mode=_FILE_MODE, durable=False)

    def lock(self, key: CacheKey) -> AbstractContextManager[bool]:
        """Hold the per-key exclusive lock while minting.

        Entering yields True when the lock is held, False when it timed out
        (the caller still mints, and may still write: writes are atomic either
        way).

        Args:
            key: The cache key.

        Raises:
            CacheRefusedError: On entering, the directory is not private.
        """
        return _KeyLock(self, key)


class _KeyLock:
    """The context manager of :meth:`TokenCache.lock` (a class: no contextlib)."""

    def __init__(self, cache: TokenCache, key: CacheKey) -> None:
        self._cache = cache
        self._key = key
        self._fd = -1

    def __enter__(self) -> bool:
        import fcntl  # only when minting

        self._cache.check_directory(create=True)
        path = self._cache._path(self._key, ".lock")
        fd = os.open(
            path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE
        )
        try:
            deadline = time.monotonic() + self._cache.lock_timeout_s
            held = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held = True
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(_LOCK_POLL_S)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return held

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def default_cache_dir(env: Mapping[str, str]) -> str:
    """Return the cache directory: ``KUBEIAM_CACHE_DIR`` or ``~/.kube/cache/kubeiam``.

    Args:
        env: The process environment.

    Returns:
        The directory, spelled as ``pathlib`` would (see :func:`normalise_path`).
    """
    override = env.get("KUBEIAM_CACHE_DIR")
    if override:
        return normalise_path(override)
    return normalise_path(
        os.path.join(home_directory(env), ".kube", "cache", "kubeiam")
    )
