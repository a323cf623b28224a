"""The work behind ``ddrsr serve``, without any web code: one model per process, one job at a time.

:class:`ServeEngine` loads one DDR model and shares it between the inspect report, the strength preview
and the full-size upscale. Every call takes one lock, so requests that arrive together run one after the
other on the one model (and the Upsampler's ``strength`` cannot change under a running job). Photos are
read with :func:`ddrsr.data.photo_io.read_image` and results written by
:meth:`~ddrsr.inference.upsampler.Upsampler.upscale_file`, so they get what ``inference.py`` gives: the
``--max_pixels`` check before decoding, EXIF orientation, and EXIF and ICC carried over. Results go to
job folders under one temporary folder, which :meth:`ServeEngine.close` removes.
"""
import collections
import dataclasses
import os
import shutil
import tempfile
import threading
import time

import cv2
import numpy as np

from ddrsr.defaults import SERVE_MAX_PIXELS, SERVE_TILE
from ddrsr.errors import DDRSRError
from ddrsr.inference.folder import output_name
from ddrsr.data.photo_io import read_image
from ddrsr.inference.tiling import axis_spans
from ddrsr.inference.upsampler import Upsampler, check_strength
from ddrsr.inspection.inspector import DEFAULT_REGRESSORS, Inspector
from ddrsr.inspection.report import crop_results
from ddrsr.zoo import DEFAULT_MODEL

#: LR pixels per side of the preview crop (x4: a 256 px preview, a fraction of a second on a CPU).
PREVIEW_CROP = 64
#: Longest side of the before/after images sent to the page; the download is always full size.
DISPLAY_SIZE = 2048
#: Seconds a finished result stays in its job folder for download (the page's file cache uses the same age).
RESULT_AGE = 3600


class JobCancelled(DDRSRError):
    """The user cancelled an upscale; nothing was written."""


@dataclasses.dataclass
class PhotoReport:
    """The inspect reading of one upload: ``result`` (``Inspector.inspect_file``) or ``error`` (a message)."""

    name: str
    path: str
    result: dict | None = None
    error: str | None = None


@dataclasses.dataclass
class UpscaleResult:
    """A finished upscale: the written file, its size, and the before/after pair for display.

    ``before`` (bicubic) and ``after`` are uint8 ``(h, w, 3)`` at the same size, the result's size scaled
    down to at most :data:`DISPLAY_SIZE` per side.
    """

    path: str
    width: int
    height: int
    strength: float
    seconds: float
    before: np.ndarray
    after: np.ndarray


def report_row(result):
    """One table row for an ``Inspector.inspect_file`` result: the figures that ``ddrsr inspect`` prints."""
    ddr = result['ddr']
    return [os.path.basename(result.get('file', '')), f'{result["width"]}x{result["height"]}',
            result['jpeg']['text'] if 'jpeg' in result else 'not a file',
            f'{result["noise_sigma"]:.1f}', f'{ddr["blur_sigma"]:.2f}', f'{ddr["noise_sigma"]:.1f}',
            f'q ~{ddr["jpeg_quality"]}' if ddr['jpeg_quality'] is not None else 'no JPEG',
            f'{result["nearest_spec"]["name"]} ({result["nearest_spec"]["confidence"]:.2f})',
            f'{result["recommended_strength"]:g}']


#: Column titles of :func:`report_row`.
REPORT_COLUMNS = ['photo', 'size', 'JPEG quality (file)', 'noise σ', 'DDR blur σ', 'DDR noise σ', 'DDR JPEG',
                  'nearest spec', 'strength']


def _job_progress(on_progress, cancel):
    """The Upsampler's ``on_tile`` for one job: reports each finished tile to ``on_progress(done, total)``, and stops
    the job before its next tile (and before the embedding) once the ``threading.Event`` ``cancel`` is set."""

    def on_tile(done, total):
        if done and on_progress is not None:
            on_progress(done, total)
        if done < total and cancel is not None and cancel.is_set():
            raise JobCancelled('cancelled; nothing was written')

    return on_tile


