"""Admin-edited YAML, loaded so that every value still knows where it came from.

An admin who gets a file wrong must read ``mappings/qualification.yaml:14: <what> / hint: <fix>``,
never a traceback. This module is the only place that touches ruamel.yaml:

* :func:`load_yaml` / :func:`parse_yaml` turn a file (or text) into a :class:`Node` tree. A YAML
  syntax error, a duplicate key, an unreadable file or a non-UTF-8 file raises
  :class:`~crmbridge.errors.ConfigError` with the parser's line and column.
* Before building anything, a document is checked against limits a mapping file never needs,
  each reported at its line: more than ``MAX_YAML_BYTES``, more than ``MAX_YAML_NODES`` values
  (an alias counts as every value it repeats, so an alias bomb stops at the alias that crosses
  the bound), collections nested deeper than ``MAX_YAML_DEPTH``, or an alias inside the value
  it names. Without them a few hundred bytes of aliases ran for minutes and hundreds of MB.
* :class:`Node` wraps one value with its location (1-based lines; ruamel counts from 0).
* :class:`Problems` collects every problem of a file so the admin fixes them all in one round, and
  the ``check_*`` / ``get_*`` helpers validate the shape of a mapping into that collector.

:meth:`Node.plain` also wraps plain Python data (``RuleSet.from_dict``); its locations then name
the key path (``<dict>:criteria[1].op``) instead of a line.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    ScalarEvent,
)

from crmbridge.errors import ConfigError, ConfigProblem, Location

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "Node",
    "Problems",
    "check_keys",
    "close_match_hint",
    "get_bool",
    "get_text",
    "load_yaml",
    "parse_yaml",
]


#: The largest mapping file read (the shipped ones are a few kilobytes).
MAX_YAML_BYTES = 1_048_576
#: The most values (scalars and collections, aliases expanded) a mapping file may hold.
MAX_YAML_NODES = 20_000
#: The deepest nesting of lists and mappings (qualification groups need two levels each).
MAX_YAML_DEPTH = 100


class Node:
    """One value of a YAML document and where it sits (``line`` is 1-based, ``None`` if unknown)."""

    __slots__ = ("column", "line", "source", "trail", "value")

    def __init__(
        self,
        value: Any,
        source: str,
        line: int | None = None,
        column: int | None = None,
        trail: str = "",
    ) -> None:
        self.value = value
        self.source = source
        self.line = line
        self.column = column
        self.trail = trail

    def __repr__(self) -> str:
        return f"Node({self.value!r} at {self.location})"

    @property
    def location(self) -> Location:
        """Where this value is: ``file:line``, or ``source:key.path`` for data without lines."""
        if self.line is None and self.trail:
            return Location(f"{self.source}:{self.trail}")
        return Location(self.source, self.line)

    @property
    def is_mapping(self) -> bool:
        return isinstance(self.value, Mapping)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list | tuple)

    @property
    def kind(self) -> str:
        """The value's type in an admin's words, for messages like "expected text, got a list"."""
        return describe_kind(self.value)

    def _child(self, value: Any, pos: tuple[int, int] | None, step: str) -> Node:
        trail = self.trail + step
        if pos is None:
            # Plain data has no positions: children inherit ours so a message still points near.
            return Node(value, self.source, self.line, None, trail)
        return Node(value, self.source, pos[0] + 1, pos[1] + 1, trail)

    def _key_pos(self, key: Any) -> tuple[int, int] | None:
        lc = getattr(self.value, "lc", None)
        if lc is None:
            return None
        try:
            pos: tuple[int, int] = lc.key(key)
        except (KeyError, TypeError, AttributeError):
            return None
        return pos

    def get(self, key: str) -> Node | None:
        """The value under ``key`` of a mapping (located at its key's line), or ``None``."""
        if not self.is_mapping or key not in self.value:
            return None
        step = f".{key}" if self.trail else str(key)
        # The key's line, not the value's: for `key:` with a nested block the value starts on the
        # next line, and for `key:` with no value ruamel points at the *following* key.
        return self._child(self.value[key], self._key_pos(key), step)

    def key_node(self, key: Any) -> Node:
        """The key itself as a node (for "unknown key" problems)."""
        step = f".{key}" if self.trail else str(key)
        return self._child(key, self._key_pos(key), step)

    def items(self) -> Iterator[tuple[Any, Node]]:
        """``(key, value node)`` pairs of a mapping, in file order."""
        if not self.is_mapping:
            return
        for key in self.value:
            step = f".{key}" if self.trail else str(key)
            yield key, self._child(self.value[key], self._key_pos(key), step)

    def elements(self) -> Iterator[Node]:
        """The item nodes of a list, each located at its own line."""
        if not self.is_list:
            return
        lc = getattr(self.value, "lc", None)
        for index, item in enumerate(self.value):
            pos: tuple[int, int] | None = None
            if lc is not None:
                try:
                    pos = lc.item(index)
                except (KeyError, IndexError, TypeError, AttributeError):
                    pos = None
            yield self._child(item, pos, f"[{index}]")

    def plain(self) -> Any:
        """The value as built-in Python types (dict, list, str, int, float, bool, None)."""
        return to_plain(self.value)

    def problem(self, message: str, hint: str | None = None) -> ConfigProblem:
        return ConfigProblem(self.location, message, hint)


def to_plain(value: Any) -> Any:
    """Strip ruamel's round-trip subclasses (ScalarFloat, CommentedMap …) off a value."""
    if isinstance(value, Mapping):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for base in (int, float, str):
        if isinstance(value, base):
            return base(value)
    return value.isoformat() if isinstance(value, date) else value


# Checked in order: bool before number, because True is an int.
_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (type(None), "nothing"),
    (bool, "true/false"),
    ((int, float), "a number"),
    (str, "text"),
    (Mapping, "a mapping"),
    ((list, tuple), "a list"),
    (date, "a date"),
)


