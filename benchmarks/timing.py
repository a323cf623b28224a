"""Timing helpers, the machine description and the dense-matmul reference rate."""
import datetime
import os
import platform
import statistics
import time

import numpy as np
import torch


def timed(function, repeats=5, warmup=1):
    """Wall time of ``function()``: ``{'median_s', 'runs_s', 'warmup_s'}`` over ``repeats`` runs.

    ``warmup`` untimed calls come first (allocator, oneDNN primitive caches, lazy compilation); their
    times are kept in ``warmup_s`` because for ``torch.compile`` the first call *is* the compile time.
    """
    if repeats < 1:
        raise ValueError('repeats must be >= 1')
    warm = []
    for _ in range(warmup):
        start = time.perf_counter()
        function()
        warm.append(time.perf_counter() - start)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return {'median_s': statistics.median(runs), 'runs_s': [round(t, 5) for t in runs],
            'warmup_s': [round(t, 4) for t in warm]}


def smooth_images(count, height, width, seed=0):
    """``count`` photo-like float32 images ``(count, height, width, 3)`` in [0, 1].

    Noise at 1/8 resolution, upsampled bilinearly: pure per-pixel noise is atypical input (JPEG and
    the networks behave differently on it), a constant image is too easy.
    """
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.random((count, 3, max(1, height // 8), max(1, width // 8)), dtype=np.float32))
    big = torch.nn.functional.interpolate(small, size=(height, width), mode='bilinear', align_corners=False)
    return big.permute(0, 2, 3, 1).contiguous().numpy()


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ''


def _versions():
    import importlib
    versions = {}
    for name, module in (('torch', 'torch'), ('onnxruntime', 'onnxruntime'), ('kornia', 'kornia'),
                         ('opencv', 'cv2'), ('basicsr', 'basicsr'), ('numpy', 'numpy'), ('scikit-learn', 'sklearn')):
        try:
            versions[name] = getattr(importlib.import_module(module), '__version__', '?')
        except Exception:  # a missing optional package is reported, not fatal
            versions[name] = 'not installed'
    return versions


def machine_info():
    """What the figures were measured on: CPU, cores, memory, GPU, OS, library versions, load."""
    cpu = next((line.split(':', 1)[1].strip() for line in _read('/proc/cpuinfo').splitlines()
                if line.startswith('model name')), platform.processor() or platform.machine())
    mem_kb = next((int(line.split()[1]) for line in _read('/proc/meminfo').splitlines()
                   if line.startswith('MemTotal:')), 0)
    flags = next((line.split(':', 1)[1].split() for line in _read('/proc/cpuinfo').splitlines()
                  if line.startswith('flags')), [])
    simd = [f for f in ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_tile') if f in flags]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {'date': datetime.datetime.now().isoformat(timespec='seconds'), 'cpu': cpu, 'simd': simd,
            'logical_cpus': os.cpu_count(), 'usable_cpus': usable, 'memory_gb': round(mem_kb / 2**20, 1),
            'gpu': gpu, 'os': platform.platform(), 'python': platform.python_version(),
            'torch_threads': torch.get_num_threads(), 'omp_num_threads_env': os.environ.get('OMP_NUM_THREADS'),
            'load_average_1m': round(os.getloadavg()[0], 2),
            'versions': _versions()}


def matmul_gflops(size=2048, repeats=5, warmup=1):
    """Measured dense float32 matmul rate (``torch.mm`` of two ``size x size`` matrices), GFLOP/s."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=generator)
    b = torch.rand(size, size, generator=generator)
    timing = timed(lambda: torch.mm(a, b), repeats, warmup)
    return {'size': size, 'gflops': 2 * size**3 / timing['median_s'] / 1e9, **timing}


SYNC_OPS = ('aten._local_scalar_dense', 'aten.is_nonzero')  # .item(), bool(tensor), tolist() of a device tensor


def count_dispatched_ops(function):
    """Run ``function()`` and count the aten ops it dispatches, and the host reads among them.

    A host read (``.item()``, ``bool(tensor)``) makes the host wait for an accelerator's queue, so it is
    what costs on a GPU; on the CPU it is counted all the same, so that a CPU test can pin it. Reads made
    inside kornia are counted apart (ddrsr cannot remove them), and reads inside ``torch.optim`` are not
    syncs at all: they read the optimizers' step counters, which PyTorch keeps on the host on every device.

    Returns:
        dict: ``{'ops': int, 'syncs': int, 'kornia_syncs': int}``.

    >>> count_dispatched_ops(lambda: bool(torch.ones(2).sum() > 1))  # ones, sum, gt, then the read
    {'ops': 4, 'syncs': 1, 'kornia_syncs': 0}
    """
    import traceback

    from torch.utils._python_dispatch import TorchDispatchMode

    counts = {'ops': 0, 'syncs': 0, 'kornia_syncs': 0}

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts['ops'] += 1
            if str(func.overloadpacket) in SYNC_OPS:
                files = [frame.filename for frame in traceback.extract_stack()]
                if not any(f'{os.sep}torch{os.sep}optim{os.sep}' in name for name in files):
                    inside = any(f'{os.sep}kornia{os.sep}' in name for name in files)
                    counts['kornia_syncs' if inside else 'syncs'] += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        function()
    return counts