class ServeEngine:
    """One DDR model, its inspector and an Upsampler, shared by every request of a ``ddrsr serve`` process.

    Args:
        model_name (str): zoo name of a DDR model whose weights hold a clean embedding (strength needs it).
        weights (str, optional): checkpoint to use instead of the shipped weights.
        device (str): ``auto``, ``cpu`` or ``cuda``.
        detail (float, optional): the detail knob of a model that has one (``rrdb_ddr_real_x4``).
        tile (int): LR tile size of the full-size upscale (0: whole photos, no progress within a photo).
        max_pixels (int): refuse uploads with more pixels, from their header (0: no limit).
        regressors (str): the inspect regressors' ``.npz``.
        workdir (str, optional): parent of the temporary folder (default: the system's temp folder).
        precision (str): the upscale's precision (``Upsampler``'s; default ``'fp32'``, which the preview uses too).

    Raises:
        DDRSRError: not a DDR model, no clean embedding, or regressors fitted on another encoder.
    """

    def __init__(self, model_name=DEFAULT_MODEL, weights=None, device='auto', tile=SERVE_TILE,
                 max_pixels=SERVE_MAX_PIXELS, regressors=DEFAULT_REGRESSORS, workdir=None, detail=None,
                 precision='fp32'):
        from ddrsr.loader import load

        model = load(model_name, weights=weights, device='cpu', detail=detail)
        if not model.has_clean_embedding:
            raise DDRSRError(f'ddrsr serve shows the inspect report and a strength slider, which need a DDR model '
                             f'with a clean embedding; {model_name!r} has none: use -n {DEFAULT_MODEL}')
        # fp32 by default: the inspector, the preview and the upscale then run on one network, one copy of the
        # weights, and the download equals the preview. Another precision runs only the full-size upscale (int8
        # through onnxruntime); the inspector and the preview keep the fp32 network.
        self.upsampler = Upsampler(model=model, device=device, tile=tile, max_pixels=max_pixels, precision=precision,
                                   backend='torch' if precision in ('fp32', 'fp16', 'bf16') else 'auto')
        self.model = model.network
        self.inspector = Inspector(self.model, regressors)
        self.model_name, self.scale, self.max_pixels = self.upsampler.model_name, self.upsampler.scale, max_pixels
        self.workdir = tempfile.mkdtemp(prefix='ddrsr-serve-', dir=workdir)
        self._lock = threading.Lock()
        self._images = collections.OrderedDict()  # the last few photos read, for slider moves on one photo

    # ------------------------------------------------------------------------------------------- reading
    def _read(self, path):
        """The photo at ``path`` as ImageData, from a cache of the last 2 (the preview rereads on every move)."""
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._images:
            self._images[key] = read_image(path, self.max_pixels)
            while len(self._images) > 2:
                self._images.popitem(last=False)
        self._images.move_to_end(key)
        return self._images[key]

    def inspect(self, paths, on_progress=None):
        """One :class:`PhotoReport` per path, in order; a bad file gets its message, the others go on.

        ``on_progress(done, total)`` is called after each photo.
        """
        reports = []
        for index, path in enumerate(paths):
            name = os.path.basename(path)
            try:
                with self._lock:
                    result = self.inspector.inspect_file(path, self.max_pixels)
                reports.append(PhotoReport(name, path, result={**result, 'file': name}))
            except DDRSRError as error:  # the upload's temporary path means nothing to the user: name only
                reports.append(PhotoReport(name, path, error=str(error).replace(path, name)))
            except (OSError, ValueError, MemoryError) as error:  # as ddrsr inspect: one line, the rest go on
                reports.append(PhotoReport(name, path, error=f'{name}: {type(error).__name__}: {error}'))
            if on_progress is not None:
                on_progress(index + 1, len(paths))
        return reports

    # ------------------------------------------------------------------------------------------- preview
    def preview(self, path, strength):
        """``(before, after)`` uint8 crops ``(s*c, s*c, 3)`` of the photo's centre: bicubic and the model at
        ``strength``, with the embedding of the whole photo (as the full upscale uses)."""
        strength = check_strength(strength)
        with self._lock:
            crops = crop_results(self.model, self._read(path).rgb, [strength], crop=PREVIEW_CROP)
        return _to_uint8(crops['input']), _to_uint8(crops[strength])

    # ------------------------------------------------------------------------------------------- upscale
    def tile_count(self, height, width):
        """How many tiles the upscale of an ``height`` x ``width`` photo runs (its progress steps)."""
        tile, pad = self.upsampler.tile, self.upsampler.tile_pad
        return len(axis_spans(height, tile, pad)) * len(axis_spans(width, tile, pad))

    def upscale(self, path, strength, on_progress=None, cancel=None):
        """Upscale the photo at ``path`` into a new job folder; returns an :class:`UpscaleResult`.

        ``on_progress(done, total)`` is called after each tile; setting the ``threading.Event`` ``cancel``
        stops the job before its next tile (:class:`JobCancelled`, and nothing is left behind).
        """
        strength = check_strength(strength)
        started = time.perf_counter()
        with self._lock:
            self._remove_old_jobs()
            image = self._read(path)
            height, width = image.rgb.shape[:2]
            job = tempfile.mkdtemp(prefix='job-', dir=self.workdir)
            self.upsampler.strength = strength
            self.upsampler.on_tile = _job_progress(on_progress, cancel)
            try:
                # the name `python inference.py` gives it (default --suffix)
                written = self.upsampler.upscale_file(path, output_name(path, job, 'out')).path
            except BaseException:
                shutil.rmtree(job, ignore_errors=True)
                raise
            finally:
                self.upsampler.on_tile = None
            before, after, (out_w, out_h) = _display_pair(image.rgb, written)
        return UpscaleResult(written, out_w, out_h, strength, time.perf_counter() - started, before, after)

    def _remove_old_jobs(self):
        """Remove job folders older than :data:`RESULT_AGE`, so a long-running server does not fill the disk."""
        limit = time.time() - RESULT_AGE
        for entry in os.scandir(self.workdir):
            if entry.name.startswith('job-') and entry.is_dir() and entry.stat().st_mtime < limit:
                shutil.rmtree(entry.path, ignore_errors=True)

    def close(self):
        """Remove the temporary folder (every job and, under ``ddrsr serve``, every upload)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _to_uint8(rgb):
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def _display_pair(rgb, result_path):
    """``(before, after, (width, height))``: the bicubic input and the written result, both at the result's
    size shrunk to fit :data:`DISPLAY_SIZE`, and the result's full size.

    The result is read back with Pillow's ``draft``/``reduce`` rather than ``read_image``: this is only a
    picture for the page, and a full float copy of a 256 MP result would cost 3 GB for it.
    """
    from PIL import Image

    with Image.open(result_path) as result:
        width, height = result.size
        factor = max(1, -(-max(width, height) // DISPLAY_SIZE))  # ceil: the reduced image fits DISPLAY_SIZE
        after = (result.reduce(factor) if factor > 1 else result).convert('RGB')
    after = np.asarray(after)
    before = cv2.resize(np.asarray(rgb, np.float32), (after.shape[1], after.shape[0]), interpolation=cv2.INTER_CUBIC)
    return _to_uint8(before), after, (width, height)