def describe_kind(value: Any) -> str:
    """``value``'s type in an admin's words ("text", "a list", "true/false" …)."""
    for types, name in _KINDS:
        if isinstance(value, types):
            return name
    return type(value).__name__


class Problems:
    """Collects the problems of one or more files; :meth:`raise_if_any` reports them all at once."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, where: Node | Location, message: str, hint: str | None = None) -> None:
        location = where.location if isinstance(where, Node) else where
        self.items.append(ConfigProblem(location, message, hint))

    def extend(self, problems: Collection[ConfigProblem]) -> None:
        self.items.extend(problems)

    def sorted(self) -> list[ConfigProblem]:
        """Problems in file order (stable, so problems on one line keep the order found)."""
        return sorted(self.items, key=lambda p: (p.location.path, p.location.line or 0))

    def raise_if_any(self) -> None:
        """Raise :class:`ConfigError` listing every collected problem; return if there are none."""
        if self.items:
            raise ConfigError(self.sorted())


def parse_yaml(text: str, source: str) -> Node:
    """Parse YAML ``text`` into a located :class:`Node`; ``source`` names it in messages.

    Raises ConfigError on syntax errors and duplicate keys, with the parser's line:column.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(_too_large(source, text[:MAX_YAML_BYTES].count("\n") + 1))
    yaml = YAML(typ="rt")  # a YAML instance is not thread-safe: one per call, it is cheap
    yaml.allow_duplicate_keys = False
    try:
        _check_limits(yaml.parse(text), source)
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        raise ConfigError(_syntax_problem(exc, source)) from None
    except YAMLError as exc:  # unmarked parser errors are rare; still never a traceback
        raise ConfigError(
            ConfigProblem(Location(source), f"not valid YAML: {exc}", _SYNTAX_HINT)
        ) from None
    line = None
    lc = getattr(data, "lc", None)
    if lc is not None:
        line = lc.line + 1
    return Node(data, source, line, None)


