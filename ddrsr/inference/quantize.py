"""int8 inference on the CPU: the exported generator graph quantized statically, calibrated on training crops.

The CPU's int8 dot-product units (AVX512-VNNI) run onnxruntime's ``QLinearConv`` kernels. Only the generator graph
``(lq, embedding) -> sr`` is quantized: the DDR encoder runs once per photo on a small crop, costs little, and stays
fp32 so that the embedding (and with it the strength and ``ddrsr inspect``) does not move.

Quantization is static post-training quantization (onnxruntime's ``quantize_static``): QDQ format, per-channel
symmetric int8 weights, uint8 activations whose ranges are read from calibration data. The calibration data are
``weights/int8_calibration.npz``: LR crops of the *training* photos degraded by the default model's training
pipeline (``scripts/make_int8_calibration.py``), never the validation photos on which the quality is measured.

The quantized graph is cached beside the fp32 pair that ``ddrsr.inference.onnx_backend.cached_split_pair`` exports
(that folder is keyed by the weights' sha256), under a name that carries the precision and the calibration file's
sha256, and written atomically: processes that quantize at once both write complete, equal files.
"""
import json
import os
import tempfile

import numpy as np

from ddrsr.defaults import WEIGHTS_DIR
from ddrsr.errors import DDRSRError

#: The shipped calibration crops (``scripts/make_int8_calibration.py``).
CALIBRATION_FILE = os.path.join(WEIGHTS_DIR, 'int8_calibration.npz')
#: How activation ranges are read from the calibration data: ``'minmax'`` or ``'percentile'`` (99.999 %, which
#: ignores the rare outliers that would otherwise stretch a uint8 range).
CALIBRATION_METHODS = ('minmax', 'percentile')
DEFAULT_CALIBRATION_METHOD = 'minmax'
_QUANT_FORMAT = 1  # bump when the quantization recipe changes so old cached graphs are not reused


def read_calibration(path=CALIBRATION_FILE):
    """The calibration crops: float32 ``(N, 3, h, w)`` in [0, 1].

    Raises:
        DDRSRError: the file is missing or holds no ``lq`` array of uint8 ``(N, h, w, 3)``.
    """
    if not os.path.isfile(path):
        raise DDRSRError(f'{path} is missing, so int8 cannot be calibrated; restore it (git checkout weights/) or '
                         'write it with python scripts/make_int8_calibration.py')
    with np.load(path, allow_pickle=False) as data:
        lq = data['lq'] if 'lq' in data.files else None
    if lq is None or lq.dtype != np.uint8 or lq.ndim != 4 or lq.shape[-1] != 3:
        raise DDRSRError(f'{path}: expected an array "lq" of uint8 (N, h, w, 3)')
    return np.ascontiguousarray(lq.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)


class _CalibrationReader:
    """Feeds the generator graph each calibration crop with the embedding the fp32 encoder gives it."""

    def __init__(self, lq, generator_inputs, encoder_path=None):
        self._feeds = []
        encoder = None
        if encoder_path is not None:
            import onnxruntime as ort

            encoder = ort.InferenceSession(encoder_path, providers=['CPUExecutionProvider'])
        for crop in lq:
            crop = crop[None]
            feed = {generator_inputs[0]: crop}
            if encoder is not None:
                feed[generator_inputs[1]] = encoder.run(None, {encoder.get_inputs()[0].name: crop})[0]
            self._feeds.append(feed)
        self._next = iter(self._feeds)

    def get_next(self):
        return next(self._next, None)

    def rewind(self):
        self._next = iter(self._feeds)


