"""The mapping sources: file hot reload, the aws-auth and CRD watches, the registry."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from authenticator.arn import canonicalize_arn
from authenticator.errors import ConfigError
from authenticator.identity import Identity
from authenticator.mapping import (
    MappingOutcome,
    MappingSet,
    PackedEntries,
    evaluate_mapping,
    map_identity,
    parse_mappings,
)
from authenticator.mapping_child import ChildParseError
from tests.fixtures.kubeapi import MAPPINGS, KubeAPI
from webhook import sources_kube
from webhook.sources import InlineSource, MappingRegistry, build_registry
from webhook.sources_file import FileSource, load_file_mappings, read_mapping_file
from webhook.sources_kube import ConfigMapSource, CRDSource, load_api_client

ACCT = "111122223333"
FAST = (0.05, 0.2)  # back-off for tests
Starter = Callable[..., MappingRegistry]


def wait_until(pred: Callable[[], bool], timeout: float = 3.0) -> float:
    """Poll ``pred`` until true; return the seconds it took (fail after ``timeout``)."""
    start = time.monotonic()
    while not pred():
        assert time.monotonic() - start < timeout, "condition not reached"
        time.sleep(0.01)
    return time.monotonic() - start


def caller(role: str, session: str = "s") -> Identity:
    """An assumed-role identity."""
    arn = f"arn:aws:sts::{ACCT}:assumed-role/{role}/{session}"
    return Identity(arn, canonicalize_arn(arn), ACCT, "AROA1", session, "ASIA1")


def roles_yaml(*pairs: tuple[str, str]) -> str:
    """A mapRoles YAML list of (role, username)."""
    return "".join(
        f"- rolearn: arn:aws:iam::{ACCT}:role/{role}\n  username: {user}\n"
        for role, user in pairs
    )


def usernames(registry: MappingRegistry) -> list[str]:
    """Usernames of every role entry in the current snapshot."""
    return [e.username for s in registry.snapshot() for e in s.roles]


class Recorder:
    """Collects on_reload calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, source: str, result: str, entries: int) -> None:
        self.calls.append((source, result, entries))


class RaisingRecorder(Recorder):
    """Collects on_reload calls and raises on the given (1-based) call numbers."""

    def __init__(self, *raise_on: int) -> None:
        super().__init__()
        self.raise_on = set(raise_on)

    def __call__(self, source: str, result: str, entries: int) -> None:
        super().__call__(source, result, entries)
        if len(self.calls) in self.raise_on:
            raise RuntimeError("on_reload failed")


@pytest.fixture
def started() -> Iterator[Callable[..., MappingRegistry]]:
    """Build and start registries; stop them all afterwards."""
    registries: list[MappingRegistry] = []

    def make(*sources: object, on_reload: Recorder | None = None) -> MappingRegistry:
        registry = build_registry(sources, on_reload=on_reload)  # type: ignore[arg-type]  # test sources
        registry.start()
        registries.append(registry)
        return registry

    yield make
    for registry in registries:
        registry.stop()


def write(path: Path, text: str, *, atomic: bool = False) -> None:
    """Write a file in place, or atomically through a rename."""
    if atomic:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    else:
        path.write_text(text)


