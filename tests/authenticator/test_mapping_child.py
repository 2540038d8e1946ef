"""Parsing mapping text in a child process; reading its answer; releasing old sets."""

from __future__ import annotations

import gc
import io
import struct
import sys

import pytest

from authenticator import mapping_child
from authenticator.errors import ConfigError
from authenticator.mapping import MappingSet, parse_mapping_text
from authenticator.mapping_child import (
    ChildParseError,
    parse_in_child,
    quiet_section,
    release_gradually,
)
from authenticator.mapping_model import PackedEntries, with_group_prefixes

ACCT = "111122223333"
TEXT = f"""\
mapRoles:
  - rolearn: arn:aws:iam::{ACCT}:role/team/a/Deploy
    username: deploy-{{{{SessionName}}}}
    groups: [deployers, "0123"]
  - rolearn: arn:aws:iam::{ACCT}:role/Plain
    username: plain
  - sso:
      permissionSetName: Admin
      accountID: "{ACCT}"
    username: admin-{{{{SessionName}}}}
    groups: [admins]
  - roleARN: arn:aws:sts::{ACCT}:assumed-role/Session/alice
    UserName: never
mapUsers:
  - userarn: arn:aws:iam::{ACCT}:user/path/Alice
    username: alice
    groups: [deployers]
mapAccounts: ["{ACCT}"]
"""


def in_process(text: str) -> MappingSet:
    """What the server parses without a child."""
    return with_group_prefixes(
        parse_mapping_text(
            text, source="file", where="m.yaml", reserved_prefixes=("kube-",)
        ),
        ("system:",),
    )


def in_child(text: str) -> MappingSet:
    """The same through the child process."""
    return parse_in_child(
        text.encode(),
        source="file",
        where="m.yaml",
        reserved_prefixes=("kube-",),
        reserved_group_prefixes=("system:",),
    )


def test_child_gives_the_same_set() -> None:
    """Entries, order, match keys, sso, accounts and both prefix lists agree."""
    ours, theirs = in_child(TEXT), in_process(TEXT)
    assert ours == theirs
    assert isinstance(ours.roles, PackedEntries)
    assert isinstance(ours.users, PackedEntries)
    assert [e.match_key for e in (*ours.roles, *ours.users)] == [
        e.match_key for e in (*theirs.roles, *theirs.users)
    ]
    assert ours.find_entry(f"arn:aws:iam::{ACCT}:role/deploy") == theirs.roles[0]
    assert ours.roles[2].sso is not None and ours.maps_account(ACCT)
    assert (ours.reserved_prefixes, ours.reserved_group_prefixes) == (
        ("kube-",),
        ("system:",),
    )


def test_many_entries_cross_frames() -> None:
    """A table larger than one frame comes back whole, roles before users."""
    text = "mapRoles:\n" + "".join(
        f"- rolearn: arn:aws:iam::{ACCT}:role/r{i}\n  username: u{i}\n"
        for i in range(1_234)
    )
    text += f"mapUsers:\n- userarn: arn:aws:iam::{ACCT}:user/last\n  username: z\n"
    ours = in_child(text)
    assert ours == in_process(text)
    assert len(ours.roles) == 1_234 and ours.users[0].username == "z"


def test_invalid_text_is_the_in_process_message() -> None:
    """A broken text raises ConfigError with the message an in-process parse gives."""
    bad = TEXT.replace(
        "mapAccounts:", "  - userarn: nope\n    username: x\nmapAccounts:"
    )
    with pytest.raises(ConfigError) as here:
        in_process(bad)
    with pytest.raises(ConfigError) as there:
        in_child(bad)
    assert str(there.value) == str(here.value)
    assert "mapUsers[1].userarn" in str(there.value)


def test_not_utf8_is_refused() -> None:
    """Bytes that are not UTF-8 are a ConfigError, not a crash."""
    with pytest.raises(ConfigError, match="not UTF-8"):
        parse_in_child(b"mapRoles: [\xff]\n", source="file", where="m.yaml")


def test_a_failing_child_is_a_child_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that cannot run or dies says so (the caller keeps its last set)."""
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(ChildParseError, match="exited 1"):
        in_child(TEXT)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(ChildParseError, match="cannot run"):
        in_child(TEXT)


def test_quiet_section_restores_the_interpreter() -> None:
    """Nested sections pause the collector and shorten the switch interval, once."""
    switch = sys.getswitchinterval()
    assert gc.isenabled()
    with quiet_section():
        with quiet_section():
            assert not gc.isenabled() and sys.getswitchinterval() < switch
        assert not gc.isenabled()
    assert gc.isenabled() and sys.getswitchinterval() == switch
    gc.disable()
    try:
        with quiet_section():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_release_gradually_drops_every_reference() -> None:
    """The set's references to its entries go, and the list is emptied."""
    mapping_set = in_process(TEXT)
    entry = mapping_set.users[0]
    before = sys.getrefcount(entry)
    retired = [mapping_set]
    del mapping_set
    release_gradually(retired)
    assert retired == []
    # the users tuple and the by-key index held it; only ours is left
    assert sys.getrefcount(entry) == before - 2


def test_release_gradually_lets_packed_sets_go() -> None:
    """A packed set is not unpacked to be released: its buffers just go."""
    mapping_set = in_child(TEXT)
    assert isinstance(mapping_set.roles, PackedEntries)
    buffer = mapping_set.roles._data  # the buffer the set serves from
    before = sys.getrefcount(buffer)
    retired = [mapping_set]
    del mapping_set
    release_gradually(retired)
    assert retired == []
    assert sys.getrefcount(buffer) == before - 1


def _answer(text: str) -> bytes:
    """The bytes the child writes for ``text``."""
    out = io.BytesIO()
    mapping_child._answer(
        {
            "source": "file",
            "where": "m.yaml",
            "reserved_prefixes": [],
            "reserved_group_prefixes": [],
        },
        text.encode(),
        out,
    )
    return out.getvalue()


def test_the_answer_read_back_is_the_set() -> None:
    """What the child writes is read back as the in-process set."""
    assert mapping_child._read_answer(_answer(TEXT)) == parse_mapping_text(
        TEXT, source="file", where="m.yaml"
    )


@pytest.mark.parametrize("cut", [1, 9, 200])
def test_a_short_or_damaged_answer_is_a_child_error(cut: int) -> None:
    """An answer cut short, or with buffers that do not fit, is never served."""
    answer = _answer(TEXT)
    with pytest.raises(ChildParseError, match=r"cut short|incomplete|damaged"):
        mapping_child._read_answer(answer[:-cut])
    frames = bytearray(answer)
    # the roles' last entry offset, made to point past their data
    header = struct.unpack_from("<Q", frames)[0]
    first = 8 + header
    data_len = struct.unpack_from("<Q", frames, first)[0]
    offsets_at = first + 8 + data_len
    offsets_len = struct.unpack_from("<Q", frames, offsets_at)[0]
    struct.pack_into("<q", frames, offsets_at + offsets_len, 1 << 40)
    with pytest.raises(ChildParseError, match="damaged"):
        mapping_child._read_answer(bytes(frames))