def load_yaml(path: Path, source: str | None = None) -> Node:
    """Read and parse the YAML file at ``path``; messages name it ``source`` (default: the path).

    Raises ConfigError when the file cannot be read, is not UTF-8, or is not valid YAML.
    """
    name = source if source is not None else str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_YAML_BYTES + 1)  # bounded: never a whole huge file or a FIFO
        if len(raw) > MAX_YAML_BYTES:
            raise ConfigError(_too_large(name, raw[:MAX_YAML_BYTES].count(b"\n") + 1))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            ConfigProblem(
                Location(name),
                "file not found",
                "check CRMBRIDGE_MAPPINGS_DIR, or copy the example from the crmbridge mappings/",
            )
        ) from None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            ConfigProblem(Location(name, line), "not UTF-8 text", "save the file as UTF-8")
        ) from None
    except OSError as exc:
        raise ConfigError(
            ConfigProblem(
                Location(name),
                f"cannot read the file: {exc.strerror}",
                "check that it is a file and that crmbridge may read it",
            )
        ) from None
    return parse_yaml(text, name)


def _too_large(source: str, line: int) -> ConfigProblem:
    return ConfigProblem(
        Location(source, line),
        f"the file is larger than {MAX_YAML_BYTES:,} bytes (1 MiB); it ends here",
        "mapping files are a few kilobytes: check that this is the right file",
    )


def _check_limits(events: Iterator[Event], source: str) -> None:
    """Walk the parser's events (no document is built) and raise ConfigError at the first
    value past :data:`MAX_YAML_NODES` (aliases expanded), collection deeper than
    :data:`MAX_YAML_DEPTH`, or alias inside the collection it names. Linear in the text."""
    sizes: dict[str, int] = {}  # anchor -> how many values one alias to it repeats
    open_collections: list[tuple[str | None, int]] = []  # (anchor, count at its start)
    total = 0
    for event in events:
        if isinstance(event, AliasEvent):
            name = str(event.anchor)
            if name not in sizes:
                if any(anchor == name for anchor, _ in open_collections):
                    raise _limit(
                        event,
                        source,
                        f"alias *{name} is used inside the value it names",
                        "an alias cannot contain itself: repeat the values instead",
                    )
                continue  # an undefined alias: the loader reports it with its own message
            total += sizes[name]
        elif isinstance(event, ScalarEvent | CollectionStartEvent):
            total += 1
            if isinstance(event, ScalarEvent):
                if event.anchor:
                    sizes[str(event.anchor)] = 1
            else:
                open_collections.append((event.anchor, total))
                if len(open_collections) > MAX_YAML_DEPTH:
                    raise _limit(
                        event,
                        source,
                        f"values nested more than {MAX_YAML_DEPTH} levels deep",
                        "flatten the structure (qualification groups nest at most 32 deep)",
                    )
        elif isinstance(event, CollectionEndEvent):
            anchor, start = open_collections.pop()
            if anchor:
                sizes[str(anchor)] = total - start + 1
        if total > MAX_YAML_NODES:
            raise _limit(
                event,
                source,
                f"the file has more than {MAX_YAML_NODES:,} values "
                "(an alias counts as every value it repeats)",
                "a mapping file needs far fewer: look for a very long list or value_map, "
                "or an alias (*name) repeated inside another alias",
            )


def _limit(event: Event, source: str, message: str, hint: str) -> ConfigError:
    return ConfigError(ConfigProblem(Location(source, event.start_mark.line + 1), message, hint))


_SYNTAX_HINT = (
    "check the indentation (spaces, not tabs), the colons after keys, and that quotes and "
    "brackets are closed"
)


def _syntax_problem(exc: MarkedYAMLError, source: str) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = exc.problem or exc.context or "not valid YAML"
    if "duplicate key" in problem:
        return ConfigProblem(
            Location(source, line, column),
            problem,
            "a key may appear only once in a mapping: remove or merge the repeated one",
        )
    context = ""
    if exc.context and exc.problem:
        # An unclosed bracket is noticed far below where it opened: name the opening line too.
        started = exc.context_mark
        opened = f" started on line {started.line + 1}" if started is not None else ""
        context = f" ({exc.context}{opened})"
    return ConfigProblem(
        Location(source, line, column), f"not valid YAML: {problem}{context}", _SYNTAX_HINT
    )


def close_match_hint(word: str, options: Collection[str], *, what: str = "valid values") -> str:
    """``did you mean "x"? valid values: a, b, c`` (the first part only when one is close)."""
    listing = f"{what}: {', '.join(options)}"
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"? {listing}' if close else listing


