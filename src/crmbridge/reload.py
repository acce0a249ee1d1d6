"""Hot reload: a running daemon picks up edited files under its mappings directory.

The pipeline asks :meth:`ConfigReloader.candidate` at the start of each pass and before each page.
The reloader looks at the files' sizes and modification times (cheap, every page), and reads them
only when those changed or a SIGHUP asked it to (:meth:`request`). A changed content is loaded
and checked as ``crmbridge validate --files-only`` does (every file, each against the others); the
pipeline then checks it against the cached Salesforce describe (``SyncPipeline.use_config``) and
swaps it in whole between two pages, or refuses it, keeping the configuration in use. Never half
applied: a page, and a Salesforce batch, is always judged under one configuration, and every
decision records the rule-set version that judged it.

Two more refusals keep that version meaningful and the judgement honest:

- the rules' content changed but their explicit ``version:`` did not (two different definitions of
  "qualified" must never share one label on decisions);
- (deferred, not refused) the new files read a HubSpot property this pass is not pulling: they
  apply from the next pass, which asks HubSpot for it, instead of judging without it.

A refused edit is logged once per content (``config_reload_refused`` with every ``file:line``
problem and its hint), counted, and not retried until the files change again or a SIGHUP asks.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog

from crmbridge.configuration import RULES_FILE, Configuration, load_configuration
from crmbridge.errors import ConfigError, ConfigProblem, Location

log = structlog.get_logger(__name__)

#: Files under the mappings directory whose change triggers a reload check.
WATCHED_SUFFIXES = frozenset({".yaml", ".yml"})

_VERSION_LINE = re.compile(r"^version\s*:")

Loader = Callable[[Path], Configuration]


class ReloadObserver(Protocol):
    """Told of every reload outcome (metrics)."""

    def config_reload(self, result: str, rules_version: str) -> None:
        """``result``: applied, refused, deferred ("" at start); ``rules_version`` judges now."""
        ...


@dataclass
class ReloadCounts:
    """What the reloader did since start: ``applied``, ``refused``, ``deferred`` (kept as data
    for metrics and ``status``)."""

    applied: int = 0
    refused: int = 0
    deferred: int = 0
    last_problems: list[str] = field(default_factory=list)


class ConfigReloader:
    """Watches one pipeline's mappings directory and offers the pipeline each valid new
    configuration (see the module docstring for when an edit is applied, deferred or refused)."""

    def __init__(
        self,
        directory: Path,
        active: Configuration,
        *,
        load: Loader = load_configuration,
        observer: ReloadObserver | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._load = load
        self._observer = observer
        self._requested = threading.Event()
        self._signature = self._stat_signature()
        self._content = self._content_hash()
        self._active_content = self._content
        self._active = active
        self._settled_content = self._content  # last content applied or refused: seen
        self._pending_content = self._content  # offered by candidate(), not yet applied
        self.counts = ReloadCounts()
        self._tell("")

    @property
    def active(self) -> Configuration:
        """The configuration last applied (the one the pipeline judges with)."""
        return self._active

    def request(self) -> None:
        """Re-read the files at the next page or pass, even if they look unchanged (SIGHUP).
        Only sets an Event: safe from a signal handler."""
        self._requested.set()

    # -- asked by the pipeline -----------------------------------------------------------------
    def candidate(self, pulling: frozenset[str] | None) -> Configuration | None:
        """A new, valid configuration to judge with from now on, or None (nothing new, refused,
        or deferred). ``pulling``: the properties this pass asks HubSpot for (None between
        passes: any property may be pulled)."""
        requested = self._requested.is_set()
        signature = self._stat_signature()
        if not requested and signature == self._signature:
            return None
        self._requested.clear()
        self._signature = signature
        content = self._content_hash()
        if content == self._active_content:
            if requested:
                log.info("config_unchanged", directory=str(self.directory))
            self._settled_content = content
            return None
        if content == self._settled_content and not requested:
            return None  # already refused: said once, not every page
        try:
            config = self._load(self.directory)
            _check_version_label(self._active, config)
        except ConfigError as exc:
            self.refused(content, exc)
            return None
        missing = config.pulled_properties - pulling if pulling is not None else frozenset()
        if missing:
            # Judging now would read properties this pass did not ask HubSpot for.
            self.counts.deferred += 1
            self._tell("deferred")
            self._signature = None  # look again before the next page (and the next pass)
            log.info(
                "config_reload_deferred",
                directory=str(self.directory),
                rules_version=config.rules.version,
                new_properties=sorted(missing),
                applies="from the next pass",
            )
            return None
        self._pending_content = content
        return config

    def applied(self, config: Configuration) -> None:
        """The pipeline now judges with ``config`` (offered by :meth:`candidate`)."""
        previous = self._active
        self._active = config
        self._active_content = self._settled_content = self._pending_content
        self.counts.applied += 1
        self._tell("applied")
        self.counts.last_problems = []
        log.info(
            "config_reloaded",
            directory=str(self.directory),
            rules_version=config.rules.version,
            previous_rules_version=previous.rules.version,
            rule_set=config.rules.name,
        )

    def refused(self, content: str | None, error: ConfigError) -> None:
        """An edit that cannot run: logged loudly with every location; the last good
        configuration keeps running."""
        self._settled_content = content if content is not None else self._pending_content
        self.counts.refused += 1
        self._tell("refused")
        self.counts.last_problems = [str(p) for p in error.problems]
        log.error(
            "config_reload_refused",
            directory=str(self.directory),
            problems=self.counts.last_problems,
            still_running=self._active.rules.version,
            hint="fix the files (crmbridge validate shows the same problems); "
            "the last good configuration keeps running",
        )

    def _tell(self, result: str) -> None:
        if self._observer is not None:
            self._observer.config_reload(result, self._active.rules.version)

    # -- the files -------------------------------------------------------------------------------
    def _files(self) -> Iterator[Path]:
        try:
            paths = sorted(self.directory.rglob("*"))
        except OSError:
            return
        for path in paths:
            if path.suffix in WATCHED_SUFFIXES and not path.name.startswith("."):
                yield path

    def _stat_signature(self) -> tuple[tuple[str, int, int], ...] | None:
        signature = []
        for path in self._files():
            try:
                stat = path.stat()
            except OSError:
                continue
            signature.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(signature)

    def _content_hash(self) -> str:
        digest = hashlib.sha256()
        for path in self._files():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            digest.update(str(path.relative_to(self.directory)).encode("utf-8", "replace"))
            digest.update(b"\0")
            digest.update(hashlib.sha256(data).digest())
        return digest.hexdigest()


def _check_version_label(active: Configuration, new: Configuration) -> None:
    """Refuse new rules whose content changed under an unchanged explicit ``version:``."""
    old_rules, new_rules = active.rules, new.rules
    if new_rules.spec.version is None or new_rules.version != old_rules.version:
        return  # a new label, or a label derived from the content (it changes by itself)
    if new_rules.content_hash == old_rules.content_hash:
        return
    raise ConfigError(
        ConfigProblem(
            _version_location(new_rules.source),
            f"the rules changed but their version is still {new_rules.version!r}",
            hint="give the new rules a new `version:` (decisions record it, so two "
            "definitions of qualified must not share one), or drop `version:` to label them "
            "by their content hash",
        )
    )


def _version_location(source: str) -> Location:
    path = Path(source)
    if path.is_dir():
        path = path / RULES_FILE
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return Location(str(path))
    for number, line in enumerate(lines, start=1):
        if _VERSION_LINE.match(line):
            return Location(str(path), number)
    return Location(str(path))
