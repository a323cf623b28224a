"""Section 6: each model in each precision and backend: speed, quality loss against fp32, and peak RSS.

For every model, every runnable ``(backend, precision)`` pair (torch fp32, torch bf16 where the CPU has native bf16,
onnxruntime fp32, onnxruntime int8, and OpenVINO fp32/bf16/int8 on the same graphs where it is installed) gives:

- seconds per LR megapixel: the median ``Upsampler.enhance_tensor`` time of one ``size``² LR photo, untiled;
- the ratio to torch fp32 on the same photo (the reference);
- the PSNR-Y delta per validation spec against torch fp32 (``ddrsr.evaluation.evaluate`` on the validation crops:
  photos never trained on, and never the int8 calibration crops) and the jpeg30 blockiness delta;
- whether the loss is within the quality budget (bf16 <= 0.05 dB, int8 <= 0.15 dB on every spec, blockiness within
  0.02), which is what decides whether a model may declare the precision for ``--precision auto``.

Peak RSS is measured for the 8K tiled check (``memory_bench.bench_big_image``) per precision, in a fresh process
each, for the models listed in ``big_models`` (a full-size model takes ~15 minutes per 8K photo on 2 cores).
"""
import functools
import os

import torch

from benchmarks.timing import smooth_images, timed

#: The quality budget of each precision against fp32: dB of mean PSNR per spec, and jpeg30 blockiness. fp32 on
#: another backend computes the same arithmetic in another order, so its budget is rounding noise, not zero.
BUDGET_DB = {'fp32': 0.01, 'bf16': 0.05, 'int8': 0.15}
BUDGET_BLOCKINESS = 0.02
REFERENCE = ('torch', 'fp32')


def runnable_pairs():
    """The ``(backend, precision)`` pairs this CPU runs: bf16 only with native bf16 units."""
    from ddrsr.inference.torch_backend import cpu_supports_bf16

    pairs = [REFERENCE]
    if cpu_supports_bf16():
        pairs.append(('torch', 'bf16'))
    return pairs + [('onnx', 'fp32'), ('onnx', 'int8')]


def within_budget(precision, deltas, blockiness_delta):
    """Whether a precision's measured loss (``deltas``: dB per spec, negative = worse) is within its budget."""
    budget = BUDGET_DB.get(precision, 0.0)
    return all(delta >= -budget for delta in deltas.values()) and (
        blockiness_delta is None or abs(blockiness_delta) <= BUDGET_BLOCKINESS)


def _openvino_upsamplers(loaded, onnx_dir):
    """``(precision, Upsampler)`` for OpenVINO on the graphs the onnx rows ran (see ``benchmarks.openvino_backend``),
    or nothing where OpenVINO is not installed."""
    from benchmarks.openvino_backend import OPENVINO_PRECISIONS, OpenVINOBackend, openvino_version
    from ddrsr.inference import Upsampler
    from ddrsr.inference.onnx_backend import cached_split_pair
    from ddrsr.inference.quantize import cached_int8_generator
    from ddrsr.inference.torch_backend import cpu_supports_bf16

    if openvino_version() is None:
        return
    encoder, generator = cached_split_pair(loaded, onnx_dir)
    for precision in OPENVINO_PRECISIONS:
        if precision == 'bf16' and not cpu_supports_bf16():
            continue
        graph = cached_int8_generator(os.path.dirname(generator), generator, encoder) if precision == 'int8' \
            else generator
        upsampler = Upsampler(model=loaded, device='cpu', backend='onnx', onnx_dir=onnx_dir,
                              precision='int8' if precision == 'int8' else 'fp32')
        upsampler.backend = OpenVINOBackend(encoder, graph, precision='bf16' if precision == 'bf16' else 'fp32',
                                            threads=torch.get_num_threads())
        yield precision, upsampler


