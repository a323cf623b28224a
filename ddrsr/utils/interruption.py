"""Stop a long run cleanly on Ctrl-C (SIGINT) or SIGTERM: abandon the work in progress, never half a file.

A folder run spends nearly all its time computing, and a moment writing each output. Inside
:class:`StopOnSignal` a signal raises :class:`Interrupted` at once, so the computation in progress is
abandoned (it has written nothing yet); while a :func:`protected` block runs (``AtomicFile`` writes and
renames its file inside one), the signal is held and the file is finished first. So a stopped run never
leaves a partial output or a temporary file, and a second Ctrl-C during a write does not change that.

    with StopOnSignal() as stop:
        for path in files:
            process(path)              # Interrupted here: this file is abandoned
            stop.raise_if_requested()  # a signal held during a write stops the run here
"""
import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_active = None  # the StopOnSignal in force, if any (signal handlers exist once per process)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that ``except Exception``
    handlers (one bad file must not stop the rest) do not swallow it."""

    def __init__(self, signum):
        self.signum = int(signum)
        self.name = signal.Signals(self.signum).name
        super().__init__(self.name)

    @property
    def exit_status(self):
        """The shell's convention for a process ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class StopOnSignal:
    """While active (in the main thread), SIGINT and SIGTERM raise :class:`Interrupted`, except inside
    :func:`protected` blocks, where they are held until the block ends and then reported by
    :meth:`raise_if_requested` (or at the latest when the ``with`` block ends). Outside the main thread,
    where Python cannot install signal handlers, it does nothing."""

    def __init__(self):
        self.requested = None  # the signal held during a protected block
        self._depth = 0
        self._previous = {}

    def __enter__(self):
        global _active
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
            _active = self
        return self

    def __exit__(self, exc_type, exc, traceback):
        global _active
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if _active is self:
            _active = None
        if exc_type is None:
            self.raise_if_requested()
        return False

    def _handle(self, signum, frame):
        if self._depth:
            self.requested = self.requested or signum
            return
        raise Interrupted(signum)

    def raise_if_requested(self):
        """Raise :class:`Interrupted` for a signal that arrived during a protected block."""
        if self.requested is not None:
            signum, self.requested = self.requested, None
            raise Interrupted(signum)


@contextlib.contextmanager
def protected():
    """Hold SIGINT/SIGTERM while the block runs, when a :class:`StopOnSignal` is active (else a no-op)."""
    stop = _active
    if stop is None:
        yield
        return
    stop._depth += 1
    try:
        yield
    finally:
        stop._depth -= 1