def check_keys(
    node: Node,
    problems: Problems,
    allowed: Collection[str],
    *,
    required: Collection[str] = (),
    what: str,
) -> bool:
    """Check that ``node`` is a mapping with only ``allowed`` keys and every ``required`` one.

    Returns False when ``node`` is not a mapping at all (callers then skip its contents).
    """
    if not node.is_mapping:
        problems.add(
            node,
            f"{what} must be a mapping of keys, got {node.kind}",
            "write `key: value` lines indented below it, or {key: value, ...} on one line",
        )
        return False
    for key, _ in node.items():
        if not isinstance(key, str) or key not in allowed:
            problems.add(
                node.key_node(key),
                f'unknown key "{key}" in {what}',
                close_match_hint(str(key), sorted(allowed), what="valid keys"),
            )
    for key in required:
        if key not in node.value:
            problems.add(node, f'{what} has no "{key}"', f'add "{key}: ..."')
    return True


def get_text(
    node: Node, key: str, problems: Problems, *, required: bool = False, what: str
) -> str | None:
    """The non-empty text under ``key``, or None (missing, or wrong and reported)."""
    child = node.get(key)
    if child is None:
        if required:
            problems.add(node, f'{what} has no "{key}"', f'add "{key}: ..."')
        return None
    if not isinstance(child.value, str) or not child.value.strip():
        problems.add(
            child,
            f'"{key}" of {what} must be text, got {child.kind}',
            "write a non-empty value; quote it if it looks like a number or a date",
        )
        return None
    return str(child.value).strip()


def get_bool(node: Node, key: str, problems: Problems, *, default: bool, what: str) -> bool:
    """The true/false value under ``key`` (``default`` when missing or wrong and reported)."""
    child = node.get(key)
    if child is None:
        return default
    if not isinstance(child.value, bool):
        problems.add(
            child,
            f'"{key}" of {what} must be true or false, got {child.kind}',
            "write true or false",
        )
        return default
    return child.value


def get_count(node: Node, key: str, problems: Problems, *, what: str, default: int = 0) -> int:
    """The whole number of at least 0 under ``key`` (``default`` when missing or wrong and
    reported)."""
    child = node.get(key)
    if child is None:
        return default
    value = child.value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        got = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""
        problems.add(
            child,
            f'"{key}" of {what} must be a whole number of 0 or more, got {got or child.kind}',
            f"write e.g. {key}: 20",
        )
        return default
    return int(value)


def child_or_self(node: Node, key: str) -> Node:
    """The node under ``key``, or ``node`` itself (a problem about a missing key points here)."""
    child = node.get(key)
    return child if child is not None else node


_Choice = TypeVar("_Choice", bound=StrEnum)


def get_choice(
    node: Node,
    key: str,
    choices: type[_Choice],
    *,
    default: _Choice,
    problems: Problems,
    what: str,
) -> _Choice:
    """The member of ``choices`` named under ``key`` (``default`` when missing, or wrong and
    reported with the valid values)."""
    text = get_text(node, key, problems, what=what)
    if text is None:
        return default
    try:
        return choices(text)
    except ValueError:
        problems.add(
            child_or_self(node, key),
            f'{what}: "{key}" cannot be "{text}"',
            close_match_hint(text, [c.value for c in choices], what="valid values"),
        )
        return default


def names_in(
    node: Node, allowed: Sequence[str], problems: Problems, *, what: str, of: str, listed: str
) -> list[str] | None:
    """A name, or a list of names, each one of ``allowed``; ``None`` when any is not (each
    reported at its line as not being ``of``, with the closest of ``listed`` as a hint)."""
    items = list(node.elements()) if node.is_list else [node]
    found: list[str] = []
    for item in items:
        value = item.value
        if not isinstance(value, str) or value not in allowed:
            problems.add(
                item,
                f'{what}: "{value}" is not {of}',
                close_match_hint(str(value), list(allowed), what=listed),
            )
            continue
        found.append(value)
    if not items:
        problems.add(node, f"{what}: an empty list", f"name at least one of {listed}")
    return found if items and len(found) == len(items) else None
