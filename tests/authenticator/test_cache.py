"""authenticator.cache: keys, entries, freshness, private files, locking, races."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from authenticator.cache import (
    MIN_REMAINING,
    CachedToken,
    CacheKey,
    CacheRefusedError,
    TokenCache,
    build_entry,
    default_cache_dir,
    is_fresh,
    normalise_path,
    parse_entry,
)
from authenticator.token import decode_token
from tests.fixtures.executables import KUBEIAM

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 5, 0, 0, tzinfo=UTC)
KEY = CacheKey(
    cluster_id="my-cluster",
    profile="default",
    role_arn="",
    region="us-west-2",
    endpoint="default",
    credentials="0" * 64,
)
ENTRY = CachedToken("k8s-aws-v1.abc", NOW, NOW + timedelta(minutes=14))


def _key_with(**changes: object) -> CacheKey:
    """KEY with some fields changed."""
    values: dict[str, Any] = {name: getattr(KEY, name) for name in CacheKey.__slots__}
    values.update(changes)
    return CacheKey(**values)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _env(cache_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        KUBEIAM_CACHE_DIR=str(cache_dir),
    )
    env.pop("KUBERNETES_EXEC_INFO", None)
    return env


class TestKey:
    """Cache keys and their file names."""

    def test_digest_is_a_256_bit_hash(self) -> None:
        """The file name is the BLAKE2b-256 of the canonical key JSON."""
        raw = json.dumps(KEY.as_dict(), sort_keys=True, separators=(",", ":")).encode()
        assert KEY.digest() == hashlib.blake2b(raw, digest_size=32).hexdigest()
        assert len(KEY.digest()) == 64

    @pytest.mark.parametrize("field", CacheKey.__slots__)
    def test_every_field_changes_the_digest(self, field: str) -> None:
        """Every part of the key changes the file name."""
        value = getattr(KEY, field)
        changed = (not value) if isinstance(value, bool) else value + "x"
        other = _key_with(**{field: changed})
        assert other.digest() != KEY.digest()

    def test_records_are_immutable_and_hide_the_token(self) -> None:
        """Keys and entries cannot be changed, and repr never shows the token."""
        with pytest.raises(AttributeError):
            KEY.region = "eu-west-1"
        assert "k8s-aws-v1.abc" not in repr(ENTRY)
        assert "my-cluster" in repr(KEY)
        assert _key_with() == KEY
        assert hash(KEY) == hash(_key_with())

    def test_default_dir(self) -> None:
        """KUBEIAM_CACHE_DIR wins; else ~/.kube/cache/kubeiam."""
        assert default_cache_dir({"KUBEIAM_CACHE_DIR": "/tmp/x", "HOME": "/h"}) == (
            "/tmp/x"
        )
        assert default_cache_dir({"HOME": "/h"}) == "/h/.kube/cache/kubeiam"
        assert default_cache_dir({"HOME": "/h/"}) == "/h/.kube/cache/kubeiam"
        assert default_cache_dir({}) == str(Path.home() / ".kube/cache/kubeiam")

    @pytest.mark.parametrize(
        "path",
        ["", ".", "/", "//", "///", "a", "a/", "a//b", "./a/./b/", "/a/../b", "//a/b"],
    )
    def test_paths_are_spelled_as_pathlib_does(self, path: str) -> None:
        """normalise_path agrees with str(PurePosixPath) (no pathlib on a hit)."""
        assert normalise_path(path) == str(PurePosixPath(path))

    def test_trailing_slash_does_not_hide_a_symlinked_directory(
        self, tmp_path: Path
    ) -> None:
        """KUBEIAM_CACHE_DIR=link/ is still refused as a symbolic link."""
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        (tmp_path / "link").symlink_to(real)
        cache = TokenCache(
            default_cache_dir({"KUBEIAM_CACHE_DIR": f"{tmp_path}/link/"})
        )
        with pytest.raises(CacheRefusedError, match="symbolic link"):
            cache.store_token(KEY, ENTRY)


class TestEntry:
    """Serialised entries."""

    def test_round_trip(self) -> None:
        """build_entry then parse_entry returns the same token and times."""
        assert parse_entry(build_entry(KEY, ENTRY), KEY) == ENTRY

    def test_entry_for_another_key_is_a_miss(self) -> None:
        """An entry stored under a different key is not returned."""
        assert (
            parse_entry(
                build_entry(KEY, ENTRY),
                _key_with(role_arn="arn:aws:iam::1:role/r"),
            )
            is None
        )

    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"\x00\xff garbage",
            b"{",
            b"[]",
            b'{"version": 2}',
            b'{"version": 1, "key": null}',
        ],
    )
    def test_corrupt_bytes_are_a_miss(self, raw: bytes) -> None:
        """Unparsable or foreign content is treated as absent."""
        assert parse_entry(raw, KEY) is None

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("token", ""),
            ("token", 5),
            ("signedAt", "2026-11-27T05:00:00Z"),
            ("expiresAt", True),
            ("expiresAt", 10**30),
        ],
    )
    def test_bad_fields_are_a_miss(self, field: str, value: object) -> None:
        """Wrong types or impossible times make the entry a miss."""
        doc = json.loads(build_entry(KEY, ENTRY))
        doc[field] = value
        assert parse_entry(json.dumps(doc).encode(), KEY) is None


class TestFreshness:
    """A token is reused while at least 60 s of its life remain."""

    @pytest.mark.parametrize(
        ("remaining", "fresh"),
        [
            (timedelta(minutes=10), True),
            (timedelta(seconds=61), True),
            (MIN_REMAINING, True),
            (timedelta(seconds=59), False),
            (timedelta(0), False),
            (timedelta(seconds=-5), False),
        ],
    )
    def test_remaining_life(self, remaining: timedelta, fresh: bool) -> None:
        """Fresh exactly when expires_at - now >= 60 s."""
        now = ENTRY.expires_at - remaining
        assert is_fresh(ENTRY, now=now) is fresh

    def test_entry_signed_in_the_future_is_stale(self) -> None:
        """After the clock jumps back more than STS's skew, the entry is not trusted."""
        assert is_fresh(ENTRY, now=NOW - timedelta(minutes=6)) is False

    def test_entry_claiming_more_than_fourteen_minutes_is_stale(self) -> None:
        """An entry whose lifetime exceeds 14 min was not written by us."""
        bogus = CachedToken(ENTRY.token, ENTRY.signed_at, NOW + timedelta(minutes=30))
        assert is_fresh(bogus, now=NOW) is False


