"""The start-up shortcuts of ``kubeiam token``, in one place.

kubectl runs ``kubeiam token`` on every command, so a cache hit must cost
little more than starting the interpreter. Four shortcuts make that so; each
does exactly what the standard library does for the inputs it takes, is
checked against that library in ``tests/authenticator/test_startup.py``, and
hands the input to the library on *any* failure of its own (not only a
missing C module):

- :func:`preparse_flags`: the usual flag spellings without argparse (~14 ms
  with re, enum and gettext); anything else returns None and the caller runs
  argparse, whose messages and exit codes are the reference.
- :func:`read_profile_section`: a usual ``~/.aws/config`` without configparser
  (which loads re, ~15 ms); an odd file returns None and the caller asks
  configparser.
- :func:`json_loads` / :func:`json_dumps`: json's own C scanner and string
  encoder without importing json (and re, ~13 ms); anything the fast path does
  not take, or any error inside it, goes to the json module.
- :class:`FrozenRecord`: an immutable, slotted value type that compares like a
  frozen, slotted dataclass, without importing dataclasses (with inspect,
  ~11 ms) or typing (~5 ms).

The C classes of ``datetime`` are re-exported from here for the same reason
(datetime.py defines a pure-Python copy of everything, ~3 ms, before
re-exporting them).

Nothing here may import more than the C-level stdlib modules it names.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import UTC as UTC
    from datetime import datetime as datetime
    from datetime import timedelta as timedelta
else:
    try:
        from _datetime import UTC, datetime, timedelta
    except ImportError:  # pragma: no cover - CPython always has _datetime
        from datetime import UTC, datetime, timedelta

__all__ = [
    "UTC",
    "FrozenRecord",
    "datetime",
    "json_dumps",
    "json_loads",
    "preparse_flags",
    "read_profile_section",
    "timedelta",
]


def preparse_flags(
    argv: list[str],
    value_options: Mapping[str, str],
    switch_options: Mapping[str, str],
) -> dict[str, object] | None:
    """Parse the usual spellings of flags without argparse, or give up.

    Accepts the forms argparse reads the same way: ``-i VALUE``, ``-iVALUE``,
    ``-i=VALUE``, ``--cluster-id VALUE``, ``--cluster-id=VALUE`` and switches,
    the last of a repeated flag winning. Anything else (``--help``, ``--``, an
    abbreviation, an unknown or malformed flag, a value that starts with
    ``-``, a stray argument), and any failure inside, returns None: the caller
    runs argparse.

    Args:
        argv: The arguments.
        value_options: Option string (``-i``, ``--cluster-id``) -> field name,
            for options that take one value.
        switch_options: Option string -> field name, for ``store_true`` switches.

    Returns:
        Field name -> value (True for switches), or None when argparse must decide.
    """
    try:
        return _preparse_flags(argv, value_options, switch_options)
    except Exception:  # any failure of the shortcut means: use argparse
        return None


def _preparse_flags(
    argv: list[str],
    value_options: Mapping[str, str],
    switch_options: Mapping[str, str],
) -> dict[str, object] | None:
    values: dict[str, object] = {}
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        field = switch_options.get(arg)
        if field is not None:
            values[field] = True
            continue
        field = value_options.get(arg)
        if field is not None:
            if i >= n:
                return None
            value = argv[i]
            i += 1
        elif arg.startswith("--"):
            name, eq, value = arg.partition("=")
            field = value_options.get(name)
            if field is None or not eq:
                return None
        elif len(arg) > 2 and arg[0] == "-":
            field = value_options.get(arg[:2])
            if field is None:
                return None
            value = arg[3:] if arg[2] == "=" else arg[2:]
        else:
            return None
        if value.startswith("-"):
            return None
        values[field] = value
    return values


def read_profile_section(text: str, profile: str) -> dict[str, str] | None:
    """Read a profile's settings from a plain AWS config file without configparser.

    Returns what ``configparser.RawConfigParser`` gives (the section ``profile
    NAME``, or ``default`` for the default profile, merged over ``[DEFAULT]``;
    ``{}`` when there is none) for the common shape of ``~/.aws/config``:
    printable ASCII, ``[section]`` headers, ``key = value`` or ``key: value``
    lines, ``#`` / ``;`` comment lines, blank lines and indented continuation
    lines (``s3 =`` blocks). Anything else (a repeated section or key, a line
    before the first section, an indented line that continues nothing, a line
    without a delimiter, a header with trailing text), and any failure inside,
    returns None: the caller asks configparser, whose reading is the reference.

    Args:
        text: The file's text (newlines translated).
        profile: The profile name.
    """
    try:
        return _read_profile_section(text, profile)
    except Exception:  # any failure of the shortcut means: use configparser
        return None


def _read_profile_section(text: str, profile: str) -> dict[str, str] | None:
    defaults: dict[str, list[str]] = {}
    sections: dict[str, dict[str, list[str]]] = {}
    seen: set[tuple[str, str]] = set()
    current: dict[str, list[str]] | None = None
    section = ""
    option: str | None = None
    for line in text.split("\n"):
        if not (line.isascii() and line.replace("\t", " ").isprintable()):
            return None
        value = line.strip()
        if not value or value[0] in "#;":
            if not value and current is not None and option is not None:
                current[option].append("")  # configparser keeps inner blank lines
            continue
        if line[0] in " \t":
            if current is None or option is None:
                return None
            current[option].append(value)
            continue
        option = None
        if value[0] == "[":
            if value[-1] != "]" or len(value) < 3 or value[1:-1] in sections:
                return None
            section = value[1:-1]
            if section == "DEFAULT":
                if ("DEFAULT", "") in seen:
                    return None
                seen.add(("DEFAULT", ""))
                current = defaults
            else:
                current = sections[section] = {}
            continue
        cuts = [cut for cut in (value.find("="), value.find(":")) if cut >= 0]
        if current is None or not cuts or min(cuts) == 0:
            return None
        cut = min(cuts)
        name = value[:cut].rstrip().lower()
        if (section, name) in seen:
            return None
        seen.add((section, name))
        current[name] = [value[cut + 1 :].strip()]
        option = name
    for wanted in (f"profile {profile}", profile if profile == "default" else ""):
        if wanted and wanted in sections:
            merged = {k: "\n".join(v).rstrip() for k, v in defaults.items()}
            merged.update(
                (k, "\n".join(v).rstrip()) for k, v in sections[wanted].items()
            )
            return merged
    return {}


# JSON whitespace (json.decoder.WHITESPACE) and json's float constants.
_JSON_WS = " \t\n\r"
_JSON_CONSTANTS = {
    "-Infinity": float("-inf"),
    "Infinity": float("inf"),
    "NaN": float("nan"),
}
# Deeper documents go to the json module (which detects cycles).
_MAX_DUMP_DEPTH = 32


class _ScanContext:
    """What ``_json.make_scanner`` reads: ``json.JSONDecoder()``'s settings."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _JSON_CONSTANTS.__getitem__


