"""The one exception type for errors that users can cause and fix."""


class DDRSRError(Exception):
    """A user-fixable problem: a bad path, an unreadable image, a wrong option key, missing weights.

    The message says what went wrong *and* what to do. The CLI prints it as a single
    ``ddrsr: error: ...`` line with no traceback.
    """


def closest(name, choices, n=3):
    """Up to ``n`` entries of ``choices`` that look like ``name`` (for "did you mean" hints)."""
    import difflib

    return difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.6)


def unknown_names_error(what, names, known, where=''):
    """A DDRSRError for misspelled keys/names: each bad name with its closest match, then the valid ones."""
    hints = []
    for name in names:
        match = closest(name, known, 1)
        hints.append(f'{name!r} (did you mean {match[0]!r}?)' if match else repr(name))
    location = f' in {where}' if where else ''
    listing = ', '.join(str(k) for k in list(known)[:40]) + (', ...' if len(known) > 40 else '')
    return DDRSRError(f'unknown {what}{location}: {", ".join(hints)}; valid: {listing}')