class TestFiles:
    """Private directory and files, atomic writes, refusals."""

    def test_store_creates_private_dir_and_file(self, tmp_path: Path) -> None:
        """The directory is created 0700, the entry 0600, and no temp file is left."""
        cache = TokenCache(tmp_path / "a" / "cache")
        cache.store_token(KEY, ENTRY)
        assert _mode(Path(cache.directory)) == 0o700
        files = sorted(p.name for p in Path(cache.directory).iterdir())
        assert files == [f"{KEY.digest()}.json"]
        assert _mode(Path(cache.directory) / files[0]) == 0o600
        assert cache.load_token(KEY) == ENTRY

    def test_store_replaces_existing(self, tmp_path: Path) -> None:
        """A second store replaces the first entry."""
        cache = TokenCache(tmp_path / "c")
        cache.store_token(KEY, ENTRY)
        newer = CachedToken(
            "k8s-aws-v1.new", NOW + timedelta(minutes=1), NOW + timedelta(minutes=15)
        )
        cache.store_token(KEY, newer)
        assert cache.load_token(KEY) == newer

    def test_missing_dir_is_a_miss_and_not_created_on_read(
        self, tmp_path: Path
    ) -> None:
        """Reading never creates the directory."""
        cache = TokenCache(tmp_path / "nope")
        assert cache.load_token(KEY) is None
        assert not Path(cache.directory).exists()

    @pytest.mark.parametrize("mode", [0o750, 0o705, 0o777, 0o710])
    def test_group_or_world_accessible_dir_is_refused(
        self, tmp_path: Path, mode: int
    ) -> None:
        """Any group/other bit on the directory refuses the cache."""
        cache = TokenCache(tmp_path / "c")
        cache.store_token(KEY, ENTRY)
        Path(cache.directory).chmod(mode)
        with pytest.raises(CacheRefusedError, match="group- or world-accessible"):
            cache.load_token(KEY)
        with pytest.raises(CacheRefusedError):
            cache.store_token(KEY, ENTRY)

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o666])
    def test_group_or_world_readable_file_is_refused(
        self, tmp_path: Path, mode: int
    ) -> None:
        """Any group/other bit on the entry file refuses it."""
        cache = TokenCache(tmp_path / "c")
        cache.store_token(KEY, ENTRY)
        (Path(cache.directory) / f"{KEY.digest()}.json").chmod(mode)
        with pytest.raises(CacheRefusedError, match="file"):
            cache.load_token(KEY)

    def test_symlinked_entry_is_refused(self, tmp_path: Path) -> None:
        """An entry that is a symbolic link is not followed."""
        cache = TokenCache(tmp_path / "c")
        cache.store_token(KEY, ENTRY)
        target = tmp_path / "elsewhere.json"
        entry_path = Path(cache.directory) / f"{KEY.digest()}.json"
        entry_path.rename(target)
        entry_path.symlink_to(target)
        with pytest.raises(CacheRefusedError, match="symbolic link"):
            cache.load_token(KEY)

    def test_cache_path_that_is_a_file_is_refused(self, tmp_path: Path) -> None:
        """A cache 'directory' that is a regular file is refused."""
        path = tmp_path / "file"
        path.write_text("x")
        with pytest.raises(CacheRefusedError, match="not a directory"):
            TokenCache(path).load_token(KEY)

    def test_symlinked_directory_is_refused(self, tmp_path: Path) -> None:
        """A cache directory that is a symbolic link is refused."""
        real = tmp_path / "real"
        real.mkdir(mode=0o700)
        (tmp_path / "link").symlink_to(real)
        with pytest.raises(CacheRefusedError, match="symbolic link"):
            TokenCache(tmp_path / "link").store_token(KEY, ENTRY)

    def test_corrupt_file_is_a_miss(self, tmp_path: Path) -> None:
        """A garbage entry reads as absent."""
        cache = TokenCache(tmp_path / "c")
        cache.store_token(KEY, ENTRY)
        (Path(cache.directory) / f"{KEY.digest()}.json").write_bytes(b"\x00garbage{")
        assert cache.load_token(KEY) is None