def _make_scan() -> Callable[[str, int], tuple[object, int]] | None:
    """The C scanner, or None when it cannot be had (json.loads is used instead)."""
    try:
        from _json import make_scanner

        return make_scanner(_ScanContext())  # type: ignore[arg-type]  # duck-typed context
    except Exception:  # any failure of the shortcut means: use json
        return None


def _load_encoder() -> Callable[[str], str] | None:
    try:
        from _json import encode_basestring_ascii
    except Exception:  # any failure of the shortcut means: use json
        return None
    return encode_basestring_ascii


_scan = _make_scan()
_c_encode_string = _load_encoder()


def json_loads(text: str) -> object:
    """Return ``json.loads(text)``, importing json only when that is needed.

    A document the C scanner reads whole is returned as json would return it
    (json.loads runs the same scanner); anything else (a syntax error, a BOM,
    trailing data) is handed to :func:`json.loads`, which returns or raises
    exactly as it always does.

    Args:
        text: The JSON text.

    Raises:
        json.JSONDecodeError: Not JSON (a ValueError).
    """
    if _scan is not None and not text.startswith("\ufeff"):
        start = len(text) - len(text.lstrip(_JSON_WS))
        try:
            value, end = _scan(text, start)
        except Exception:  # noqa: S110 - json.loads below decides
            pass
        else:
            if not text[end:].strip(_JSON_WS):
                return value
    import json

    return json.loads(text)


def json_dumps(doc: object, *, sort_keys: bool = False) -> str:
    """Return ``json.dumps(doc, separators=(",", ":"), sort_keys=sort_keys)``.

    Dicts with string keys, lists, strings, ints, booleans and None are
    written here (ASCII-escaped by json's own C function); any other value
    (floats, subclasses, very deep nesting) is handed to :func:`json.dumps`.

    Args:
        doc: The document.
        sort_keys: Sort object keys, as json's ``sort_keys``.
    """
    out: list[str] = []
    if _c_encode_string is not None:
        try:
            if _dump_into(out, doc, sort_keys, 0, _c_encode_string):
                return "".join(out)
        except Exception:  # noqa: S110 - json.dumps below decides
            pass
    import json

    return json.dumps(doc, separators=(",", ":"), sort_keys=sort_keys)


def _dump_into(
    out: list[str],
    doc: object,
    sort_keys: bool,
    depth: int,
    encode: Callable[[str], str],
) -> bool:
    kind = type(doc)
    if isinstance(doc, str) and kind is str:
        out.append(encode(doc))
    elif doc is None:
        out.append("null")
    elif doc is True:
        out.append("true")
    elif doc is False:
        out.append("false")
    elif isinstance(doc, int) and kind is int:
        out.append(int.__repr__(doc))
    elif depth >= _MAX_DUMP_DEPTH:
        return False
    elif isinstance(doc, dict) and kind is dict:
        items = sorted(doc.items()) if sort_keys else doc.items()
        out.append("{")
        for index, (name, value) in enumerate(items):
            if type(name) is not str:
                return False
            if index:
                out.append(",")
            out.append(encode(name))
            out.append(":")
            if not _dump_into(out, value, sort_keys, depth + 1, encode):
                return False
        out.append("}")
    elif isinstance(doc, list | tuple) and kind in (list, tuple):
        out.append("[")
        for index, value in enumerate(doc):
            if index:
                out.append(",")
            if not _dump_into(out, value, sort_keys, depth + 1, encode):
                return False
        out.append("]")
    else:
        return False
    return True


class FrozenRecord:
    """An immutable, slotted value type compared field by field.

    A start-up-cheap stand-in for a frozen, slotted dataclass (see the module
    docstring). Subclasses name their fields in ``__slots__``, annotate them,
    and set them once in a typed ``__init__`` through :meth:`_set`. Fields
    named in ``_SECRET_FIELDS`` are masked in ``repr``.
    """

    __slots__: tuple[str, ...] = ()
    _SECRET_FIELDS: frozenset[str] = frozenset()

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def as_dict(self) -> dict[str, object]:
        """Return the fields as a dict, in declaration order."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FrozenRecord) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        shown = (
            f"{name}=<hidden>"
            if name in self._SECRET_FIELDS
            else f"{name}={getattr(self, name)!r}"
            for name in self.__slots__
        )
        return f"{type(self).__name__}({', '.join(shown)})"
