"""A page of hostile HubSpot values through the real adapters, simulators and SQLite."""

from __future__ import annotations

import threading

from crmbridge.daemon import EXIT_OK, run_loop
from crmbridge.model import Outcome, PassSummary
from crmbridge.ports import RejectFilter
from crmbridge.rules import MAX_RULE_TEXT_CHARS

from .conftest import World

ESCAPES = "\x1b[2J\x1b[H\x1b[31mPWNED\x1b[0m\x1b]0;owned\x07"


def test_daemon_survives_a_page_of_hostile_values_and_syncs_every_good_contact(
    world: World,
) -> None:
    """Lone surrogates, NUL, escape codes, huge and catastrophic-regex values on one page:
    every good contact syncs, every hostile one ends with exactly one decision."""
    good = [world.add() for _ in range(6)]
    synced_clean = {
        world.add(firstname="Ana \ud83d"): ("FirstName", "Ana \ufffd"),
        world.add(company="Acme\x00 Tools"): ("Company", "Acme Tools"),
        world.add(need="supply chain" + ESCAPES): (
            "Description",
            "supply chain[2J[H[31mPWNED[0m]0;owned",
        ),
        world.add(lastname="L" * 100_000): ("LastName", "L" * 80),
        world.add(pain_point="\ude00 cut \x00 emoji 😀"): ("Pain_Point__c", "\ufffd cut  emoji 😀"),
    }
    rejected = {
        world.add(jobtitle="Head of \ud83d"): "authority",
        world.add(need="supply chain " * 1_000): "need",
        world.add(budget="a" * 45 + "\x00"): "budget",
    }
    # Qualified, with a value the shipped map syncs without (flagged for a reviewer).
    flagged = {
        world.add(email="\ud83d@example.com"): ("Email", None),
        world.add(lastname="\x00\x07"): ("LastName", "[not provided]"),
    }
    summaries: list[PassSummary] = []
    stop = threading.Event()

    def after_pass(summary: PassSummary) -> None:
        summaries.append(summary)
        stop.set()

    world.clock.advance(61)
    code = run_loop(world.app.pipeline, poll_interval_s=3600, stop=stop, on_pass=after_pass)

    assert code == EXIT_OK
    [summary] = summaries
    assert summary.stopped_early is None
    assert summary.pulled == len(good) + len(synced_clean) + len(rejected) + len(flagged)
    assert summary.created == len(good) + len(synced_clean) + len(flagged)
    assert summary.rejected == len(rejected)
    assert summary.flagged == len(flagged)
    for contact, (field, sent) in flagged.items():
        lead = world.lead(contact)
        assert lead is not None
        assert lead.get(field) == sent
    for contact in good:
        assert world.lead(contact) is not None
    for contact, (field, sent) in synced_clean.items():
        lead = world.lead(contact)
        assert lead is not None
        assert lead[field] == sent
    store = world.app.store
    for contact, criterion in rejected.items():
        [record] = store.rejects(RejectFilter(contact_id=contact))
        assert criterion in [r.criterion for r in record.decision.reasons]
        assert world.lead(contact) is None
    every = [*good, *synced_clean, *rejected, *flagged]
    for contact in every:
        assert len(store.decisions_of(contact)) == 1
    [title] = store.decisions_of(next(iter(rejected)))
    assert title.inputs["jobtitle"] == "Head of \ud83d"  # the exact HubSpot value is kept
    [long_need] = store.rejects(RejectFilter(contact_id=list(rejected)[1]))
    assert long_need.decision.reasons[0].message == (
        f"need: supply-chain problem: the text is {len('supply chain ' * 1_000) - 1:,} "
        f"characters long, more than the {MAX_RULE_TEXT_CHARS:,} a rule reads"
    )
    assert all(d.outcome is Outcome.CREATED for c in good for d in store.decisions_of(c))
    second = world.sync()
    assert (second.pulled, second.created, second.rejected) == (0, 0, 0)
