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


def check_image_batch(tensor, name, channels=3, *, floating=True, multiple_of=None):
    """Raise a DDRSRError unless ``tensor`` is an image batch ``(B, channels, H, W)``; return it unchanged.

    The check at every public tensor entry point (kornia-style): the message names the argument, the
    expected shape and the shape got, and says how to fix the usual mistakes (a missing batch dimension,
    channels last). It reads a few attributes and copies nothing, so hot paths can afford it.

    Args:
        tensor (Tensor): what the caller passed.
        name (str): how the message names it, e.g. ``'degrade: hr'``.
        channels (int | None): the channel count C; None accepts any.
        floating (bool): also require a floating-point dtype (images are float in [0, 1]).
        multiple_of (int, optional): H and W must be multiples of it (e.g. the SR scale of HR crops).

    >>> import torch
    >>> check_image_batch(torch.zeros(2, 3, 8, 8), 'hr').shape
    torch.Size([2, 3, 8, 8])
    >>> check_image_batch(torch.zeros(3, 8, 8), 'hr')
    Traceback (most recent call last):
    ...
    ddrsr.errors.DDRSRError: hr must have shape (B, 3, H, W), got (3, 8, 8); add the batch dimension with hr[None]
    """
    import torch

    expected = f'(B, {channels if channels is not None else "C"}, H, W)'
    if not torch.is_tensor(tensor):
        raise DDRSRError(f'{name} must be a {expected} torch tensor, got {type(tensor).__name__}; convert images '
                         'with torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255')
    shape = tuple(tensor.shape)
    if len(shape) != 4 or (channels is not None and shape[1] != channels):
        hint = ''
        if len(shape) == 3 and (channels is None or shape[0] == channels):
            hint = f'; add the batch dimension with {name.split(":")[-1].strip()}[None]'
        elif len(shape) == 3 and channels is not None and shape[-1] == channels:
            hint = '; channels come first: make an (H, W, C) image a batch with .permute(2, 0, 1)[None]'
        elif len(shape) == 4 and channels is not None and shape[-1] == channels:
            hint = '; channels come first: permute (B, H, W, C) to (B, C, H, W) with .permute(0, 3, 1, 2)'
        raise DDRSRError(f'{name} must have shape {expected}, got {shape}{hint}')
    if floating and not tensor.is_floating_point():
        raise DDRSRError(f'{name} must be a float tensor in [0, 1], got dtype {tensor.dtype}; '
                         'convert 8-bit images with .float() / 255')
    if multiple_of and (shape[2] % multiple_of or shape[3] % multiple_of):
        raise DDRSRError(f'{name} must have H and W multiples of {multiple_of}, got {shape[2]}x{shape[3]} '
                         f'(shape {shape}); crop it to a multiple first')
    return tensor
