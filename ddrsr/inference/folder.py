"""Upscale a file or a folder of photos: what to list, where outputs go, and what a bad file does to the run.

The policy (what ``python inference.py`` and ``ddrsr upscale`` promise):

- Inputs are never overwritten; an existing output is skipped unless ``overwrite``.
- A bad file (unreadable, truncated, too many pixels, out of memory, a full disk) costs one
  ``ddrsr: error: <file>: ...`` line and the run goes on; :func:`upscale_files` counts it as failed.
- A signal (Ctrl-C, SIGTERM) handled by a :class:`ddrsr.utils.interruption.StopOnSignal` ends the run between files:
  the file in progress is abandoned (outputs are written atomically), the tally says how far it got.
"""
import dataclasses
import os
import tempfile

from ddrsr.errors import DDRSRError
from ddrsr.data.image_io import IMAGE_EXTENSIONS, find_images


def list_inputs(path):
    """The image files to process: ``path`` itself, or the images directly inside folder ``path``."""
    if os.path.isdir(path):
        files = find_images(path, recursive=False)
    elif os.path.lexists(path):
        return [path]  # read_image says what is wrong with it (loop, pipe, broken link)
    else:
        raise DDRSRError(f'input {path!r} does not exist; pass an image or a folder with -i')
    if not files:
        raise DDRSRError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {path!r}; put photos there or pass -i')
    return files


def check_output_folder(folder):
    """Create ``folder`` if needed and prove it writable, so a read-only folder is one error, not one per file."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise DDRSRError(f'cannot write to the output folder {folder!r} ({error.strerror or error}); '
                         'choose a writable folder with -o') from None


def output_name(in_path, out_dir, suffix):
    """``out_dir/<stem>_<suffix><ext>`` (``<stem><ext>`` for an empty suffix)."""
    stem, ext = os.path.splitext(os.path.basename(in_path))
    return os.path.join(out_dir, f'{stem}_{suffix}{ext}' if suffix else f'{stem}{ext}')


@dataclasses.dataclass
class Tally:
    """How far a folder run got: ``files`` listed, and how many were ``written``, ``skipped`` or ``failed``."""

    files: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0

    @property
    def done(self):
        return self.written + self.skipped + self.failed


def _failure(error):
    """The message for a file that raised ``error`` (no traceback for users)."""
    if isinstance(error, DDRSRError):
        return str(error)
    if isinstance(error, MemoryError):
        return 'out of memory; pass a tile size, e.g. -t 256'
    if isinstance(error, OSError):  # e.g. the disk filled up while writing
        return f'{error.strerror or error}; check that the output folder is writable and has free space'
    hint = 'pass a smaller tile, e.g. -t 256' if 'out of memory' in str(error).lower() else \
        'this looks like a bug; please report it with the file'
    return f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}; {hint}'


def upscale_files(upsampler, files, out_dir, suffix='out', outscale=None, ext='auto', overwrite=False, stop=None,
                  tally=None, on_error=None, on_skip=None, progress=None):
    """Upscale each of ``files`` into ``out_dir`` with ``upsampler``; one bad file never stops the others.

    Args:
        upsampler (Upsampler): does the work (:meth:`~ddrsr.inference.Upsampler.upscale_file`).
        stop (StopOnSignal, optional): checked after each file (a signal held while an output was written).
        tally (Tally, optional): counted into as the run goes (so an interrupted run can say how far it got).
        on_error (callable, optional): ``on_error(message, path)`` for each failed file.
        on_skip (callable, optional): ``on_skip(path, result)`` for each output that existed.
        progress (callable, optional): wraps ``files`` (e.g. a tqdm bar).

    Returns:
        Tally.
    """
    tally = tally if tally is not None else Tally(files=len(files))
    for path in (progress(files) if progress else files):
        try:
            result = upsampler.upscale_file(path, output_name(path, out_dir, suffix), outscale=outscale, ext=ext,
                                            overwrite=overwrite)
            if result.skipped and on_skip:
                on_skip(path, result)
            if result.skipped:
                tally.skipped += 1
            else:
                tally.written += 1
        except Exception as error:  # DDRSRError, MemoryError, OSError, and anything else: one line, go on
            tally.failed += 1
            if on_error:
                on_error(_failure(error), path)
        if stop is not None:
            stop.raise_if_requested()
    return tally
