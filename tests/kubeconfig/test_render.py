"""kubeconfig.render: YAML, atomic writes, KUBECONFIG lists, the symlink rule."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from kubeconfig import render
from kubeconfig.errors import KubeconfigError


class TestYAML:
    """dump_yaml and load_yaml_file."""

    def test_round_trip_keeps_order_and_types(self, tmp_path: Path) -> None:
        """Dumped YAML loads back equal, keys in order, tricky strings quoted."""
        doc = {
            "z": 1,
            "a": ["yes", "0123", "1.10", True, None],
            "long": "x" * 5000,
            "nested": {"k": [{"name": "n"}]},
        }
        text = render.dump_yaml(doc, header="written by a test\nsecond line")
        assert text.startswith("# written by a test\n# second line\nz: 1\n")
        path = tmp_path / "f.yaml"
        path.write_text(text)
        loaded = render.load_yaml_file(path)
        assert loaded is not None
        assert loaded[0] == doc
        assert list(loaded[0]) == ["z", "a", "long", "nested"]
        assert loaded[1] == text.encode()

    def test_missing_file_is_none(self, tmp_path: Path) -> None:
        """A file that does not exist loads as None."""
        assert render.load_yaml_file(tmp_path / "absent") is None

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (
                b"clusters: [\n  - a\n  b: c\n",
                r"not valid YAML: line \d+, column \d+: ",
            ),
            (b"\xff\xfe", "not UTF-8"),
            (
                b"[" * 1001 + b"]" * 1001,
                "not valid YAML: nested deeper than 100 levels",
            ),
        ],
    )
    def test_corrupt_file_names_file_and_line(
        self, tmp_path: Path, content: bytes, message: str
    ) -> None:
        """Broken YAML or bytes are a KubeconfigError naming the file (and the line)."""
        path = tmp_path / "config"
        path.write_bytes(content)
        with pytest.raises(KubeconfigError, match=message) as exc:
            render.load_yaml_file(path)
        assert str(path) in str(exc.value)


class TestWriteAtomic:
    """write_atomic."""

    @pytest.mark.parametrize("mode", [0o600, 0o644])
    def test_mode_content_and_no_leftovers(self, tmp_path: Path, mode: int) -> None:
        """The file has the content and mode asked for; no temporary file remains."""
        path = tmp_path / "config"
        path.write_text("old")
        path.chmod(0o666)
        render.write_atomic(path, b"new", mode=mode)
        assert path.read_bytes() == b"new"
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]

    def test_failure_is_a_kubeconfig_error(self, tmp_path: Path) -> None:
        """A missing directory is a KubeconfigError naming the path."""
        with pytest.raises(KubeconfigError, match="cannot write"):
            render.write_atomic(tmp_path / "no" / "config", b"x", mode=0o600)

    def test_ensure_private_dir(self, tmp_path: Path) -> None:
        """Missing directories are created 0700; a file in the way is an error."""
        target = tmp_path / "a" / "b"
        render.ensure_private_dir(target)
        assert stat.S_IMODE(target.stat().st_mode) == 0o700
        (tmp_path / "f").write_text("")
        with pytest.raises(KubeconfigError, match="not a directory"):
            render.ensure_private_dir(tmp_path / "f")


class TestKubeconfigPaths:
    """kubeconfig_paths follows kubectl's precedence."""

    @pytest.mark.parametrize(
        ("explicit", "env", "expected"),
        [
            ("/x/c", {"KUBECONFIG": "/a:/b"}, ["/x/c"]),
            (None, {"KUBECONFIG": "/a:/b"}, ["/a", "/b"]),
            (None, {"KUBECONFIG": ":/a::/b:/a"}, ["/a", "/b"]),
            (None, {"KUBECONFIG": ""}, ["/home/u/.kube/config"]),
            (None, {}, ["/home/u/.kube/config"]),
        ],
    )
    def test_precedence(
        self, explicit: str | None, env: dict[str, str], expected: list[str]
    ) -> None:
        """--kubeconfig, else KUBECONFIG (no empties/repeats), else ~/.kube/config."""
        paths = render.kubeconfig_paths(explicit, env, Path("/home/u"))
        assert paths == [Path(p) for p in expected]

    def test_first_path_defining(self, tmp_path: Path) -> None:
        """The first file naming the entry is found; broken files are skipped."""
        broken, other, has = (tmp_path / n for n in ("broken", "other", "has"))
        broken.write_text("clusters: [")
        other.write_text(yaml.safe_dump({"clusters": [{"name": "x"}]}))
        has.write_text(yaml.safe_dump({"clusters": [{"name": "target"}]}))
        candidates = [tmp_path / "missing", broken, other, has]
        assert render.first_path_defining(candidates, "clusters", "target") == has
        assert render.first_path_defining(candidates, "users", "target") is None