class TestLock:
    """The per-key exclusive lock."""

    def test_second_locker_times_out(self, tmp_path: Path) -> None:
        """While one holder has the lock, another gives up after its timeout."""
        first = TokenCache(tmp_path / "c")
        second = TokenCache(tmp_path / "c", lock_timeout_s=0.05)
        with first.lock(KEY) as held_first:
            assert held_first is True
            with second.lock(KEY) as held_second:
                assert held_second is False
        with second.lock(KEY) as held_again:
            assert held_again is True

    def test_lock_file_is_private(self, tmp_path: Path) -> None:
        """The lock file is created 0600."""
        cache = TokenCache(tmp_path / "c")
        with cache.lock(KEY):
            assert _mode(Path(cache.directory) / f"{KEY.digest()}.lock") == 0o600


class TestThroughTheCommand:
    """The cache as `kubeiam token` uses it (subprocesses, real files)."""

    def _token(
        self, env: dict[str, str], *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBEIAM, "token", "-i", "race", "--region", "us-west-2", *extra],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def test_two_processes_at_once_share_one_valid_token(self, tmp_path: Path) -> None:
        """Two racing plugin runs both print a valid token; the cache file is intact."""
        cache_dir = tmp_path / "cache"
        env = _env(cache_dir)
        argv = [KUBEIAM, "token", "-i", "race", "--region", "us-west-2"]
        procs = [
            subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
        tokens = [json.loads(o)["status"]["token"] for o, _ in outs]
        for token in tokens:
            assert "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id" in decode_token(token)
        # The lock makes later arrivals wait and reuse the first token.
        assert len(set(tokens)) == 1
        files = [p for p in cache_dir.iterdir() if p.suffix == ".json"]
        assert len(files) == 1
        assert not [p for p in cache_dir.iterdir() if p.suffix == ".tmp"]
        doc = json.loads(files[0].read_text())
        assert doc["token"] == tokens[0]
        assert _mode(files[0]) == 0o600
        assert _mode(cache_dir) == 0o700

    def test_corrupt_cache_file_is_ignored_and_replaced(self, tmp_path: Path) -> None:
        """A garbage cache file gives a fresh token and is rewritten as valid."""
        env = _env(tmp_path / "cache")
        first = self._token(env)
        assert first.returncode == 0, first.stderr
        [entry] = [p for p in (tmp_path / "cache").iterdir() if p.suffix == ".json"]
        entry.write_bytes(b'{"version": 1, "token": ')
        second = self._token(env)
        assert second.returncode == 0, second.stderr
        assert second.stderr == ""
        assert (
            json.loads(entry.read_text())["token"]
            == json.loads(second.stdout)["status"]["token"]
        )

    def test_token_with_less_than_a_minute_left_is_reminted(
        self, tmp_path: Path
    ) -> None:
        """An entry 30 s from expiry is not reused; one 10 min from expiry is."""
        env = _env(tmp_path / "cache")
        first = self._token(env)
        [entry_path] = [
            p for p in (tmp_path / "cache").iterdir() if p.suffix == ".json"
        ]
        doc = json.loads(entry_path.read_text())
        key = CacheKey(**doc["key"])
        now = datetime.now(UTC).replace(microsecond=0)
        cache = TokenCache(tmp_path / "cache")
        cache.store_token(
            key,
            CachedToken(
                "k8s-aws-v1.old",
                now - timedelta(minutes=13),
                now + timedelta(seconds=30),
            ),
        )
        reminted = self._token(env)
        assert json.loads(reminted.stdout)["status"]["token"] not in (
            "k8s-aws-v1.old",
            "",
        )
        assert json.loads(reminted.stdout)["status"]["token"].startswith(
            "k8s-aws-v1.aHR0"
        )
        cache.store_token(
            key,
            CachedToken(
                "k8s-aws-v1.kept",
                now - timedelta(minutes=4),
                now + timedelta(minutes=10),
            ),
        )
        reused = self._token(env)
        assert json.loads(reused.stdout)["status"]["token"] == "k8s-aws-v1.kept"
        assert json.loads(first.stdout)["status"]["token"].startswith("k8s-aws-v1.")

    def test_group_readable_dir_is_refused_but_a_token_is_still_minted(
        self, tmp_path: Path
    ) -> None:
        """A 0755 cache dir: warning on stderr, fresh token, nothing written."""
        cache_dir = tmp_path / "cache"
        cache_dir.mkdir(mode=0o755)
        cache_dir.chmod(0o755)
        result = self._token(_env(cache_dir))
        assert result.returncode == 0
        assert "not using the token cache" in result.stderr
        assert "group- or world-accessible" in result.stderr
        assert json.loads(result.stdout)["status"]["token"].startswith("k8s-aws-v1.")
        assert list(cache_dir.iterdir()) == []

    def test_no_cache_flag_neither_reads_nor_writes(self, tmp_path: Path) -> None:
        """--no-cache leaves the cache directory untouched."""
        cache_dir = tmp_path / "cache"
        result = self._token(_env(cache_dir), "--no-cache")
        assert result.returncode == 0, result.stderr
        assert not cache_dir.exists()


def _signing_key(out: str) -> tuple[str, str | None]:
    """(key ID, session token) that signed a `kubeiam token` ExecCredential."""
    from urllib.parse import parse_qs, urlsplit

    from authenticator.token import decode_token

    url = decode_token(json.loads(out)["status"]["token"])
    query = parse_qs(urlsplit(url).query)
    session = query.get("X-Amz-Security-Token", [None])[0]
    return query["X-Amz-Credential"][0].split("/")[0], session


def _credentials_file(path: Path, key_id: str, secret: str = "s" * 40) -> None:
    path.write_text(
        f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    )


class TestKeyCoversTheCredential:
    """A cached token is handed out only for the credential that signed it."""

    def _token(self, env: dict[str, str]) -> str:
        done = subprocess.run(
            [KUBEIAM, "token", "-i", "c", "--region", "us-west-2"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def _file_env(self, tmp_path: Path, creds: Path) -> dict[str, str]:
        env = _env(tmp_path / "cache")
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
        return env

    def test_two_credentials_files_with_one_profile_name_do_not_share(
        self, tmp_path: Path
    ) -> None:
        """[default] in two files: each file's key signs its own token."""
        first, second = tmp_path / "a", tmp_path / "b"
        _credentials_file(first, "AKIAFIRSTFILEXXXXXXX")
        _credentials_file(second, "AKIASECONDFILEXXXXXX")
        one = self._token(self._file_env(tmp_path, first))
        two = self._token(self._file_env(tmp_path, second))
        assert _signing_key(one)[0] == "AKIAFIRSTFILEXXXXXXX"
        assert _signing_key(two)[0] == "AKIASECONDFILEXXXXXX"
        # Nothing changed: a hit.
        assert self._token(self._file_env(tmp_path, first)) == one

    def test_keys_rotated_in_place_are_a_miss(self, tmp_path: Path) -> None:
        """The same file rewritten with a new key (same size) gives a new token."""
        creds = tmp_path / "credentials"
        _credentials_file(creds, "AKIAOLDKEYXXXXXXXXXX")
        env = self._file_env(tmp_path, creds)
        before = self._token(env)
        with creds.open("r+") as handle:  # same inode, same size
            handle.write(creds.read_text().replace("OLDKEY", "NEWKEY"))
        after = self._token(env)
        assert _signing_key(before)[0] == "AKIAOLDKEYXXXXXXXXXX"
        assert _signing_key(after)[0] == "AKIANEWKEYXXXXXXXXXX"

    def test_new_session_token_in_the_environment_is_a_miss(
        self, tmp_path: Path
    ) -> None:
        """Same key ID, another session token: a new token; no secret in the cache."""
        env = _env(tmp_path / "cache")
        first = self._token({**env, "AWS_SESSION_TOKEN": "session-one"})
        second = self._token({**env, "AWS_SESSION_TOKEN": "session-two"})
        assert _signing_key(first)[1] == "session-one"
        assert _signing_key(second)[1] == "session-two"
        stored = b"".join(p.read_bytes() for p in (tmp_path / "cache").glob("*.json"))
        assert b"session-" not in stored
        assert env["AWS_SECRET_ACCESS_KEY"].encode() not in stored
        assert env["AWS_ACCESS_KEY_ID"].encode() not in stored

    @pytest.mark.parametrize(
        ("flag", "value"),
        [
            ("-s", "another-session"),
            ("-e", "another-external-id"),
            ("-r", "arn:aws:iam::111122223333:role/other"),
        ],
    )
    def test_role_session_name_and_external_id_are_in_the_key(
        self, flag: str, value: str
    ) -> None:
        """Each flag that decides the assumed session changes the key."""
        from authenticator.exec_credential import parse_exec_info
        from authenticator.token_cli import parse_common_flags, resolve_settings

        env = {"HOME": "/nonexistent", "AWS_REGION": "us-west-2"}
        base = ["-i", "c", "-r", "arn:aws:iam::111122223333:role/r", "-s", "s"]

        def key(argv: list[str]) -> CacheKey:
            flags = parse_common_flags(argv)
            assert flags is not None
            return resolve_settings(flags, parse_exec_info(None), env).cache_key(env)

        assert key([*base, flag, value]).digest() != key(base).digest()
        assert key(base) == key(base)


def test_cache_directories_are_private_under_umask_000(tmp_path: Path) -> None:
    """~/.kube, ~/.kube/cache and the cache dir are created 0700 under umask 000."""
    home = tmp_path / "home"
    home.mkdir()
    env = _env(tmp_path / "unused")
    del env["KUBEIAM_CACHE_DIR"]
    env["HOME"] = str(home)
    subprocess.run(
        [KUBEIAM, "token", "-i", "c", "--region", "us-west-2"],
        env=env,
        capture_output=True,
        check=True,
        umask=0,
    )
    for directory in (".kube", ".kube/cache", ".kube/cache/kubeiam"):
        assert stat.S_IMODE((home / directory).stat().st_mode) == 0o700, directory
    entries = list((home / ".kube/cache/kubeiam").glob("*.json"))
    assert entries and all(stat.S_IMODE(e.stat().st_mode) == 0o600 for e in entries)
