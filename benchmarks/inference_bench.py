"""Section 1: CPU inference of a shipped model, torch eager against onnxruntime against ``torch.compile``.

Every variant runs through the same :class:`~ddrsr.inference.Upsampler` call (whole photo, no tiles), so
the times include what a user pays: the DDR embedding, the network, the blend buffer and the clip. The
model's FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass
(encoder included), which gives the achieved GFLOP/s of each variant.
"""
import copy
import time

import numpy as np
import torch

from benchmarks.timing import smooth_images, timed

#: Outputs that differ from torch eager by more than this are not "correct": a quarter of an 8-bit level.
CORRECT_MAX_ABS = 1.0 / 1020
NCHW, CHANNELS_LAST = 'torch eager, NCHW', 'torch eager, channels-last'
ORT, COMPILED = 'onnxruntime (CPUExecutionProvider)', 'torch.compile (inductor)'


def default_engine():
    """The label of the engine ``Upsampler()`` uses when nothing is asked for (read from its signature)."""
    import inspect

    from ddrsr.inference import Upsampler

    from ddrsr.inference.upsampler import choose_backend

    defaults = {k: p.default for k, p in inspect.signature(Upsampler).parameters.items()}
    if choose_backend(defaults.get('backend', 'torch'), 'cpu') == 'onnx':
        return ORT
    return CHANNELS_LAST if defaults.get('channels_last', False) else NCHW


def count_flops(model, height, width):
    """FLOPs of one ``model`` forward pass on a ``(1, 3, height, width)`` input (multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, height, width)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


class _CompiledNetwork:
    """The two entry points the torch backend calls (``net(x, embedding=e)``, ``net.encode(x)``), compiled."""

    def __init__(self, network):
        self.forward = torch.compile(network)
        self.encode = torch.compile(network.encode) if hasattr(network, 'encode') else None

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


def _variants(model, threads, onnx_dir, compile_model):
    """``{label: builder}``; each builder returns a ready Upsampler (built lazily, so a failure is local)."""
    from ddrsr.inference import Upsampler
    from ddrsr.inference.onnx_backend import OnnxBackend, cached_split_pair

    # backend='torch' for every variant built here: the default ('auto') is onnxruntime on the CPU, which would
    # time onnxruntime under the eager labels (and export the pair for each).
    def eager(channels_last):
        return lambda: Upsampler(model=copy.deepcopy(model), device='cpu', channels_last=channels_last, backend='torch')

    def onnx():
        upsampler = Upsampler(model=copy.deepcopy(model), device='cpu', backend='torch')
        encoder, generator = cached_split_pair(model, onnx_dir)
        # Same thread count as torch, so that the comparison is between engines, not thread pools.
        upsampler.backend = OnnxBackend(encoder, generator, device='cpu', threads=threads)
        upsampler.backend_name = 'onnx'
        return upsampler

    def compiled():
        upsampler = Upsampler(model=copy.deepcopy(model), device='cpu', backend='torch')
        upsampler.backend.model = _CompiledNetwork(upsampler.backend.model)
        return upsampler

    variants = {NCHW: eager(False), CHANNELS_LAST: eager(True), ORT: onnx}
    if compile_model:
        variants[COMPILED] = compiled
    return variants


def bench_inference(model_name=None, size=256, repeats=5, warmup=1, threads=None, onnx_dir=None,
                    compile_model=True, matmul=None, weights=None):
    """Time ``size x size -> (scale*size)^2`` on the CPU for each engine; ratios, GFLOP/s, correctness.

    Args:
        model_name (str, optional): zoo model (default: the shipped default).
        weights (str, optional): checkpoint for that architecture instead of the shipped file.
        matmul (dict, optional): :func:`~benchmarks.timing.matmul_gflops` result, for the fractions.
        compile_model (bool): also try ``torch.compile`` (its first call compiles, which takes minutes).

    Returns:
        dict: ``variants`` (label -> median, GFLOP/s, max abs difference to eager NCHW, ok, the Upsampler's
        ``backend``), ``flops``,
        ``default`` (the Upsampler's default engine) and the speed-up ratios.
    """
    from ddrsr.loader import load
    from ddrsr.zoo import DEFAULT_MODEL

    model_name = model_name or DEFAULT_MODEL
    model = load(model_name, weights=weights, device='cpu')  # a LoadedModel: the Upsampler and export take it
    photo = smooth_images(1, size, size, seed=1)[0]
    flops = count_flops(model.network, size, size)
    threads = threads or torch.get_num_threads()
    result = {'model': model_name, 'input': f'{size}x{size}', 'output': f'{size * model.scale}x{size * model.scale}',
              'flops': flops, 'gflop_per_image': round(flops / 1e9, 2), 'threads': threads, 'variants': {},
              'default': default_engine()}
    reference = None
    for label, build in _variants(model, threads, onnx_dir, compile_model).items():
        row, outputs = {}, []
        try:
            start = time.perf_counter()
            upsampler = build()
            row['setup_s'] = round(time.perf_counter() - start, 3)
            row['backend'] = upsampler.backend_name
            # The first call of a compiled network compiles it: never let that land in a timed run.
            row.update(timed(lambda: outputs.append(upsampler.enhance(photo)), repeats,
                             max(warmup, 1) if label == COMPILED else warmup))
        except Exception as error:
            if label != COMPILED:
                raise
            # torch.compile needs a working C++ toolchain and may not support every op: "if it works".
            first_line = (str(error).strip().splitlines() or [''])[0]
            result['variants'][label] = {'error': f'{type(error).__name__}: {first_line}'}
            continue
        output = outputs[-1]
        reference = output if reference is None else reference
        row['max_abs_vs_eager'] = float(np.abs(output - reference).max())
        row['correct'] = row['max_abs_vs_eager'] <= CORRECT_MAX_ABS
        row['gflops'] = flops / row['median_s'] / 1e9
        if matmul:
            row['fraction_of_matmul'] = row['gflops'] / matmul['gflops']
        result['variants'][label] = row
    _ratios(result)
    return result


def _ratios(result):
    """Speed-ups against both eager variants, and which correct engine is fastest."""
    rows = {k: v for k, v in result['variants'].items() if 'median_s' in v}
    for base_label, key in ((NCHW, 'speedup_vs_nchw'), (result['default'], 'speedup_vs_default')):
        if base_label in rows:
            for row in rows.values():
                row[key] = rows[base_label]['median_s'] / row['median_s']
    correct = {k: v for k, v in rows.items() if v['correct']}
    result['fastest_correct'] = min(correct, key=lambda k: correct[k]['median_s']) if correct else None