class TestSymlinkRule:
    """check_write_target: links are followed only to safe places (render docs)."""

    @pytest.fixture
    def private(self, tmp_path: Path) -> Path:
        """A private directory holding a real kubeconfig file."""
        home = tmp_path / "private"
        home.mkdir(mode=0o700)
        (home / "real").write_text("apiVersion: v1\n")
        return home

    def test_plain_path_is_itself(self, tmp_path: Path) -> None:
        """A path without links is written where it is, existing or not."""
        assert render.check_write_target(tmp_path / "new") == tmp_path / "new"

    def test_directory_in_the_way_is_refused(self, tmp_path: Path) -> None:
        """A directory where the file should be is refused."""
        (tmp_path / "d").mkdir()
        with pytest.raises(KubeconfigError, match="not a regular file"):
            render.check_write_target(tmp_path / "d")

    def test_link_to_own_file_in_private_dir_is_followed(
        self, tmp_path: Path, private: Path
    ) -> None:
        """A link to an own file in a private directory resolves to that file."""
        link = tmp_path / "config"
        link.symlink_to(private / "real")
        assert render.check_write_target(link) == private / "real"

    def test_linked_directory_with_new_file_is_allowed(
        self, tmp_path: Path, private: Path
    ) -> None:
        """A linked directory (~/.kube -> dotfiles) may receive a new file."""
        (tmp_path / "kube").symlink_to(private)
        assert (
            render.check_write_target(tmp_path / "kube" / "config")
            == private / "config"
        )

    def test_dangling_link_is_refused(self, tmp_path: Path, private: Path) -> None:
        """A link to a file that does not exist is refused (it would create it)."""
        link = tmp_path / "config"
        link.symlink_to(private / "absent")
        with pytest.raises(KubeconfigError, match="dangling symlink"):
            render.check_write_target(link)

    def test_link_into_shared_dir_is_refused(self, tmp_path: Path) -> None:
        """A link into a group/world-writable directory is refused."""
        shared = tmp_path / "shared"
        shared.mkdir()
        (shared / "real").write_text("")
        shared.chmod(0o777)
        link = tmp_path / "config"
        link.symlink_to(shared / "real")
        with pytest.raises(KubeconfigError, match="writable by group or others"):
            render.check_write_target(link)

    def test_link_to_someone_elses_file_is_refused(
        self, tmp_path: Path, private: Path
    ) -> None:
        """A link to a file owned by another user is refused."""
        link = tmp_path / "config"
        link.symlink_to(private / "real")
        with pytest.raises(KubeconfigError, match="owned by another user"):
            render.check_write_target(link, uid=os.getuid() + 1)

    def test_link_to_a_directory_is_refused(
        self, tmp_path: Path, private: Path
    ) -> None:
        """A link whose target is a directory is refused."""
        link = tmp_path / "config"
        link.symlink_to(private)
        with pytest.raises(KubeconfigError, match="not a regular file"):
            render.check_write_target(link)