class TestFileSource:
    """A mapping file, hot-reloaded; bad edits keep the last good set whole."""

    def test_initial_load_is_ready(self, tmp_path: Path, started: Starter) -> None:
        """The file is read before start() returns."""
        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        registry = started(FileSource(path, poll_interval=0.05))
        assert registry.ready and usernames(registry) == ["a"]

    @pytest.mark.parametrize("atomic", [False, True])
    def test_valid_change_served_within_two_seconds(
        self, tmp_path: Path, started: Starter, atomic: bool
    ) -> None:
        """An in-place or renamed edit is served within 2 s (default poll 0.5 s)."""
        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        rec = Recorder()
        registry = started(FileSource(path), on_reload=rec)
        write(
            path,
            "mapRoles:\n" + roles_yaml(("A", "changed"), ("B", "b")),
            atomic=atomic,
        )
        took = wait_until(lambda: usernames(registry) == ["changed", "b"], timeout=2.0)
        assert took < 2.0
        assert rec.calls == [("file", "success", 1), ("file", "success", 2)]
        user = map_identity(caller("A"), registry.snapshot())
        assert user is not None and user.username == "changed"

    def test_invalid_change_keeps_last_good_set(
        self, tmp_path: Path, started: Starter
    ) -> None:
        """A broken edit keeps the previous set (the same object), reports an error."""
        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a"), ("B", "b")))
        rec = Recorder()
        registry = started(FileSource(path, poll_interval=0.05), on_reload=rec)
        before = registry.snapshot()
        # one valid new entry and one broken one: nothing of it may be applied
        write(
            path,
            "mapRoles:\n" + roles_yaml(("C", "c")) + "- rolearn: nope\n  username: x\n",
        )
        wait_until(lambda: ("file", "error", 2) in rec.calls)
        assert registry.snapshot() is before and usernames(registry) == ["a", "b"]
        write(path, "mapRoles:\n" + roles_yaml(("C", "c")))
        wait_until(lambda: usernames(registry) == ["c"])

    @pytest.mark.parametrize("text", ["", " \n\n   \n"])
    def test_truncated_file_keeps_last_good_set(
        self, tmp_path: Path, started: Starter, text: str
    ) -> None:
        """An empty or blank file on reload is refused; `mapRoles: []` empties it."""
        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        rec = Recorder()
        registry = started(FileSource(path, poll_interval=0.05), on_reload=rec)
        before = registry.snapshot()
        write(path, text)
        wait_until(lambda: ("file", "error", 1) in rec.calls)
        assert registry.snapshot() is before and usernames(registry) == ["a"]
        write(path, "mapRoles: []\n")
        wait_until(lambda: usernames(registry) == [])
        assert rec.calls[-1] == ("file", "success", 0)

    def test_deleted_file_keeps_last_good_set(
        self, tmp_path: Path, started: Starter
    ) -> None:
        """A file that disappears keeps the last good set and reports an error."""
        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        rec = Recorder()
        registry = started(FileSource(path, poll_interval=0.05), on_reload=rec)
        path.unlink()
        wait_until(lambda: ("file", "error", 1) in rec.calls)
        assert usernames(registry) == ["a"]

    def test_unexpected_error_does_not_stop_polling(
        self, tmp_path: Path, started: Starter
    ) -> None:
        """An exception escaping a reload (here from on_reload) leaves polling alive."""
        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        rec = RaisingRecorder(2)
        registry = started(FileSource(path, poll_interval=0.05), on_reload=rec)
        write(path, "mapRoles:\n" + roles_yaml(("B", "b")))
        wait_until(lambda: len(rec.calls) == 2)
        write(path, "mapRoles:\n" + roles_yaml(("C", "c")))
        wait_until(lambda: usernames(registry) == ["c"])
        assert rec.calls[-1] == ("file", "success", 1)

    def test_concurrent_readers_never_see_a_half_applied_table(
        self, tmp_path: Path, started: Starter
    ) -> None:
        """Readers during 20 reloads always see one whole version of the table."""
        path = tmp_path / "m.yaml"
        roles = [f"R{i}" for i in range(50)]

        def version(v: int) -> str:
            return "mapRoles:\n" + roles_yaml(*((r, f"v{v}-{r}") for r in roles))

        write(path, version(0))
        registry = started(FileSource(path, poll_interval=0.01))
        stop = threading.Event()
        seen: set[int] = set()
        torn: list[list[str]] = []

        def read() -> None:
            while not stop.is_set():
                snapshot = registry.snapshot()
                names = [e.username for s in snapshot for e in s.roles]
                first = map_identity(caller("R0"), snapshot)
                last = map_identity(caller("R49"), snapshot)
                assert first is not None and last is not None
                versions = {n.split("-")[0] for n in names}
                versions |= {first.username.split("-")[0], last.username.split("-")[0]}
                if len(versions) != 1 or len(names) != len(roles):
                    torn.append(names)
                seen.add(int(versions.pop()[1:]))
                time.sleep(0.001)  # leave the poll thread some of the GIL

        readers = [threading.Thread(target=read) for _ in range(2)]
        for t in readers:
            t.start()
        for v in range(1, 21):
            write(path, version(v), atomic=True)
            expected = f"v{v}-R0"
            wait_until(lambda: usernames(registry)[0] == expected)  # noqa: B023
        stop.set()
        for t in readers:
            t.join()
        assert not torn
        assert len(seen) > 5  # the readers really ran across many versions

    def test_load_file_mappings_names_the_file(self, tmp_path: Path) -> None:
        """The start-up loader raises ConfigError naming the file and every problem."""
        path = tmp_path / "bad.yaml"
        path.write_text("mapRoles:\n- rolearn: x\n  username: a\n")
        with pytest.raises(ConfigError, match=r"bad\.yaml: mapRoles\[0\]\.rolearn"):
            load_file_mappings(path)
        with pytest.raises(ConfigError, match="cannot read"):
            load_file_mappings(tmp_path / "missing.yaml")

    def test_file_over_max_bytes_is_refused_unparsed(self, tmp_path: Path) -> None:
        """A file over the limit fails at once, naming the file, limit and key."""
        path = tmp_path / "big.yaml"
        text = "mapRoles:\n" + roles_yaml(("A", "a"), ("B", "b"))
        path.write_text(text)
        size = len(text.encode())
        assert load_file_mappings(path, max_bytes=size).entries == 2
        with pytest.raises(ConfigError) as info:
            load_file_mappings(path, max_bytes=size - 1)
        assert str(info.value).startswith(
            f"{path}: larger than the limit of {size - 1}"
        )
        assert "maxBytes" in str(info.value)

    def test_reload_over_max_bytes_keeps_last_good(
        self, tmp_path: Path, started: Starter
    ) -> None:
        """A reload over the limit is an error; the old set keeps answering."""
        path = tmp_path / "m.yaml"
        small = "mapRoles:\n" + roles_yaml(("A", "a"))
        write(path, small)
        rec = Recorder()
        source = FileSource(path, poll_interval=0.05, max_bytes=len(small) + 10)
        registry = started(source, on_reload=rec)
        write(path, "mapRoles:\n" + roles_yaml(("A", "a"), ("B", "b"), ("C", "c")))
        wait_until(lambda: len(rec.calls) == 2)
        assert rec.calls == [("file", "success", 1), ("file", "error", 1)]
        assert usernames(registry) == ["a"]

    def test_large_reload_is_parsed_in_a_child(
        self, tmp_path: Path, started: Starter, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A large file is parsed by the child (start, reloads); bad text stays out."""
        import webhook.sources_file as sources_file

        children: list[bytes] = []
        real = sources_file.parse_in_child  # type: ignore[attr-defined]  # its import

        def spy(data: bytes, **options: object) -> object:
            children.append(data)
            return real(data, **options)  # type: ignore[arg-type]  # the keywords

        monkeypatch.setattr(sources_file, "parse_in_child", spy)
        path = tmp_path / "m.yaml"
        first = "mapRoles:\n" + roles_yaml(("A", "a"))
        write(path, first)
        rec = Recorder()
        source = FileSource(path, poll_interval=0.05, child_parse_bytes=1)
        registry = started(source, on_reload=rec)
        assert children == [first.encode()] and usernames(registry) == ["a"]
        new = "mapRoles:\n" + roles_yaml(("A", "changed"), ("B", "b"))
        write(path, new, atomic=True)
        wait_until(lambda: usernames(registry) == ["changed", "b"], timeout=10)
        assert children == [first.encode(), new.encode()]
        assert isinstance(registry.snapshot()[0].roles, PackedEntries)
        before = registry.snapshot()
        write(path, "mapRoles:\n- rolearn: nope\n  username: x\n", atomic=True)
        wait_until(lambda: ("file", "error", 2) in rec.calls, timeout=10)
        assert registry.snapshot() is before

    def test_a_failed_child_is_retried(
        self, tmp_path: Path, started: Starter, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A child that dies is an error now and a new try at the next poll."""
        import webhook.sources_file as sources_file

        failures = [ChildParseError("the mapping parser process exited -9")]
        real = sources_file.parse_in_child  # type: ignore[attr-defined]  # its import

        def flaky(data: bytes, **options: object) -> object:
            if failures:
                raise failures.pop()
            return real(data, **options)  # type: ignore[arg-type]  # the keywords

        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        rec = Recorder()
        registry = started(
            FileSource(path, poll_interval=0.05, child_parse_bytes=1), on_reload=rec
        )
        monkeypatch.setattr(sources_file, "parse_in_child", flaky)
        write(path, "mapRoles:\n" + roles_yaml(("A", "b")), atomic=True)
        wait_until(lambda: usernames(registry) == ["b"], timeout=10)
        assert rec.calls == [
            ("file", "success", 1),
            ("file", "error", 1),
            ("file", "success", 1),
        ]

    def test_preloaded_file_is_served_as_read(
        self, tmp_path: Path, started: Starter
    ) -> None:
        """The arbiter's set is served as is; a file changed since is read again."""
        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        loaded = read_mapping_file(path)
        registry = started(FileSource(path, poll_interval=0.05, initial=loaded))
        assert registry.snapshot() == (loaded.mapping_set,)
        assert registry.snapshot()[0] is loaded.mapping_set

        stale = read_mapping_file(path)
        write(path, "mapRoles:\n" + roles_yaml(("A", "newer")), atomic=True)
        fresh = started(FileSource(path, poll_interval=0.05, initial=stale))
        assert usernames(fresh) == ["newer"]

    def test_arbiter_packs_a_large_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A large file is read packed; with no child to run, the same set here."""
        import webhook.sources_file as sources_file

        path = tmp_path / "m.yaml"
        write(path, "mapRoles:\n" + roles_yaml(("A", "a"), ("B", "b")))
        packed = read_mapping_file(path, child_parse_bytes=1)
        in_process = read_mapping_file(path)
        assert isinstance(packed.mapping_set.roles, PackedEntries)
        assert not isinstance(in_process.mapping_set.roles, PackedEntries)
        assert packed == in_process
        assert read_mapping_file(path, child_parse_bytes=1 << 20) == in_process

        def broken(data: bytes, **options: object) -> object:
            raise ChildParseError("cannot run the mapping parser process")

        monkeypatch.setattr(sources_file, "parse_in_child", broken)
        fallback = read_mapping_file(path, child_parse_bytes=1)
        assert fallback == in_process
        assert not isinstance(fallback.mapping_set.roles, PackedEntries)


class TestRegistry:
    """Ordered sources, atomic snapshots, readiness."""

    def test_later_sources_wait_for_earlier_ones(
        self, tmp_path: Path, started: Starter
    ) -> None:
        """Until an earlier source loads, later ones are not consulted and not ready."""
        path = tmp_path / "late.yaml"
        inline = parse_mappings(
            {"mapAccounts": [ACCT]}, source="inline", where="config.yaml"
        )
        registry = started(FileSource(path, poll_interval=0.05), InlineSource(inline))
        assert not registry.ready and registry.snapshot() == ()
        write(path, "mapRoles:\n" + roles_yaml(("A", "a")))
        assert registry.wait_ready(3)
        assert [s.source for s in registry.snapshot()] == ["file", "inline"]

    def test_no_sources_is_ready(self) -> None:
        """A registry without sources is ready and empty."""
        registry = build_registry([])
        assert registry.ready and registry.snapshot() == ()


def aws_auth(*pairs: tuple[str, str]) -> dict[str, str]:
    """aws-auth data with these role mappings."""
    return {"mapRoles": roles_yaml(*pairs)}


class TestConfigMapSource:
    """kube-system/aws-auth through the real kubernetes client against the fixture."""

    def source(self, kubeapi: KubeAPI, **kwargs: object) -> ConfigMapSource:
        """A ConfigMapSource with fast back-off."""
        return ConfigMapSource(api_client=kubeapi.api_client(), backoff=FAST, **kwargs)  # type: ignore[arg-type]  # test knobs

    def test_list_then_follow_events(self, kubeapi: KubeAPI, started: Starter) -> None:
        """The registry follows ADDED, MODIFIED and DELETED events."""
        kubeapi.set_configmap(aws_auth(("A", "a")))
        rec = Recorder()
        registry = started(self.source(kubeapi), on_reload=rec)
        assert registry.wait_ready(3) and usernames(registry) == ["a"]
        kubeapi.wait_watching()
        kubeapi.set_configmap(aws_auth(("A", "a2"), ("B", "b")))
        wait_until(lambda: usernames(registry) == ["a2", "b"])
        kubeapi.delete_configmap()
        wait_until(lambda: usernames(registry) == [])
        assert [c[1] for c in rec.calls] == ["success"] * 3
        assert "fieldSelector=metadata.name%3Daws-auth" in kubeapi.requests[0]

    def test_node_roles_keep_their_system_groups(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """aws-auth node roles keep system:bootstrappers/system:nodes by default."""
        kubeapi.set_configmap(
            {
                "mapRoles": (
                    f"- rolearn: arn:aws:iam::{ACCT}:role/Node\n"
                    "  username: system:node:{{SessionName}}\n"
                    "  groups: [system:bootstrappers, system:nodes]\n"
                )
            }
        )
        registry = started(self.source(kubeapi))
        assert registry.wait_ready(3)
        user = map_identity(caller("Node", "i-0abc"), registry.snapshot())
        assert user is not None
        assert user.groups == ("system:bootstrappers", "system:nodes")
        refusing = started(self.source(kubeapi, reserved_group_prefixes=("system:",)))
        assert refusing.wait_ready(3)
        assert map_identity(caller("Node", "i-0abc"), refusing.snapshot()) is None

    def test_broken_edit_keeps_last_good_mappings(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """A half-broken aws-auth edit is not applied at all (the reference: half)."""
        kubeapi.set_configmap(aws_auth(("A", "a")))
        rec = Recorder()
        registry = started(self.source(kubeapi), on_reload=rec)
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        before = registry.snapshot()
        broken = aws_auth(("B", "b"))
        broken["mapUsers"] = "- userarn: arn:aws:iam::1:user/x\n  username: x\n"
        kubeapi.set_configmap(broken)
        wait_until(lambda: ("configMap", "error", 1) in rec.calls)
        assert registry.snapshot() is before
        assert map_identity(caller("B"), registry.snapshot()) is None
        kubeapi.set_configmap(aws_auth(("B", "b")))
        wait_until(lambda: usernames(registry) == ["b"])

    def test_yaml_bomb_and_failing_hook_keep_watching(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """A self-referencing alias is a reload error; a raising hook ends no thread."""
        kubeapi.set_configmap(aws_auth(("A", "a")))
        rec = RaisingRecorder(2)
        registry = started(self.source(kubeapi), on_reload=rec)
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        before = registry.snapshot()
        kubeapi.set_configmap({"mapRoles": "&x\n- rolearn: *x\n"})
        wait_until(lambda: rec.calls.count(("configMap", "error", 1)) >= 2)
        assert registry.snapshot() is before
        kubeapi.wait_watching()
        kubeapi.set_configmap(aws_auth(("B", "b")))
        wait_until(lambda: usernames(registry) == ["b"])

    def test_closed_watch_is_reestablished(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """When the server ends a watch, the source watches again from its version."""
        kubeapi.set_configmap(aws_auth(("A", "a")))
        registry = started(self.source(kubeapi))
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        kubeapi.close_watches()
        wait_until(lambda: kubeapi.count("watch=True") >= 2)
        kubeapi.wait_watching()
        kubeapi.set_configmap(aws_auth(("A", "after")))
        wait_until(lambda: usernames(registry) == ["after"])
        assert sum("watch" not in r for r in kubeapi.requests) == 1  # no re-list

    def test_gone_triggers_relist(self, kubeapi: KubeAPI, started: Starter) -> None:
        """A 410 Gone for the watch's version makes the source list again."""
        kubeapi.set_configmap(aws_auth(("A", "a")))
        registry = started(self.source(kubeapi))
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        kubeapi.compact()  # history gone, the watch ends; its version is too old now
        wait_until(lambda: sum("watch" not in r for r in kubeapi.requests) == 2)
        kubeapi.wait_watching()
        kubeapi.set_configmap(aws_auth(("A", "relisted")))
        wait_until(lambda: usernames(registry) == ["relisted"])

    def test_list_failure_is_retried(self, kubeapi: KubeAPI, started: Starter) -> None:
        """A failing list (HTTP 500, twice) is retried with back-off until it works."""
        kubeapi.set_configmap(aws_auth(("A", "a")))
        kubeapi.fail_next.extend([500, 500])
        registry = started(self.source(kubeapi))
        assert registry.wait_ready(3) and usernames(registry) == ["a"]
        assert len(kubeapi.requests) >= 3

    def test_garbage_in_the_stream_rewatches(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """A line that is not a watch event ends that watch; the next one carries on."""
        kubeapi.set_configmap(aws_auth(("A", "a")))
        registry = started(self.source(kubeapi))
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        kubeapi.push_raw("configmaps", "this is not json")
        wait_until(lambda: kubeapi.count("watch=True") >= 2)
        kubeapi.wait_watching()
        kubeapi.set_configmap(aws_auth(("A", "fine")))
        wait_until(lambda: usernames(registry) == ["fine"])

    def test_reserved_prefix_of_the_source(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """Security history item 5 end to end: the configMap source's prefixes apply."""
        kubeapi.set_configmap(aws_auth(("Admin", "system:admin")))
        registry = started(self.source(kubeapi, reserved_prefixes=("system:",)))
        assert registry.wait_ready(3)
        assert map_identity(caller("Admin"), registry.snapshot()) is None

    def test_missing_configmap_is_an_empty_set(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """No aws-auth at all: ready, nothing mapped by it; creating it is followed."""
        registry = started(self.source(kubeapi))
        assert registry.wait_ready(3) and usernames(registry) == []
        kubeapi.wait_watching()
        kubeapi.set_configmap(aws_auth(("A", "a")))
        wait_until(lambda: usernames(registry) == ["a"])


class TestCRDSource:
    """IAMIdentityMapping objects through the real client."""

    def test_list_and_follow(self, kubeapi: KubeAPI, started: Starter) -> None:
        """Objects are served in name order and followed through events."""
        kubeapi.set_mapping(
            "zz", {"arn": f"arn:aws:iam::{ACCT}:role/A", "username": "from-zz"}
        )
        kubeapi.set_mapping(
            "aa", {"arn": f"arn:aws:iam::{ACCT}:role/a", "username": "from-aa"}
        )
        registry = started(CRDSource(api_client=kubeapi.api_client(), backoff=FAST))
        assert registry.wait_ready(3)
        assert usernames(registry) == ["from-aa", "from-zz"]
        user = map_identity(caller("A"), registry.snapshot())
        assert user is not None and user.username == "from-aa"
        kubeapi.wait_watching()
        kubeapi.delete_mapping("aa")
        kubeapi.set_mapping(
            "mm",
            {"arn": f"arn:aws:iam::{ACCT}:user/u", "username": "u", "groups": ["g"]},
        )
        wait_until(lambda: usernames(registry) == ["from-zz"])
        wait_until(lambda: [e.username for e in registry.snapshot()[0].users] == ["u"])
        assert kubeapi.requests[0].startswith(
            "/apis/iamauthenticator.k8s.aws/v1alpha1/iamidentitymappings"
        )

    def test_a_list_in_pages_is_one_set(
        self, kubeapi: KubeAPI, started: Starter, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Seven objects in pages of two: one set of all seven, then a failed page."""
        monkeypatch.setattr(sources_kube, "LIST_PAGE", 2)
        for i in range(7):
            kubeapi.set_mapping(
                f"m{i}", {"arn": f"arn:aws:iam::{ACCT}:role/R{i}", "username": f"u{i}"}
            )
        rec = Recorder()
        registry = started(
            CRDSource(api_client=kubeapi.api_client(), backoff=FAST), on_reload=rec
        )
        assert registry.wait_ready(3)
        assert usernames(registry) == [f"u{i}" for i in range(7)]
        assert rec.calls == [("crd", "success", 7)]  # no set from a part of the list
        pages = [r for r in kubeapi.requests if "watch" not in r]
        assert len(pages) == 4 and all("limit=2" in r for r in pages)
        assert [r for r in pages if "continue=" in r] == pages[1:]

        # A page that fails mid-list: nothing published from the part, and
        # the list is tried again (the second try succeeds).
        registry.stop()
        kubeapi.requests.clear()
        kubeapi.fail_next = [0, 500]  # the first page succeeds, the second fails
        fresh = started(
            CRDSource(api_client=kubeapi.api_client(), backoff=FAST), on_reload=rec
        )
        assert fresh.wait_ready(5)
        assert usernames(fresh) == [f"u{i}" for i in range(7)]
        assert rec.calls[1:] == [("crd", "success", 7)]

    def test_a_burst_of_events_is_applied_together(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """300 creations arrive as events; far fewer rebuilds publish all of them."""
        rec = Recorder()
        registry = started(
            CRDSource(api_client=kubeapi.api_client(), backoff=FAST), on_reload=rec
        )
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        for i in range(300):
            kubeapi.set_mapping(
                f"m{i:03}",
                {"arn": f"arn:aws:iam::{ACCT}:role/R{i}", "username": f"u{i}"},
            )
        wait_until(lambda: len(usernames(registry)) == 300, timeout=10)
        assert usernames(registry) == [f"u{i}" for i in range(300)]
        assert all(call[1] == "success" for call in rec.calls)
        assert len(rec.calls) < 100  # the first list plus a few coalesced rebuilds

    @pytest.mark.parametrize("group", ["system:masters", "system:nodes"])
    def test_crd_cannot_grant_system_groups_by_default(
        self, kubeapi: KubeAPI, started: Starter, group: str
    ) -> None:
        """An IAMIdentityMapping granting a system: group is refused (configurable)."""
        kubeapi.set_mapping(
            "admin",
            {
                "arn": f"arn:aws:iam::{ACCT}:role/Admin",
                "username": "admin",
                "groups": ["devs", group],
            },
        )
        registry = started(CRDSource(api_client=kubeapi.api_client(), backoff=FAST))
        assert registry.wait_ready(3)
        result = evaluate_mapping(caller("Admin"), registry.snapshot())
        assert result.user is None
        assert result.outcome is MappingOutcome.RESERVED_PREFIX
        assert f"group {group!r} begins with 'system:'" in result.detail
        # An operator who wants the reference's behaviour says so.
        opened = started(
            CRDSource(
                api_client=kubeapi.api_client(),
                backoff=FAST,
                reserved_group_prefixes=(),
            )
        )
        assert opened.wait_ready(3)
        user = map_identity(caller("Admin"), opened.snapshot())
        assert user is not None and group in user.groups

    def test_invalid_object_keeps_last_good(
        self, kubeapi: KubeAPI, started: Starter
    ) -> None:
        """One invalid object keeps the whole previous set."""
        kubeapi.set_mapping(
            "a", {"arn": f"arn:aws:iam::{ACCT}:role/A", "username": "a"}
        )
        rec = Recorder()
        registry = started(
            CRDSource(api_client=kubeapi.api_client(), backoff=FAST), on_reload=rec
        )
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        before = registry.snapshot()
        kubeapi.set_mapping("b", {"arn": "arn:aws:iam::1:role/B", "username": "b"})
        wait_until(lambda: ("crd", "error", 1) in rec.calls)
        assert registry.snapshot() is before
        kubeapi.delete_mapping("b")
        wait_until(lambda: rec.calls[-1] == ("crd", "success", 1))

    def test_push_raw_error_event(self, kubeapi: KubeAPI, started: Starter) -> None:
        """An ERROR event other than 410 ends the watch; the source watches again."""
        registry = started(CRDSource(api_client=kubeapi.api_client(), backoff=FAST))
        assert registry.wait_ready(3)
        kubeapi.wait_watching()
        kubeapi.push_raw(
            MAPPINGS,
            '{"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError"}}',
        )
        wait_until(lambda: kubeapi.count("watch=True") >= 2)
        kubeapi.wait_watching()
        kubeapi.set_mapping(
            "a", {"arn": f"arn:aws:iam::{ACCT}:role/A", "username": "a"}
        )
        wait_until(lambda: usernames(registry) == ["a"])


class TestLoadAPIClient:
    """Building the Kubernetes client."""

    def test_kubeconfig_file(
        self, kubeapi: KubeAPI, tmp_path: Path, started: Starter
    ) -> None:
        """A kubeconfig pointing at the fixture gives a working client."""
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
            f"clusters: [{{name: t, cluster: {{server: '{kubeapi.url}'}}}}]\n"
            "users: [{name: t, user: {token: abc}}]\n"
            "contexts: [{name: t, context: {cluster: t, user: t}}]\n"
        )
        kubeapi.set_configmap(aws_auth(("A", "a")))
        client = load_api_client(str(kubeconfig))
        registry = started(ConfigMapSource(api_client=client, backoff=FAST))
        assert registry.wait_ready(3) and usernames(registry) == ["a"]

    def test_no_cluster_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Outside a pod without a kubeconfig: ConfigError."""
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        with pytest.raises(ConfigError, match="in-cluster"):
            load_api_client(None)


def test_inline_source_serves_its_set() -> None:
    """InlineSource delivers its set on start."""
    ms = MappingSet("inline", (), (), (ACCT,))
    registry = build_registry([InlineSource(ms)])
    registry.start()
    assert registry.ready and registry.snapshot() == (ms,)