def bench_precision(models, size=128, repeats=5, warmup=1, onnx_dir=None, hr=None, meta_info=None, crop_size=192,
                    specs=('clean', 'blur2', 'noise20', 'blur2_noise20', 'jpeg30'), progress=True, weights=None,
                    compare_openvino=True):
    """One row per model and ``(backend, precision)``; see the module docstring.

    Args:
        models (list[str]): zoo names (``NAME@DETAIL`` for a detail knob).
        size (int): side of the timed LR photo.
        hr (str, optional): folder of validation photos; None skips the quality columns.
        weights (dict, optional): ``{model: checkpoint}`` to load instead of the shipped files.
        compare_openvino (bool): add OpenVINO's rows (``backend: 'openvino'``) where it is installed.

    Returns:
        dict: ``{'size', 'crop_size', 'specs', 'rows': [...]}``; each row has ``model``, ``backend``,
        ``precision``, ``median_s``, ``s_per_lr_mp``, ``vs_fp32_torch``, ``psnr`` and ``delta_db`` per spec,
        ``blockiness_jpeg30``, ``blockiness_delta`` and ``within_budget``.
    """
    from ddrsr.evaluation import evaluate
    from ddrsr.inference import Upsampler
    from ddrsr.loader import load

    photo = torch.from_numpy(smooth_images(1, size, size, seed=6)[0]).permute(2, 0, 1)[None].contiguous()
    rows = []
    for token in models:
        name, at, detail = token.partition('@')
        loaded = load(name, weights=(weights or {}).get(token), device='cpu', detail=float(detail) if at else None)
        reference = None
        model_onnx_dir = os.path.join(onnx_dir, token) if onnx_dir else None

        def upsamplers():
            for backend, precision in runnable_pairs():
                yield backend, precision, Upsampler(model=loaded, device='cpu', backend=backend, precision=precision,
                                                    onnx_dir=model_onnx_dir)
            if compare_openvino:  # the other engine on the same graphs, after ddrsr's own rows
                for precision, upsampler in _openvino_upsamplers(loaded, model_onnx_dir):
                    yield 'openvino', precision, upsampler

        for backend, precision, upsampler in upsamplers():
            timing = timed(functools.partial(upsampler.enhance_tensor, photo), repeats, warmup)
            row = {'model': token, 'backend': backend, 'precision': precision, 'median_s': timing['median_s'],
                   'runs_s': timing['runs_s'], 's_per_lr_mp': timing['median_s'] / (size * size / 1e6)}
            if hr:
                scores = evaluate(upsampler.enhance_tensor, hr, list(specs), scale=loaded.scale, meta_info=meta_info,
                                  crop_size=crop_size, progress=progress)
                row['psnr'] = {spec: scores[spec]['psnr'] for spec in specs}
                row['blockiness_jpeg30'] = scores['jpeg30']['blockiness'] if 'jpeg30' in scores else None
            if (backend, precision) == REFERENCE:
                reference = row
            row['vs_fp32_torch'] = reference['median_s'] / row['median_s']
            if hr:
                row['delta_db'] = {spec: row['psnr'][spec] - reference['psnr'][spec] for spec in specs}
                row['blockiness_delta'] = (None if row['blockiness_jpeg30'] is None
                                           else row['blockiness_jpeg30'] - reference['blockiness_jpeg30'])
                row['within_budget'] = within_budget(precision, row['delta_db'], row['blockiness_delta'])
            rows.append(row)
            del upsampler
    from benchmarks.openvino_backend import openvino_version

    return {'size': size, 'crop_size': crop_size, 'specs': list(specs), 'rows': rows,
            'openvino': openvino_version() if compare_openvino else None}


def bench_precision_memory(models, height=1080, width=1920, tile=256, threads=None, onnx_dir=None, weights=None):
    """The 8K tiled check (read, tiled SR, write; peak RSS < 3 GB) for each model in each runnable precision,
    on the backend that precision runs on under ``backend='auto'``, one fresh process each."""
    from benchmarks.memory_bench import bench_big_image

    weights, rows = weights or {}, []
    for token in models:
        for precision in dict.fromkeys(precision for _, precision in runnable_pairs()):  # one row each
            rows.append(bench_big_image(token, height, width, tile=tile, threads=threads, precision=precision,
                                        weights=weights.get(token),
                                        onnx_dir=os.path.join(onnx_dir, token) if onnx_dir else None))
    return rows
