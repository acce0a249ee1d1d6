"""Signal handling of the daemon: first signal asks for a clean stop, a second one is immediate."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from crmbridge.daemon import install_signal_handlers


@pytest.fixture
def restore_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("restore_handlers")
def test_first_sigint_sets_stop_second_interrupts() -> None:
    """The first Ctrl-C only sets the stop event; the second raises KeyboardInterrupt."""
    stop = threading.Event()
    install_signal_handlers(stop)
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.wait(5)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs before the next bytecode


@pytest.mark.usefixtures("restore_handlers")
def test_sigterm_sets_stop_and_rearms_the_default() -> None:
    """SIGTERM sets the stop event and leaves the default action for a second SIGTERM."""
    stop = threading.Event()
    install_signal_handlers(stop)
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