def quantize_generator(generator_path, output_path, encoder_path=None, calibration=CALIBRATION_FILE,
                       method=DEFAULT_CALIBRATION_METHOD):
    """Write the int8 (QDQ) version of the fp32 generator graph ``generator_path`` to ``output_path``, atomically.

    Args:
        generator_path (str): ``(lq, embedding) -> sr`` (or ``lq -> sr``) fp32 graph from ``export_split``.
        output_path (str): where the quantized graph goes.
        encoder_path (str, optional): the pair's encoder, which gives each calibration crop its embedding.
        calibration (str): the calibration ``.npz`` (see :func:`read_calibration`).
        method (str): one of :data:`CALIBRATION_METHODS`.

    Returns:
        str: ``output_path``.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise DDRSRError(f'unknown calibration method {method!r}; use {", ".join(CALIBRATION_METHODS)}')
    lq = read_calibration(calibration)
    inputs = [i.name for i in ort.InferenceSession(generator_path, providers=['CPUExecutionProvider']).get_inputs()]
    reader = _CalibrationReader(lq, inputs, encoder_path)
    folder = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as work:
        prepared = os.path.join(work, 'prepared.onnx')
        quant_pre_process(generator_path, prepared, skip_symbolic_shape=True)
        staged = os.path.join(work, 'int8.onnx')
        quantize_static(prepared, staged, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method={'minmax': CalibrationMethod.MinMax,
                                          'percentile': CalibrationMethod.Percentile}[method],
                        extra_options={'CalibTensorRangeSymmetric': False, 'CalibPercentile': 99.999,
                                       'CalibStridedMinMax': None})
        os.replace(staged, output_path)  # same folder: atomic
    return output_path


def cached_int8_generator(onnx_dir, generator_path, encoder_path=None, calibration=CALIBRATION_FILE,
                          method=DEFAULT_CALIBRATION_METHOD):
    """The int8 generator for the fp32 pair in ``onnx_dir``, quantized on first use and reused afterwards.

    The file name carries the calibration file's sha256 and the method, so new calibration data or another method
    quantize again, and different ones can sit side by side; a ``.json`` beside it records how it was made.
    """
    from ddrsr.weights.manifest import sha256_file

    if not os.path.isfile(calibration):
        read_calibration(calibration)  # the clear error
    key = f'{sha256_file(calibration)[:16]}-{method}-{_QUANT_FORMAT}'
    path = os.path.join(onnx_dir, f'generator.int8.{key}.onnx')
    if not os.path.isfile(path):
        try:
            quantize_generator(generator_path, path, encoder_path, calibration, method)
            with open(path + '.json.tmp', 'w') as handle:
                json.dump({'calibration': os.path.basename(calibration), 'calibration_sha256_16': key.split('-')[0],
                           'method': method, 'format': _QUANT_FORMAT}, handle)
            os.replace(path + '.json.tmp', path[:-len('.onnx')] + '.json')
        except OSError as error:
            raise DDRSRError(f'cannot write the int8 graph in {onnx_dir!r} ({error}); set DDRSR_CACHE to a '
                             'writable folder') from None
    return path


def make_calibration(hr_folder, meta_info, option_file, output, count=32, lr_size=64, scale=4, seed=0):
    """Write a calibration ``.npz``: ``count`` LR crops of the photos in ``hr_folder`` (the training crops), degraded
    by the ``degradation:`` block of ``option_file`` (the default model's training pipeline), as uint8 ``lq``.

    Returns:
        str: ``output``.
    """
    import torch

    from ddrsr.data.image_io import list_images, read_rgb, to_tensor
    from ddrsr.data.random_degradation import RandomDegradation
    from ddrsr.utils.atomic_file import AtomicFile
    from ddrsr.utils.option_file import load_yaml

    paths = list_images(hr_folder, meta_info)
    if len(paths) < count:
        raise DDRSRError(f'{hr_folder} has {len(paths)} images; the calibration needs {count}')
    degradation = RandomDegradation.from_options(load_yaml(option_file).get('degradation'))
    generator = torch.Generator().manual_seed(seed)
    picks = np.linspace(0, len(paths) - 1, count).round().astype(int)
    side = lr_size * scale
    crops = []
    for index in picks:
        hr = to_tensor(read_rgb(paths[index]))[None]
        height, width = hr.shape[-2:]
        if min(height, width) < side:
            raise DDRSRError(f'{paths[index]} is smaller than {side} px; the calibration crops are {side} px')
        top = int(torch.randint(0, height - side + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - side + 1, (1,), generator=generator))
        crops.append(hr[:, :, top:top + side, left:left + side])
    lq = degradation(torch.cat(crops), scale, generator).clamp(0, 1)
    array = (lq * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    with AtomicFile(output) as handle:
        np.savez_compressed(handle, lq=array, source=np.array(
            f'{count} crops of {os.path.relpath(hr_folder)}'
            f'{f" ({os.path.relpath(meta_info)})" if meta_info else ""}, degraded by '
            f'{os.path.relpath(option_file)}, seed {seed}'))
    return output
