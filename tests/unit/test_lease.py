"""The lease rules: who may run a pipeline, decided from the stored lease and the time alone."""

from __future__ import annotations

from crmbridge.lease import (
    Holder,
    LeaseRecord,
    claim,
    fence_holds,
    free,
    release,
    renew,
    renew_interval_s,
    still_safe,
)

A = Holder("host-a", 101, "aaaa")
B = Holder("host-b", 202, "bbbb")
A_AGAIN = Holder("host-a", 101, "cccc")  # same host and pid, a later process
TIMEOUT_S = 30.0


def held_by_a(now: float = 100.0, token: int = 4) -> LeaseRecord:
    return claim(LeaseRecord("p", token=token - 1), A, now=now, timeout_s=TIMEOUT_S).current


def test_a_free_lease_is_granted_with_the_next_token() -> None:
    """Nobody held it: the claimant gets token 1, expiring a timeout from now."""
    answer = claim(free("p"), A, now=10.0, timeout_s=TIMEOUT_S)
    assert answer.granted
    assert answer.lease == answer.current
    lease = answer.current
    assert (lease.holder, lease.host, lease.pid) == (A.key, "host-a", 101)
    assert (answer.current.token, answer.current.expires_at) == (1, 40.0)


def test_a_running_lease_of_another_holder_is_refused() -> None:
    """While A's lease runs, B waits: nothing is written and B learns who holds it."""
    lease = held_by_a(now=100.0)
    answer = claim(lease, B, now=129.9, timeout_s=TIMEOUT_S)
    assert not answer.granted
    assert answer.lease is None
    assert answer.current == lease


def test_an_expired_lease_is_taken_over_with_a_larger_token() -> None:
    """A stopped renewing: at its expiry B takes over, and the token grows."""
    lease = held_by_a(now=100.0, token=4)
    answer = claim(lease, B, now=130.0, timeout_s=TIMEOUT_S)
    assert answer.granted
    assert answer.current.holder == B.key
    assert answer.current.token == 5
    assert answer.current.acquired_at == 130.0


def test_an_exclusive_claimant_takes_over_a_running_lease() -> None:
    """Holding the file lock proves the recorded holder is dead: no wait for the expiry."""
    lease = held_by_a(now=100.0, token=4)
    answer = claim(lease, A_AGAIN, now=101.0, timeout_s=TIMEOUT_S, exclusive=True)
    assert answer.granted
    assert answer.current.token == 5
    assert answer.current.holder == A_AGAIN.key


def test_a_restarted_process_with_the_same_pid_is_another_holder() -> None:
    """Host and pid alone do not make the holder: a reused pid waits like anyone else."""
    lease = held_by_a(now=100.0)
    assert not claim(lease, A_AGAIN, now=110.0, timeout_s=TIMEOUT_S).granted


def test_the_holder_claiming_again_keeps_its_token() -> None:
    """A claim by the holder itself is a renewal, not a new token."""
    lease = held_by_a(now=100.0, token=4)
    answer = claim(lease, A, now=120.0, timeout_s=TIMEOUT_S)
    assert answer.granted
    assert (answer.current.token, answer.current.expires_at) == (4, 150.0)


def test_the_holder_renews_until_a_timeout_after_now() -> None:
    """A renewal moves the expiry and keeps holder and token."""
    lease = held_by_a(now=100.0, token=4)
    renewed = renew(lease, A, 4, now=110.0, timeout_s=TIMEOUT_S)
    assert renewed is not None
    assert (renewed.holder, renewed.token, renewed.renewed_at, renewed.expires_at) == (
        A.key,
        4,
        110.0,
        140.0,
    )


def test_a_renewal_never_shortens_the_lease() -> None:
    """A renewal with a shorter timeout leaves the later expiry standing."""
    lease = held_by_a(now=100.0)
    renewed = renew(lease, A, lease.token, now=101.0, timeout_s=1.0)
    assert renewed is not None
    assert renewed.expires_at == 130.0


def test_a_renewal_after_a_takeover_is_refused() -> None:
    """A was paused past its lease and B took over: A's renewal with the old token fails."""
    lease = held_by_a(now=100.0, token=4)
    taken = claim(lease, B, now=131.0, timeout_s=TIMEOUT_S).current
    assert renew(taken, A, 4, now=132.0, timeout_s=TIMEOUT_S) is None


def test_an_expired_lease_nobody_took_is_still_renewed() -> None:
    """Late but unchallenged: the holder keeps its lease (nobody else wrote meanwhile)."""
    lease = held_by_a(now=100.0, token=4)
    renewed = renew(lease, A, 4, now=200.0, timeout_s=TIMEOUT_S)
    assert renewed is not None
    assert renewed.expires_at == 230.0


def test_the_fence_holds_only_for_the_holder_and_its_token() -> None:
    """A commit goes ahead with the stored holder and token, never with an older token."""
    lease = held_by_a(token=4)
    assert fence_holds(lease, A, 4)
    assert not fence_holds(lease, A, 3)
    assert not fence_holds(lease, B, 4)
    assert not fence_holds(None, A, 4)
    assert not fence_holds(free("p"), A, 0)


def test_a_release_frees_the_lease_and_keeps_the_token() -> None:
    """Released: free at once for the next claimant, whose token is still larger."""
    lease = held_by_a(token=4)
    freed = release(lease, A, 4)
    assert freed is not None
    assert not freed.held
    assert freed.token == 4
    answer = claim(freed, B, now=101.0, timeout_s=TIMEOUT_S)
    assert answer.granted
    assert answer.current.token == 5


def test_only_the_holder_may_release() -> None:
    """A runner that lost its lease cannot free the new holder's."""
    lease = held_by_a(token=4)
    assert release(lease, B, 4) is None
    assert release(lease, A, 3) is None


def test_pushing_is_safe_until_a_timeout_after_the_last_renewal_started() -> None:
    """Measured from the start of the renewal, which is before the store stamped it."""
    assert still_safe(renewal_started=50.0, now=79.9, timeout_s=TIMEOUT_S)
    assert not still_safe(renewal_started=50.0, now=80.0, timeout_s=TIMEOUT_S)


def test_the_holder_renews_three_times_per_timeout() -> None:
    """One slow or failed renewal leaves two more before the lease runs out."""
    assert renew_interval_s(30.0) == 10.0
