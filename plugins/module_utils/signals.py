# -*- coding: utf-8 -*-
# Copyright: hunter.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Termination signals as an exception, so the engines' ``finally`` blocks clean up.

Ansible (and cron, and an operator's Ctrl-C) stop a module with SIGTERM/SIGINT/SIGHUP; Python's
default would end the process without running ``finally``. Inside ``raising_on_signals()`` those
signals raise Interrupted in the main thread instead; ``ignoring_signals()`` protects a cleanup
step (dropping a scratch database, removing a partial backup) from a second signal, and
``deferring_signals()`` holds one back until a step whose outcome must be known (a statement on
the drill's own session, CREATE DATABASE and the record that it happened) has finished.
SIGKILL cannot be caught: what must survive it is written down before the risky step.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import signal
import threading

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Interrupted(BaseException):
    """The process received a termination signal; str() says which.

    A BaseException, like KeyboardInterrupt: the ``except Exception`` that turns a driver's error
    into a one-line message (pg.connect, pg.query) must not turn an interruption into a database
    error (seen: SIGTERM during CREATE DATABASE was reported as "creating ... failed")."""

    def __init__(self, signum):
        super(Interrupted, self).__init__("interrupted by signal %d" % signum)
        self.signum = signum


def _raise(signum, frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def _blocked():
    """The three signals held by the kernel while handlers are swapped (no signal may find some
    swapped and some not); one that arrived meanwhile is delivered at the end, to the new ones."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _install(handler):
    """{signal: previous handler} after installing ``handler`` for the three."""
    with _blocked():
        return dict((sig, signal.signal(sig, handler)) for sig in HANDLED)


def _restore(previous):
    with _blocked():
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)   # None: installed from C


@contextlib.contextmanager
def _handlers(handler):
    if threading.current_thread() is not threading.main_thread():
        yield   # handlers can only be set in the main thread; elsewhere the caller's stay
        return
    previous = _install(handler)
    try:
        yield
    finally:
        _restore(previous)


def raising_on_signals():
    """Within the block, SIGTERM/SIGINT/SIGHUP raise Interrupted (main thread only)."""
    return _handlers(_raise)


def ignoring_signals():
    """Within the block, SIGTERM/SIGINT/SIGHUP are ignored (a cleanup step must not be cut)."""
    return _handlers(signal.SIG_IGN)


@contextlib.contextmanager
def deferring_signals():
    """Within the block, SIGTERM/SIGINT/SIGHUP are held back; the first one is delivered again
    when the block ends, to the handlers that were in place before it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []

    def hold(signum, frame):
        if not held:
            held.append(signum)
    previous = _install(hold)
    try:
        yield
    finally:
        _restore(previous)
        if held:
            # raise_signal runs the restored handler at once (Interrupted under raising_on_signals)
            signal.raise_signal(held[0])
