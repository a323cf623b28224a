"""Section 3 and the memory check: tiled inference time and peak RSS, one fresh process per setting.

Peak RSS (``ru_maxrss``) only ever grows within a process, so every setting runs in its own child.
The children are forked from a ``forkserver`` that has imported ddrsr and torch once (so a child starts
in a second, not in several), and each child reports ``getrusage(RUSAGE_SELF).ru_maxrss`` itself.
``RUSAGE_CHILDREN`` of a ``subprocess`` would not do: Linux carries the parent's own high-water mark
into a child across ``fork`` + ``exec``, so a big parent would inflate every child's figure.
"""
import concurrent.futures
import multiprocessing
import os
import resource
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from benchmarks.timing import smooth_images, timed
from ddrsr.inference.tiling import plan_tiles


def current_rss():
    """Resident set size of this process now, in bytes (``/proc/self/status``)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss()


def peak_rss():
    """Peak resident set size of this process so far, in bytes (Linux reports ``ru_maxrss`` in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == 'darwin' else peak * 1024


def _upsampler(model, tile, tile_pad, threads, onnx_dir=None, precision='auto'):
    from ddrsr.inference import Upsampler

    torch.set_num_threads(threads)
    kwargs = {} if tile_pad is None else {'tile_pad': tile_pad}
    name, weights = model
    name, at, detail = name.partition('@')  # NAME@DETAIL: a model with a detail knob
    return Upsampler(name, weights=weights, device='cpu', tile=tile, onnx_dir=onnx_dir, precision=precision,
                     detail=float(detail) if at else None, **kwargs)


def tiling_worker(model, height, width, tile, tile_pad, repeats, warmup, threads, onnx_dir=None):
    """In a fresh child: time ``enhance`` of a ``height x width`` photo with ``tile`` (0 = whole photo).

    ``model`` is ``(zoo name, weights file or None)``; ``onnx_dir`` is where the default (onnxruntime) backend
    finds or exports its graph pair (default: the user's cache), made once for all children.
    """
    upsampler = _upsampler(model, tile, tile_pad, threads, onnx_dir)
    photo = (smooth_images(1, height, width, seed=4)[0] * 255 + 0.5).astype(np.uint8)
    before = current_rss()
    timing = timed(lambda: upsampler.enhance(photo), repeats, warmup)
    pad = upsampler.tile_pad
    return {'tile': tile, 'tile_pad': pad, 'tiles': len(plan_tiles(height, width, tile, pad)),
            'padded_area_ratio': padded_area_ratio(height, width, tile, pad),
            'rss_before_bytes': before, 'peak_rss_bytes': peak_rss(), **timing}


def padded_area_ratio(height, width, tile, tile_pad):
    """LR pixels the network runs on (tiles with their padding) over the photo's pixels: the compute overhead
    that tiling cannot avoid, whatever the per-tile cost."""
    boxes = [t.read_box for t in plan_tiles(height, width, tile, tile_pad)]
    return sum((bottom - top) * (right - left) for top, bottom, left, right in boxes) / (height * width)


def big_image_worker(model, height, width, tile, tile_pad, threads, folder, onnx_dir=None, precision='auto'):
    """In a fresh child: the whole user path (read PNG, tiled super-resolution, write PNG), once."""
    import cv2

    upsampler = _upsampler(model, tile, tile_pad, threads, onnx_dir, precision)
    source = os.path.join(folder, f'input_{width}x{height}.png')
    photo = (smooth_images(1, height, width, seed=5)[0] * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(source, photo[:, :, ::-1])
    del photo
    before = current_rss()
    start = time.perf_counter()
    result = upsampler.upscale_file(source, os.path.join(folder, 'output.png'), overwrite=True)
    seconds, peak = time.perf_counter() - start, peak_rss()
    with Image.open(result.path) as written:  # the header only: decoding it would add to the peak
        out_width, out_height = written.size
    return {'input': f'{width}x{height}', 'output': f'{out_width}x{out_height}', 'tile': tile,
            'backend': upsampler.backend_name, 'precision': upsampler.precision_name,
            'tile_pad': upsampler.tile_pad, 'seconds': seconds, 'rss_before_bytes': before, 'peak_rss_bytes': peak}


def _context():
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context('forkserver' if 'forkserver' in methods else 'spawn')
    if context.get_start_method() == 'forkserver':
        context.set_forkserver_preload(['ddrsr', 'ddrsr.inference', __name__])
    return context


def start_server():
    """Start the fork server now, so that it imports ddrsr while other sections run (no-op without one)."""
    if _context().get_start_method() == 'forkserver':
        from multiprocessing import forkserver
        forkserver.ensure_running()


def _executor():
    """One-process-per-task executor whose processes fork from a server with ddrsr already imported."""
    return concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=_context(), max_tasks_per_child=1)


def bench_tiling(model_name, height, width, tiles=(0, 128, 256, 512), tile_pad=None, repeats=5, warmup=1,
                 threads=None, weights=None, onnx_dir=None):
    """Time and peak RSS of a ``height x width`` photo for each tile size (0 = no tiling), one process each.

    Each child runs the Upsampler's default backend; ``onnx_dir`` holds its exported ONNX pair (see
    :func:`tiling_worker`).

    Returns:
        dict: ``rows`` (one per tile size, with ``overhead`` = time / untiled time - 1) and the settings.
    """
    threads = threads or torch.get_num_threads()
    rows = []
    with _executor() as pool:
        for tile in tiles:
            rows.append(pool.submit(tiling_worker, (model_name, weights), height, width, tile, tile_pad, repeats,
                                    warmup, threads, onnx_dir).result())
    untiled = next((row for row in rows if row['tile'] == 0), None)
    for row in rows:
        row['overhead'] = row['median_s'] / untiled['median_s'] - 1 if untiled else None
    return {'model': model_name, 'input': f'{width}x{height}', 'threads': threads, 'rows': rows}


def bench_big_image(model_name, height=1080, width=1920, tile=256, tile_pad=None, threads=None, limit_gb=3.0,
                    weights=None, onnx_dir=None, precision='auto'):
    """Peak RSS of one ``height x width`` photo through read -> tiled SR -> write (8K out for 1920x1080 at x4).

    Returns:
        dict: the worker's figures plus ``limit_gb`` and ``met`` (peak RSS under the limit).
    """
    threads = threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix='ddrsr_bench_') as folder, _executor() as pool:
        row = pool.submit(big_image_worker, (model_name, weights), height, width, tile, tile_pad, threads,
                          folder, onnx_dir, precision).result()
    row.update(model=model_name, threads=threads, limit_gb=limit_gb, met=row['peak_rss_bytes'] < limit_gb * 1e9)
    return row
