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

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import structlog

from crmbridge.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    ConfigError,
    CrmBridgeError,
    FatalApiError,
    RequestRejectedError,
    RetryableApiError,
)
from crmbridge.mapping import FieldMapping
from crmbridge.model import (
    Cursor,
    Decision,
    MappedLead,
    MapResult,
    ObjectSchema,
    Outcome,
    PassSummary,
    PushResult,
    Qualification,
    Reason,
    RecordError,
    RejectStage,
    SourceContact,
)
from crmbridge.ports import LeadSink, LeadSource, LedgerEntry, Page, StateStore
from crmbridge.redaction import redact
from crmbridge.retry import Sleeper
from crmbridge.rules import RuleSet
from crmbridge.text import clean_text

STREAM = "hubspot.contacts"
#: Rounds of resending rows that failed transiently (locks) inside one pass before parking them.
ROW_RETRY_ROUNDS = 3
ROW_RETRY_BASE_S = 1.0
#: A parked lead that keeps failing transiently becomes a visible reject after this many passes.
PARKED_MAX_ATTEMPTS = 10
PARKED_PER_PASS = 1000
SCHEMA_TTL_S = 3600.0
#: The criterion (and ``code``) of a reject caused by an unexpected exception (a bug).
INTERNAL = "internal"
INTERNAL_CODE = "INTERNAL"
#: How much of an exception's message an internal-error reason keeps.
INTERNAL_MESSAGE_MAX_CHARS = 500

log = structlog.get_logger(__name__)


@dataclass
class _Judged:
    """One pulled page, judged: settled decisions, those to push, and the ledger it read."""

    page: Page
    settled: list[Decision]
    to_push: list[Decision]
    ledger: dict[str, LedgerEntry]


@dataclass
class _PageWork:
    """A pulled page on its way to being committed: outcomes so far, leads still in flight."""

    cursor: Cursor
    decisions: list[Decision]
    waiting: int


