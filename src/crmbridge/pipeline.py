"""One sync pass: pull → qualify and map → push → checkpoint, page by page.

Contract of a pass:
- Every pulled contact version ends with exactly one durable Decision: created, updated,
  unchanged, rejected (with a reason per failed criterion / mapping problem / Salesforce error)
  or parked (transient failures after bounded retries; retried first thing next pass).
- A page's decisions and the cursor after it are committed in one transaction, and only after
  every contact of the page has its outcome (trap 19). A crash repeats at most one page, and the
  external-id upsert makes the repeat harmless.
- A fatal error (refused credentials, a spent budget, another refusal only a person can fix
  such as TLS trust or an API disabled for the org, an outage that outlasts the retry budget)
  stops the pass before the page's commit: the cursor stays, the next pass resumes there. The
  summary tells them apart: ``credentials_refused`` (exit 3) and ``blocked`` (the daemon keeps
  trying with a backoff) from the rest.
- Bad data never raises: it becomes a reject with its reason.
- One contact never stops a page: any unexpected exception while judging or mapping it, or
  from the sink for the row it is in (found by splitting the batch like a refused request),
  becomes that contact's reject (criterion ``internal``, message ``internal error: <type>:
  <message>``), logged with its traceback. crmbridge's own errors (outage, credentials, budget,
  configuration) still stop the pass: they are nobody's row.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from crmbridge.configuration import Configuration
from crmbridge.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    ConfigError,
    CrmBridgeError,
    FatalApiError,
    RequestRejectedError,
    RetryableApiError,
)
from crmbridge.judgement import (
    INTERNAL,
    INTERNAL_CODE,
    internal_reason,
    judge,
    judge_contacts,
    newest_versions,
    payload_hash,
)
from crmbridge.mapping import FieldMapping
from crmbridge.mapping.policies import UpdatePolicy, fields_to_send, needs_current_values
from crmbridge.model import (
    Cursor,
    Decision,
    FieldValue,
    MappedLead,
    ObjectSchema,
    Outcome,
    PassSummary,
    PushResult,
    Reason,
    RecordError,
    RejectStage,
    SourceContact,
)
from crmbridge.ports import LeadSink, LeadSource, LedgerEntry, StateStore
from crmbridge.retry import Sleeper
from crmbridge.rules import RuleSet

__all__ = [
    "INTERNAL",
    "INTERNAL_CODE",
    "PARKED_MAX_ATTEMPTS",
    "STREAM",
    "SyncPipeline",
    "internal_reason",
    "payload_hash",
]

STREAM = "hubspot.contacts"
#: Rounds of resending rows that failed transiently (locks) inside one pass before parking them.
ROW_RETRY_ROUNDS = 3
ROW_RETRY_BASE_S = 1.0
#: A parked lead that keeps failing transiently becomes a visible reject after this many passes.
PARKED_MAX_ATTEMPTS = 10
PARKED_PER_PASS = 1000
#: Rejects judged again per pass from the reject log (approved, or marked by a replay).
DUE_PER_PASS = 1000
SCHEMA_TTL_S = 3600.0

log = structlog.get_logger(__name__)


@dataclass
class _Judged:
    """One page, judged with one configuration: settled decisions, those to push, the ledger
    it read, and where the stream stands once it is done (``None``: given contacts, no cursor)."""

    cursor: Cursor | None
    config: Configuration
    settled: list[Decision]
    to_push: list[Decision]
    ledger: dict[str, LedgerEntry]


@dataclass
class _PageWork:
    """A page on its way to being committed: outcomes so far, leads still in flight."""

    cursor: Cursor | None
    decisions: list[Decision]
    waiting: int


class ConfigUpdates(Protocol):
    """Where a running pipeline finds edited configuration (``reload.ConfigReloader``)."""

    def candidate(self, pulling: frozenset[str] | None) -> Configuration | None:
        """A valid new configuration to judge with from now on, or None. ``pulling``: the
        properties this pass pulls (None between passes)."""
        ...

    def applied(self, config: Configuration) -> None:
        """``config`` (a candidate) now judges the next page."""
        ...

    def refused(self, content: str | None, error: ConfigError) -> None:
        """A candidate that does not fit the cached describe; the old configuration stays."""
        ...


class SyncPipeline:
    """Runs passes; holds no state between them but a cached describe of the target object and
    the configuration it judges with (swapped whole by :meth:`use_config`, between pages)."""

    def __init__(
        self,
        *,
        source: LeadSource,
        sink: LeadSink,
        store: StateStore,
        config: Configuration | None = None,
        mapping: FieldMapping | None = None,
        rules: RuleSet | None = None,
        index_lag_s: float = 60.0,
        batch_size: int = 200,
        clock: Callable[[], float] = time.time,
        sleep: Sleeper = time.sleep,
        stop: threading.Event | None = None,
        stream: str = STREAM,
    ) -> None:
        if config is None:
            if mapping is None or rules is None:
                raise TypeError("SyncPipeline needs config=, or mapping= and rules=")
            config = Configuration(mapping=mapping, rules=rules)
        self.source = source
        self.sink = sink
        self.store = store
        self._config = config
        self.index_lag_s = index_lag_s
        self.batch_size = batch_size
        self.clock = clock
        self.sleep = sleep
        self.stop = stop or threading.Event()
        self.stream = stream
        self._schema: ObjectSchema | None = None
        self._schema_at = 0.0
        self._schema_saved = False
        #: Edited files offered between passes and pages (the daemon sets it; hot reload).
        self.config_updates: ConfigUpdates | None = None

    # -- the configuration ------------------------------------------------------------------
    @property
    def config(self) -> Configuration:
        """The configuration the next page is judged with."""
        return self._config

    @property
    def mapping(self) -> FieldMapping:
        return self._config.mapping

    @mapping.setter
    def mapping(self, mapping: FieldMapping) -> None:
        self.use_config(replace(self._config, mapping=mapping))

    @property
    def rules(self) -> RuleSet:
        return self._config.rules

    @rules.setter
    def rules(self, rules: RuleSet) -> None:
        self.use_config(replace(self._config, rules=rules))

    def use_config(self, config: Configuration) -> None:
        """Judge with ``config`` from the next page on. A page is always judged and pushed with
        one configuration, never half of each. Raises ConfigError (and keeps the configuration
        in use) when ``config`` does not fit the cached Salesforce describe."""
        if self._schema is not None:
            problems = config.check_schema(self._schema)
            if problems:
                raise ConfigError(problems)
        self._config = config

    def take_config_update(self, pulling: frozenset[str] | None = None) -> None:
        """Swap in an edited configuration, if one is offered and fits the cached describe
        (between pages, or between passes when ``pulling`` is None)."""
        updates = self.config_updates
        if updates is None:
            return
        candidate = updates.candidate(pulling)
        if candidate is None:
            return
        try:
            self.use_config(candidate)
        except ConfigError as exc:
            updates.refused(None, exc)
        else:
            updates.applied(candidate)

    # -- a pass -----------------------------------------------------------------------------
    def run_pass(self, *, dry_run: bool = False) -> PassSummary:
        """Run one pass and return its summary; fatal errors are recorded in ``stopped_early``.

        ``dry_run`` reads HubSpot and the Salesforce describe, judges every contact as a real
        pass would, and counts what would be created, updated or rejected, but pushes nothing
        and writes nothing to the state store."""
        summary = PassSummary(dry_run=dry_run)
        hubspot_before, salesforce_before = self.source.calls, self.sink.calls
        try:
            self.sink.start_pass()
            schema = self._schema_for_pass(dry_run=dry_run)
            if not dry_run:
                self.take_config_update(None)
            if dry_run:
                self._judge_only(schema, summary)
            else:
                self._retry_parked(summary)
                self._judge_due(schema, summary)
                self._push_pages(self._judged_pages(schema, summary), summary)
        except (FatalApiError, RetryableApiError, RequestRejectedError) as exc:
            self._stopped(summary, exc)
        finally:
            summary.hubspot_calls = self.source.calls - hubspot_before
            summary.salesforce_calls = self.sink.calls - salesforce_before
        return summary

    def sync_contacts(self, contacts: Iterable[SourceContact]) -> PassSummary:
        """Judge, push and record given contacts (a webhook's, a reviewer's) as a pass would,
        outside the cursor: one durable decision per contact (its newest version given),
        committed without moving the stream's cursor. Parked leads wait for the next pass."""
        summary = PassSummary()
        hubspot_before, salesforce_before = self.source.calls, self.sink.calls
        try:
            self.sink.start_pass()
            schema = self._schema_for_pass(dry_run=False)
            given = list(newest_versions(contacts).values())
            summary.pulled = len(given)
            self._push_pages(iter([self._judge_page(given, None, schema)]), summary)
        except (FatalApiError, RetryableApiError, RequestRejectedError) as exc:
            self._stopped(summary, exc)
        finally:
            summary.hubspot_calls = self.source.calls - hubspot_before
            summary.salesforce_calls = self.sink.calls - salesforce_before
        return summary

    def judge_contacts(self, contacts: Iterable[SourceContact]) -> list[Decision]:
        """Judge given contacts as a pass would (the describe, the ledger) and return their
        decisions in the order given (a lead to push is ``TO_PUSH``): nothing pushed, nothing
        written."""
        schema = self._schema_for_pass(dry_run=True)
        given = list(newest_versions(contacts).values())
        config = self._config
        return judge_contacts(given, config, schema, self.store.ledger([c.id for c in given]))

    @staticmethod
    def _stopped(summary: PassSummary, exc: CrmBridgeError) -> None:
        """Record why a pass stopped early: refused credentials (exit 3), a refusal only a
        person can fix (``blocked``: the daemon keeps trying) or an outage or spent budget."""
        summary.stopped_early = f"{type(exc).__name__}: {exc}"
        summary.credentials_refused = isinstance(exc, AuthenticationError)
        summary.blocked = isinstance(exc, FatalApiError) and not isinstance(
            exc, AuthenticationError | BudgetExhaustedError
        )
        log.error(
            "pass_stopped",
            error=summary.stopped_early,
            credentials_refused=summary.credentials_refused,
            blocked=summary.blocked,
        )

    def _schema_for_pass(self, *, dry_run: bool) -> ObjectSchema:
        """The describe (fetched at most once an hour), checked against the configuration,
        and kept in the state store (outside a dry run) so reports can map without a call."""
        now = self.clock()
        if self._schema is None or now - self._schema_at > SCHEMA_TTL_S:
            schema = self.sink.describe()
            problems = self._config.check_schema(schema)
            if problems:
                raise ConfigError(problems)
            self._schema, self._schema_at, self._schema_saved = schema, now, False
        if not dry_run and not self._schema_saved:
            self.store.save_schema(self._schema)
            self._schema_saved = True
        return self._schema

    def _judged_pages(self, schema: ObjectSchema, summary: PassSummary) -> Iterator[_Judged]:
        """Pull this pass's window page by page and judge each page; after the caller has
        handled a page, honour a stop request (the page is never cut in half)."""
        cursor = self.store.get_cursor(self.stream)
        until_ms = int((self.clock() - self.index_lag_s) * 1000)
        if until_ms <= cursor.modified_at_ms:
            return
        properties = self._config.pulled_properties
        for page in self.source.pull(cursor, until_ms, properties):
            summary.pulled += len(page.contacts)
            self.take_config_update(properties)
            yield self._judge_page(page.contacts, page.cursor, schema)
            if self.stop.is_set():
                summary.interrupted = True
                return

    def _push_pages(self, pages: Iterator[_Judged], summary: PassSummary) -> None:
        """Stream pages through the gate; push in full batches across page boundaries, and
        commit each page (outcomes, then cursor) once every lead of it has its outcome. A batch
        never mixes two configurations: a swap between pages flushes the batch first."""
        works: deque[_PageWork] = deque()
        buffer: list[tuple[_PageWork, Decision]] = []
        config = self._config
        for judged in pages:
            work = _PageWork(judged.cursor, judged.settled, waiting=len(judged.to_push))
            works.append(work)
            pending_ids = {d.contact_id for _, d in buffer}
            if judged.config is not config or any(
                d.contact_id in pending_ids for d in judged.to_push
            ):
                # A new configuration, or a contact re-stamped mid-pass: never send one key
                # twice in a request (trap 9), never push a batch under two configurations.
                self._flush(buffer, config, full_batches_only=False)
                config = judged.config
            buffer.extend((work, d) for d in judged.to_push)
            self._flush(buffer, config, full_batches_only=True)
            self._commit_ready(works, summary)
        self._flush(buffer, config, full_batches_only=False)
        self._commit_ready(works, summary)

    def _judge_only(self, schema: ObjectSchema, summary: PassSummary) -> None:
        """The dry run: every page judged and counted, nothing pushed, nothing committed."""
        for judged in self._judged_pages(schema, summary):
            _count(summary, judged.settled)
            for decision in judged.to_push:
                entry = judged.ledger.get(decision.contact_id)
                if entry is not None and entry.salesforce_id:
                    summary.updated += 1
                else:
                    summary.created += 1

    def _flush(
        self,
        buffer: list[tuple[_PageWork, Decision]],
        config: Configuration,
        *,
        full_batches_only: bool,
    ) -> None:
        """Push buffered leads in full batches, and the remainder unless told not to."""
        while len(buffer) >= self.batch_size or (buffer and not full_batches_only):
            batch = buffer[: self.batch_size]
            del buffer[: self.batch_size]
            outcomes = {d.contact_id: d for d in self._push([d for _, d in batch], config)}
            for work, decision in batch:
                work.decisions.append(outcomes[decision.contact_id])
                work.waiting -= 1

    def _commit_ready(self, works: deque[_PageWork], summary: PassSummary) -> None:
        """Commit the leading pages whose leads all have outcomes, with the last one's cursor
        (given contacts have none: their decisions are committed without moving it)."""
        decisions: list[Decision] = []
        cursor = None
        ready = False
        while works and works[0].waiting == 0:
            work = works.popleft()
            decisions.extend(work.decisions)
            cursor = work.cursor or cursor
            ready = True
        if ready:
            self.store.commit_page(self.stream, decisions, cursor)
            _count(summary, decisions)

    # -- deciding a page --------------------------------------------------------------------
    def judge_page(
        self, contacts: Sequence[SourceContact], schema: ObjectSchema
    ) -> tuple[list[Decision], list[Decision]]:
        """Qualify and map one page: (settled decisions, decisions waiting to be pushed)."""
        judged = self._judge_page(contacts, None, schema)
        return judged.settled, judged.to_push

    def _judge_page(
        self, contacts: Sequence[SourceContact], cursor: Cursor | None, schema: ObjectSchema
    ) -> _Judged:
        config = self._config  # one configuration for the whole page, whatever happens meanwhile
        ids = list(newest_versions(contacts))
        ledger = self.store.ledger(ids)
        judged = _Judged(cursor, config, [], [], ledger)
        for decision in judge_contacts(contacts, config, schema, ledger):
            (judged.to_push if decision.outcome is Outcome.TO_PUSH else judged.settled).append(
                decision
            )
        return judged

    # -- pushing ----------------------------------------------------------------------------
    def _push(self, pending: list[Decision], config: Configuration) -> list[Decision]:
        """Push qualified decisions in batches; resend transient row failures, then park them.
        A pushed decision records the payload sent (what the update policies let through)."""
        done: list[Decision] = []
        for round_number in range(ROW_RETRY_ROUNDS + 1):
            if not pending:
                break
            if round_number:
                self.sleep(ROW_RETRY_BASE_S * 2 ** (round_number - 1))
            retry_next: list[Decision] = []
            for start in range(0, len(pending), self.batch_size):
                batch = pending[start : start + self.batch_size]
                payloads = self._payloads(batch, config)
                results = self._push_batch(batch, payloads)
                for decision, sent, result in zip(batch, payloads, results, strict=True):
                    if result.success:
                        outcome = Outcome.CREATED if result.created else Outcome.UPDATED
                        done.append(
                            replace(
                                decision,
                                outcome=outcome,
                                salesforce_id=result.salesforce_id,
                                payload=sent,
                            )
                        )
                    elif result.transient:
                        retry_next.append(replace(decision, reasons=_sf_reasons(result)))
                    else:
                        done.append(
                            replace(
                                decision,
                                outcome=Outcome.REJECTED,
                                stage=RejectStage.SALESFORCE,
                                reasons=_sf_reasons(result),
                            )
                        )
            pending = retry_next
        done.extend(replace(d, outcome=Outcome.PARKED) for d in pending)
        return done

    def _payloads(
        self, batch: Sequence[Decision], config: Configuration
    ) -> list[dict[str, FieldValue]]:
        """What each lead of a batch sends: its payload as the fields' update policies allow.
        When a policy needs the Leads' current values (``if_blank``, ``on_create``), they are
        read in one query for the whole batch; otherwise no call is made."""
        mapping = config.mapping
        policies = mapping.update_policies
        if not policies:
            return [dict(d.payload or {}) for d in batch]
        current: dict[str, dict[str, object]] = {}
        if needs_current_values(policies):
            blank_checked = sorted(n for n, p in policies.items() if p is UpdatePolicy.IF_BLANK)
            current = self.sink.current_values([d.contact_id for d in batch], blank_checked)
        return [
            fields_to_send(
                d.payload or {},
                policies,
                current.get(d.contact_id),
                placeholder=mapping.placeholder,
            )
            for d in batch
        ]

    def _push_batch(
        self, batch: Sequence[Decision], payloads: Sequence[dict[str, FieldValue]]
    ) -> list[PushResult]:
        """One upsert call; when Salesforce refuses the whole request, or the sink raises an
        unexpected (non-crmbridge) exception, split it to find the rows at fault so one bad
        value cannot sink 199 good leads. Each row at fault costs about 2·log2(batch) calls."""
        leads = [MappedLead(d.contact_id, p) for d, p in zip(batch, payloads, strict=True)]
        try:
            return self.sink.upsert(leads)
        except CrmBridgeError as exc:
            if not isinstance(exc, RequestRejectedError):
                raise  # an outage, credentials, a budget: nobody's row, the pass stops
            error = RecordError(code=exc.code or "REQUEST_REJECTED", message=str(exc))
            event = "salesforce_request_refused_splitting"
        except Exception as exc:  # a bug for one row must not stop the page
            if len(batch) == 1:
                log.exception("push_internal_error", contact_id=batch[0].contact_id)
            reason = internal_reason(exc)
            error = RecordError(code=INTERNAL_CODE, message=reason.message)
            event = "push_internal_error_splitting"
        if len(batch) == 1:
            return [PushResult(batch[0].contact_id, success=False, errors=(error,))]
        middle = len(batch) // 2
        log.warning(event, rows=len(batch), error=error.message)
        return self._push_batch(batch[:middle], payloads[:middle]) + self._push_batch(
            batch[middle:], payloads[middle:]
        )

    def _judge_due(self, schema: ObjectSchema, summary: PassSummary) -> None:
        """Judge again, from the values they stored, the rejects a reviewer approved (they go
        through despite the rules, marked as exceptions) and those a replay marked (judged by
        the current rules and map), then push and commit them like a page without a cursor."""
        due = self.store.due_rejects(DUE_PER_PASS)
        if not due:
            return
        config = self._config
        ledger = self.store.ledger([d.decision.contact_id for d in due])
        judged = _Judged(None, config, [], [], ledger)
        for item in due:
            old = item.decision
            contact = SourceContact(old.contact_id, old.inputs, old.modified_at_ms)
            decision = judge(
                contact, config, schema, ledger.get(contact.id), exception=item.exception
            )
            (judged.to_push if decision.outcome is Outcome.TO_PUSH else judged.settled).append(
                decision
            )
        summary.rejudged += len(due)
        self._push_pages(iter([judged]), summary)
        replayed = [d.reject_id for d in due if d.exception is None]
        if replayed:
            self.store.unmark_requeued(replayed)

    def _retry_parked(self, summary: PassSummary) -> None:
        """Resend leads parked by earlier passes (their payload was mapped when parked)."""
        parked = self.store.parked(PARKED_PER_PASS)
        if not parked:
            return
        given_up = [
            replace(
                p.decision,
                outcome=Outcome.REJECTED,
                stage=RejectStage.SALESFORCE,
                reasons=(
                    Reason(
                        "salesforce.GAVE_UP",
                        f"still failing after {p.attempts} passes: {p.last_error}",
                        code="GAVE_UP",
                    ),
                ),
            )
            for p in parked
            if p.attempts >= PARKED_MAX_ATTEMPTS
        ]
        retry = [p.decision for p in parked if p.attempts < PARKED_MAX_ATTEMPTS]
        decisions = given_up + self._push([replace(d, reasons=()) for d in retry], self._config)
        self.store.commit_page(self.stream, decisions, None)
        _count(summary, decisions)


def _sf_reasons(result: PushResult) -> tuple[Reason, ...]:
    return tuple(
        Reason(INTERNAL, error.message, code=INTERNAL_CODE)
        if error.code == INTERNAL_CODE
        else Reason(
            criterion=f"salesforce.{error.code}",
            message=f"Salesforce {error.code}: {error.message}",
            code=error.code,
            fields=error.fields,
        )
        for error in result.errors
    )


def _count(summary: PassSummary, decisions: Sequence[Decision]) -> None:
    for decision in decisions:
        match decision.outcome:
            case Outcome.CREATED:
                summary.created += 1
                summary.flagged += bool(decision.flags)
                summary.exceptions += decision.exception is not None
            case Outcome.UPDATED:
                summary.updated += 1
                summary.flagged += bool(decision.flags)
                summary.exceptions += decision.exception is not None
            case Outcome.UNCHANGED:
                summary.unchanged += 1
            case Outcome.SKIPPED:
                summary.skipped += 1
            case Outcome.PARKED:
                summary.parked += 1
            case Outcome.REJECTED:
                summary.count_reject(decision.reasons)
