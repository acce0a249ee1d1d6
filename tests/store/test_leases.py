"""The ``leases`` table and the fence in a page commit, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import threading

import pytest

from crmbridge.errors import LeaseLostError
from crmbridge.journal import Intent
from crmbridge.lease import Claim, Fence, Holder, LeaseRecord, claim, release
from crmbridge.model import Cursor, Outcome, PushResult
from crmbridge.ports import StateStore
from crmbridge.state import open_journal, open_leases, open_store
from tests.decisions import decision

STREAM = "hubspot.contacts"
A = Holder("host-a", 101, "aaaa")
B = Holder("host-b", 202, "bbbb")


def _claim(url: str, holder: Holder, *, pipeline: str = "default", timeout_s: float = 30) -> Claim:
    leases = open_leases(url)
    try:
        answer: Claim = leases.step(
            pipeline,
            lambda current, now: (
                (result := claim(current, holder, now=now, timeout_s=timeout_s)).lease,
                result,
            ),
        )
        return answer
    finally:
        leases.close()


def test_a_claim_is_stored_and_read_back(store: StateStore, store_url: str) -> None:
    """The first claim stores holder, host, pid and token 1; a read returns them."""
    answer = _claim(store_url, A)
    assert answer.granted
    leases = open_leases(store_url)
    try:
        stored = leases.read("default")
        assert (stored.holder, stored.host, stored.pid, stored.token) == (A.key, "host-a", 101, 1)
        assert stored.expires_at == pytest.approx(stored.acquired_at + 30)
        assert leases.read("other") == LeaseRecord("other")
        assert [lease.pipeline for lease in leases.read_all()] == ["default"]
    finally:
        leases.close()


def test_a_second_claimant_is_refused_while_the_lease_runs(
    store: StateStore, store_url: str
) -> None:
    """B's claim changes nothing while A's lease runs; each pipeline has its own lease."""
    _claim(store_url, A)
    refused = _claim(store_url, B)
    assert not refused.granted
    assert refused.current.holder == A.key
    assert _claim(store_url, B, pipeline="emea").granted


def test_an_expired_lease_is_taken_over_on_the_store_clock(
    store: StateStore, store_url: str
) -> None:
    """A lease stored with no time left is taken by the next claimant, token 2."""
    _claim(store_url, A, timeout_s=0.001)
    taken = _claim(store_url, B)
    assert taken.granted
    assert (taken.current.holder, taken.current.token) == (B.key, 2)


def test_concurrent_first_claims_grant_exactly_one(store: StateStore, store_url: str) -> None:
    """Eight runners claim a never-held lease at once: one wins, seven wait."""
    results: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        answer = _claim(store_url, Holder("h", n, f"run{n}"))
        with lock:
            results.append(answer.granted)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_a_release_frees_the_lease_for_the_next_runner(store: StateStore, store_url: str) -> None:
    """Released by its holder, the lease goes to B at once with a larger token."""
    token = _claim(store_url, A).current.token
    leases = open_leases(store_url)
    try:
        leases.step("default", lambda current, now: (release(current, A, token), None))
    finally:
        leases.close()
    taken = _claim(store_url, B)
    assert taken.granted
    assert taken.current.token == token + 1


def test_a_fenced_commit_by_the_holder_is_written(store: StateStore, store_url: str) -> None:
    """The holder's page commit goes through."""
    fence = Fence("default", A)
    fence.token = _claim(store_url, A).current.token
    fenced = open_store(store_url, fence=fence)
    try:
        fenced.commit_page(STREAM, [decision("1", Outcome.CREATED)], Cursor(5_000, 1))
    finally:
        fenced.close()
    assert store.get_cursor(STREAM) == Cursor(5_000, 1)
    assert set(store.ledger(["1"])) == {"1"}


def test_a_fenced_commit_after_a_takeover_writes_nothing(store: StateStore, store_url: str) -> None:
    """A's lease expired and B took over: A's commit raises LeaseLostError and keeps nothing."""
    fence = Fence("default", A)
    fence.token = _claim(store_url, A, timeout_s=0.001).current.token
    assert _claim(store_url, B).granted
    fenced = open_store(store_url, fence=fence)
    try:
        with pytest.raises(LeaseLostError, match="held by host-b pid 202"):
            fenced.commit_page(STREAM, [decision("1", Outcome.CREATED)], Cursor(5_000, 1))
    finally:
        fenced.close()
    assert store.get_cursor(STREAM) == Cursor()
    assert store.ledger(["1"]) == {}


def test_a_fence_without_a_lease_writes_nothing(store: StateStore, store_url: str) -> None:
    """A runner that holds no lease (token None) cannot commit a page."""
    fenced = open_store(store_url, fence=Fence("default", A))
    try:
        with pytest.raises(LeaseLostError):
            fenced.commit_page(STREAM, [], Cursor(5_000, 1))
    finally:
        fenced.close()
    assert store.get_cursor(STREAM) == Cursor()


# -- the push journal ------------------------------------------------------------------------
def test_the_journal_keeps_pushes_until_their_page_is_committed(
    store: StateStore, store_url: str
) -> None:
    """begin → answered → the page's commit forgets them; had_lead comes from the ledger."""
    fence = Fence("default", A)
    fence.token = _claim(store_url, A).current.token
    store.commit_page(STREAM, [decision("9", Outcome.CREATED)], None)  # "9" has a Lead
    journal = open_journal(store_url, "default", fence)
    fenced = open_store(store_url, fence=fence)
    try:
        assert journal.begin({"1": "h1", "9": "h9"}) == {}
        journal.answered([PushResult("1", success=True, salesforce_id="00Q1", created=True)])
        earlier = journal.begin({"1": "h1", "9": "h9-new"})
        assert earlier["1"] == Intent("1", "h1", False, "00Q1", True)
        assert earlier["9"] == Intent("9", "h9", True)
        journal.answered([PushResult("9", success=False)])
        assert set(journal.begin({"1": "h1", "9": "h9"})) == {"1"}
        fenced.commit_page(STREAM, [decision("1", Outcome.CREATED)], Cursor(1, 1))
        assert set(journal.begin({"1": "h1"})) == set()
    finally:
        journal.close()
        fenced.close()


def test_a_runner_without_the_lease_cannot_journal(store: StateStore, store_url: str) -> None:
    """Journalling is fenced like a commit: no lease, no push."""
    journal = open_journal(store_url, "default", Fence("default", A))
    try:
        with pytest.raises(LeaseLostError):
            journal.begin({"1": "h1"})
    finally:
        journal.close()