def payload_hash(fields: Mapping[str, object]) -> str:
    """Stable hash of a mapped payload: unchanged leads are not pushed again. Never raises on
    text (``surrogatepass``: a lone surrogate still hashes; valid text hashes as it always did)."""
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class SyncPipeline:
    """Runs passes; holds no state between them but a cached describe of the target object."""

    def __init__(
        self,
        *,
        source: LeadSource,
        sink: LeadSink,
        store: StateStore,
        mapping: FieldMapping,
        rules: RuleSet,
        index_lag_s: float = 60.0,
        batch_size: int = 200,
        clock: Callable[[], float] = time.time,
        sleep: Sleeper = time.sleep,
        stop: threading.Event | None = None,
        stream: str = STREAM,
    ) -> None:
        self.source = source
        self.sink = sink
        self.store = store
        self.mapping = mapping
        self.rules = rules
        self.index_lag_s = index_lag_s
        self.batch_size = batch_size
        self.clock = clock
        self.sleep = sleep
        self.stop = stop or threading.Event()
        self.stream = stream
        self._schema: ObjectSchema | None = None
        self._schema_at = 0.0

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
            schema = self._schema_for_pass()
            if dry_run:
                self._judge_only(schema, summary)
            else:
                self._retry_parked(summary)
                self._pull_and_push(schema, summary)
        except (FatalApiError, RetryableApiError, RequestRejectedError) as exc:
            summary.stopped_early = f"{type(exc).__name__}: {exc}"
            summary.credentials_refused = isinstance(exc, AuthenticationError)
            summary.blocked = isinstance(exc, FatalApiError) and not isinstance(
                exc, AuthenticationError | BudgetExhaustedError
            )
            log.error(  # noqa: TRY400 - an expected stop: the summary says it, no traceback
                "pass_stopped",
                error=summary.stopped_early,
                credentials_refused=summary.credentials_refused,
                blocked=summary.blocked,
            )
        finally:
            summary.hubspot_calls = self.source.calls - hubspot_before
            summary.salesforce_calls = self.sink.calls - salesforce_before
        return summary

    def _schema_for_pass(self) -> ObjectSchema:
        now = self.clock()
        if self._schema is None or now - self._schema_at > SCHEMA_TTL_S:
            schema = self.sink.describe()
            problems = self.mapping.check_schema(schema)
            if problems:
                raise ConfigError(problems)
            self._schema, self._schema_at = schema, now
        return self._schema

    def _judged_pages(self, schema: ObjectSchema, summary: PassSummary) -> Iterator[_Judged]:
        """Pull this pass's window page by page and judge each page; after the caller has
        handled a page, honour a stop request (the page is never cut in half)."""
        cursor = self.store.get_cursor(self.stream)
        until_ms = int((self.clock() - self.index_lag_s) * 1000)
        if until_ms <= cursor.modified_at_ms:
            return
        properties = self.mapping.source_properties | self.rules.source_properties
        for page in self.source.pull(cursor, until_ms, properties):
            summary.pulled += len(page.contacts)
            yield self._judge_page(page, schema)
            if self.stop.is_set():
                summary.interrupted = True
                return

    def _pull_and_push(self, schema: ObjectSchema, summary: PassSummary) -> None:
        """Stream pages through the gate; push in full batches across page boundaries, and
        commit each page (outcomes, then cursor) once every lead of it has its outcome."""
        works: deque[_PageWork] = deque()
        buffer: list[tuple[_PageWork, Decision]] = []
        for judged in self._judged_pages(schema, summary):
            work = _PageWork(judged.page.cursor, judged.settled, waiting=len(judged.to_push))
            works.append(work)
            pending_ids = {d.contact_id for _, d in buffer}
            if any(d.contact_id in pending_ids for d in judged.to_push):
                # A contact re-stamped mid-pass: never send one key twice in a request (trap 9).
                self._flush(buffer, full_batches_only=False)
            buffer.extend((work, d) for d in judged.to_push)
            self._flush(buffer, full_batches_only=True)
            self._commit_ready(works, summary)
        self._flush(buffer, full_batches_only=False)
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

    def _flush(self, buffer: list[tuple[_PageWork, Decision]], *, full_batches_only: bool) -> None:
        """Push buffered leads in full batches, and the remainder unless told not to."""
        while len(buffer) >= self.batch_size or (buffer and not full_batches_only):
            batch = buffer[: self.batch_size]
            del buffer[: self.batch_size]
            outcomes = {d.contact_id: d for d in self._push([d for _, d in batch])}
            for work, decision in batch:
                work.decisions.append(outcomes[decision.contact_id])
                work.waiting -= 1

    def _commit_ready(self, works: deque[_PageWork], summary: PassSummary) -> None:
        """Commit the leading pages whose leads all have outcomes, with the last one's cursor."""
        decisions: list[Decision] = []
        cursor = None
        while works and works[0].waiting == 0:
            work = works.popleft()
            decisions.extend(work.decisions)
            cursor = work.cursor
        if cursor is not None:
            self.store.commit_page(self.stream, decisions, cursor)
            _count(summary, decisions)

    # -- deciding a page --------------------------------------------------------------------
    def judge_page(
        self, contacts: Sequence[SourceContact], schema: ObjectSchema
    ) -> tuple[list[Decision], list[Decision]]:
        """Qualify and map one page: (settled decisions, decisions waiting to be pushed)."""
        judged = self._judge_page(Page(contacts, Cursor()), schema)
        return judged.settled, judged.to_push

    def _judge_page(self, page: Page, schema: ObjectSchema) -> _Judged:
        newest: dict[str, SourceContact] = {}
        for contact in page.contacts:
            seen = newest.get(contact.id)
            if seen is None or contact.modified_at_ms >= seen.modified_at_ms:
                newest[contact.id] = contact
        ledger = self.store.ledger(list(newest))
        judged = _Judged(page, [], [], ledger)
        for contact in newest.values():
            decision = self._judge(contact, schema, ledger.get(contact.id))
            (judged.to_push if decision.outcome is Outcome.CREATED else judged.settled).append(
                decision
            )
        return judged

    def _judge(
        self, contact: SourceContact, schema: ObjectSchema, entry: LedgerEntry | None
    ) -> Decision:
        """The decision before any push; ``CREATED`` here only means "to push". Never raises:
        an exception from the rules or the map is this contact's internal-error reject."""
        base = Decision(
            contact_id=contact.id,
            modified_at_ms=contact.modified_at_ms,
            email=contact.get("email"),
            outcome=Outcome.SKIPPED,
            rule_set_version=self.rules.version,
            qualified=False,
            inputs={name: contact.get(name) for name in sorted(contact.properties)},
        )
        if contact.archived:
            return base  # archived in HubSpot: never deletes or changes sales data (trap 7)
        stage = RejectStage.QUALIFICATION
        try:
            qualification = self.rules.evaluate(contact)
            base = replace(base, qualified=qualification.qualified, criteria=qualification.results)
            stage = RejectStage.MAPPING
            return self._mapped(base, qualification, self.mapping.map(contact, schema), entry)
        except Exception as exc:  # one contact's bug must not stop the page
            log.exception("contact_internal_error", contact_id=contact.id, stage=stage.value)
            return replace(
                base, outcome=Outcome.REJECTED, stage=stage, reasons=(internal_reason(exc),)
            )

    def _mapped(
        self,
        base: Decision,
        qualification: Qualification,
        mapped: MapResult,
        entry: LedgerEntry | None,
    ) -> Decision:
        """The verdict once the rules and the map have answered."""
        reasons = qualification.reasons + mapped.reasons
        if not qualification.qualified or mapped.lead is None or mapped.reasons:
            stage = (
                RejectStage.QUALIFICATION if not qualification.qualified else RejectStage.MAPPING
            )
            return replace(base, outcome=Outcome.REJECTED, stage=stage, reasons=reasons)
        fields = dict(mapped.lead.fields)
        digest = payload_hash(fields)
        if entry is not None and entry.status == "synced" and entry.payload_hash == digest:
            return replace(
                base,
                outcome=Outcome.UNCHANGED,
                payload=fields,
                payload_hash=digest,
                salesforce_id=entry.salesforce_id,
            )
        return replace(base, outcome=Outcome.CREATED, payload=fields, payload_hash=digest)

    # -- pushing ----------------------------------------------------------------------------
    def _push(self, pending: list[Decision]) -> list[Decision]:
        """Push qualified decisions in batches; resend transient row failures, then park them."""
        done: list[Decision] = []
        for round_number in range(ROW_RETRY_ROUNDS + 1):
            if not pending:
                break
            if round_number:
                self.sleep(ROW_RETRY_BASE_S * 2 ** (round_number - 1))
            retry_next: list[Decision] = []
            for start in range(0, len(pending), self.batch_size):
                batch = pending[start : start + self.batch_size]
                for decision, result in zip(batch, self._push_batch(batch), strict=True):
                    if result.success:
                        outcome = Outcome.CREATED if result.created else Outcome.UPDATED
                        done.append(
                            replace(decision, outcome=outcome, salesforce_id=result.salesforce_id)
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

    def _push_batch(self, batch: Sequence[Decision]) -> list[PushResult]:
        """One upsert call; when Salesforce refuses the whole request, or the sink raises an
        unexpected (non-crmbridge) exception, split it to find the rows at fault so one bad
        value cannot sink 199 good leads. Each row at fault costs about 2·log2(batch) calls."""
        leads = [MappedLead(d.contact_id, d.payload or {}) for d in batch]
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
        return self._push_batch(batch[:middle]) + self._push_batch(batch[middle:])

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
        decisions = given_up + self._push([replace(d, reasons=()) for d in retry])
        self.store.commit_page(self.stream, decisions, None)
        _count(summary, decisions)


def internal_reason(exc: BaseException) -> Reason:
    """The reject reason for an unexpected exception: its type and message, cleaned, every
    registered secret masked, and capped.

    The message of an exception nobody planned for may quote anything in reach, a token or an
    ``Authorization`` header included, and this reason is stored and printed by ``rejects``:
    it is masked before the cut, so a secret cannot be cut in half and slip past the mask."""
    message = redact(clean_text(f"internal error: {type(exc).__name__}: {exc}"))
    if len(message) > INTERNAL_MESSAGE_MAX_CHARS:
        message = message[: INTERNAL_MESSAGE_MAX_CHARS - 1] + "…"
    return Reason(criterion=INTERNAL, message=message, code=INTERNAL_CODE)


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
            case Outcome.UPDATED:
                summary.updated += 1
            case Outcome.UNCHANGED:
                summary.unchanged += 1
            case Outcome.SKIPPED:
                summary.skipped += 1
            case Outcome.PARKED:
                summary.parked += 1
            case Outcome.REJECTED:
                summary.count_reject(decision.reasons)
