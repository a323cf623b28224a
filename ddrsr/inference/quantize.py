"""int8 inference on the CPU: the exported generator graph quantized statically, calibrated on training crops.

The CPU's int8 dot-product units (AVX512-VNNI) run onnxruntime's ``QLinearConv`` kernels. Only the generator graph
``(lq, embedding) -> sr`` is quantized: the DDR encoder runs once per photo on a small crop, costs little, and stays
fp32 so that the embedding (and with it the strength and ``ddrsr inspect``) does not move.

Quantization is static post-training quantization (onnxruntime's ``quantize_static``): QDQ format, per-channel
symmetric int8 weights, uint8 activations whose ranges are read from calibration data. What is quantized is an
:class:`Int8Recipe`; the default (:data:`DEFAULT_RECIPE`) quantizes the convolutions only, not the first and the last
two, with percentile ranges, and the skip connections read fp32: that brought the lite model's loss from -0.43 dB
to -0.08. The
calibration data are ``weights/int8_calibration.npz``: LR crops of the *training* photos degraded by the default
model's training pipeline (``scripts/make_int8_calibration.py``), never the validation photos on which the quality is
measured.

The quantized graph is cached beside the fp32 pair that ``ddrsr.inference.onnx_backend.cached_split_pair`` exports
(that folder is keyed by the weights' sha256), under a name that carries the precision, the calibration file's
sha256 and the recipe, and written atomically: processes that quantize at once both write complete, equal files.
"""
import dataclasses
import fnmatch
import hashlib
import json
import os
import tempfile
from typing import Optional, Tuple

import numpy as np

from ddrsr.defaults import WEIGHTS_DIR
from ddrsr.errors import DDRSRError
from ddrsr.inference.precision_ends import FULL_PRECISION_ENDS

#: The shipped calibration crops (``scripts/make_int8_calibration.py``).
CALIBRATION_FILE = os.path.join(WEIGHTS_DIR, 'int8_calibration.npz')
#: How activation ranges are read from the calibration data: ``'minmax'`` or ``'percentile'`` (99.999 %, which
#: ignores the rare outliers that would otherwise stretch a uint8 range).
CALIBRATION_METHODS = ('minmax', 'percentile')
DEFAULT_CALIBRATION_METHOD = 'minmax'
_QUANT_FORMAT = 5  # bump when the quantizer's code changes so old cached graphs are not reused


@dataclasses.dataclass(frozen=True)
class Int8Recipe:
    """How the generator graph is quantized; part of the cached graph's name, so each recipe is made once.

    Attributes:
        method: one of :data:`CALIBRATION_METHODS`.
        op_types: the ONNX op types to quantize (e.g. ``('Conv',)``: activations are quantized only where they
            enter a convolution, and the residual adds and scalings stay fp32); None quantizes every op
            onnxruntime can.
        fp32_ends: how many convolutions at the start and at the end of the graph (in its topological order)
            stay fp32. The first one reads pixels, the last ones write them, where one int8 step is a visible
            error; they hold a few % of the arithmetic.
        keep_fp32: ``fnmatch`` patterns of further node names left in fp32.
        float_residuals: the skip connections read the fp32 tensor that a convolution's QuantizeLinear reads,
            not its int8-rounded copy (:func:`float_residual_inputs`). onnxruntime gives every reader of a quantized
            tensor the rounded copy (its ``DedicatedQDQPair`` option did not change that here), so without this the
            trunk's running sum is rounded to int8 in every block.
    """

    method: str = DEFAULT_CALIBRATION_METHOD
    op_types: Optional[Tuple[str, ...]] = None
    fp32_ends: Tuple[int, int] = (0, 0)
    keep_fp32: Tuple[str, ...] = ()
    float_residuals: bool = False

    def __post_init__(self):
        if self.method not in CALIBRATION_METHODS:
            raise DDRSRError(f'unknown calibration method {self.method!r}; use {", ".join(CALIBRATION_METHODS)}')

    def key(self) -> str:
        """A short name for the recipe (file names): the method and a hash of the rest."""
        rest = json.dumps([self.op_types, list(self.fp32_ends), list(self.keep_fp32), self.float_residuals, _QUANT_FORMAT])
        return f'{self.method}-{hashlib.sha256(rest.encode()).hexdigest()[:8]}'


#: The recipe ``--precision int8`` uses. Measured on the lite default's 192 px validation crops (PSNR against torch
#: fp32, worst spec; docs/BENCHMARKS_PRECISION.md): every op, min-max -0.43 dB; every op, percentile -0.48;
#: convolutions only, min-max -0.26; convolutions only, percentile -0.12; that with the end convolutions in fp32
#: -0.09; and with fp32 skip paths too -0.08 dB (blur2), jpeg30 blockiness +0.001; 1.28x onnxruntime fp32 on a
#: 256² photo. Quantizing the residual adds and scalings costs the most: their uint8 grid is coarse against
#: the small residuals they add.
#:
#: The full-size model (x4plus's 23-block trunk) stays outside the budget with this recipe (-2.07 dB on clean
#: crops). Its loss is spread over the trunk, not held by a few layers: ranking the convolutions by the SQNR of
#: their input's int8 round trip on calibration crops (17 to 31 dB, the early blocks' concatenations worst) and
#: keeping the 11 or 49 noisiest in fp32 moved it only to -2.03 and -1.91 dB; keeping the whole upsampling head
#: fp32 (``fp32_ends=(1, 5)``) to -0.58.
DEFAULT_RECIPE = Int8Recipe(method='percentile', op_types=('Conv',), fp32_ends=FULL_PRECISION_ENDS,
                            float_residuals=True)


def fp32_nodes(model_path, recipe):
    """Names of the nodes of the ONNX graph at ``model_path`` that ``recipe`` leaves in fp32.

    Raises:
        DDRSRError: a ``keep_fp32`` pattern matches nothing (a misspelt name would silently quantize it).
    """
    import onnx

    nodes = onnx.load(model_path).graph.node
    convolutions = [node.name for node in nodes if node.op_type == 'Conv']
    first, last = recipe.fp32_ends
    keep = convolutions[:first] + (convolutions[-last:] if last else [])
    for pattern in recipe.keep_fp32:
        matched = [node.name for node in nodes if fnmatch.fnmatchcase(node.name, pattern)]
        if not matched:
            raise DDRSRError(f'no node of {model_path} matches {pattern!r}')
        keep += matched
    return sorted(set(keep))


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


#: Calibration crops run per chunk: onnxruntime keeps every calibrated tensor of every crop in a chunk before it
#: folds them into ranges, ~0.7 GB per 64² crop for the full-size model (32 crops at once ran out of 24 GB).
CALIBRATION_CHUNK = 4


class _CalibrationReader:
    """Feeds the generator graph each calibration crop with the embedding the fp32 encoder gives it; readable in
    chunks (``set_range``, as onnxruntime's strided calibration asks)."""

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
        self.set_range(0, len(self._feeds))

    def __len__(self):
        return len(self._feeds)

    def set_range(self, start_index, end_index):
        self._next = iter(self._feeds[start_index:end_index])

    def get_next(self):
        return next(self._next, None)

    def rewind(self):
        self.set_range(0, len(self._feeds))


#: The ops that make skip connections (``x + 0.2 * block(x)``) in ddrsr's networks.
RESIDUAL_OPS = ('Add', 'Mul', 'Sub')
#: Ops whose quantized output stays int8 for their fused kernel: their readers keep the int8 copy. Rewiring those
#: too (every residual read in fp32) measured -0.07 dB instead of -0.09 but ran at 1.1x fp32 instead of 1.7x.
QUANTIZED_PRODUCERS = ('Conv',)


def float_residual_inputs(graph):
    """Rewire each residual op (:data:`RESIDUAL_OPS`) that reads an activation's DequantizeLinear to the fp32
    tensor its QuantizeLinear reads (the skip path ``x`` of ``x + 0.2 * block(x)``, which onnxruntime rounds to
    int8 because ``x`` also enters the block's first convolution); the convolutions keep their int8 input, and the
    outputs of int8 convolutions (:data:`QUANTIZED_PRODUCERS`) are left alone. Returns the inputs rewired."""
    made_by = {output: node for node in graph.node for output in node.output}
    rewired = 0
    for node in graph.node:
        if node.op_type not in RESIDUAL_OPS:
            continue
        for index, name in enumerate(node.input):
            dequantize = made_by.get(name)
            if dequantize is None or dequantize.op_type != 'DequantizeLinear':
                continue
            quantize = made_by.get(dequantize.input[0])
            if quantize is None or quantize.op_type != 'QuantizeLinear':
                continue  # a weight's DequantizeLinear reads an initializer, not an activation
            source = made_by.get(quantize.input[0])
            if source is not None and source.op_type in QUANTIZED_PRODUCERS:
                continue  # an int8 convolution's own output: an fp32 reader would break its int8 kernel (QLinearConv)
            node.input[index] = quantize.input[0]
            rewired += 1
    return rewired


def _chunk(count):
    """The largest chunk size up to :data:`CALIBRATION_CHUNK` that divides ``count`` (onnxruntime needs that)."""
    return max(size for size in range(1, min(CALIBRATION_CHUNK, count) + 1) if count % size == 0)


def quantize_generator(generator_path, output_path, encoder_path=None, calibration=CALIBRATION_FILE,
                       recipe=None):
    """Write the int8 (QDQ) version of the fp32 generator graph ``generator_path`` to ``output_path``, atomically.

    Args:
        generator_path (str): ``(lq, embedding) -> sr`` (or ``lq -> sr``) fp32 graph from ``export_split``.
        output_path (str): where the quantized graph goes.
        encoder_path (str, optional): the pair's encoder, which gives each calibration crop its embedding.
        calibration (str): the calibration ``.npz`` (see :func:`read_calibration`).
        recipe (Int8Recipe, optional): how; default :data:`DEFAULT_RECIPE`.

    Returns:
        str: ``output_path``.
    """
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    recipe = recipe or DEFAULT_RECIPE
    lq = read_calibration(calibration)
    inputs = [i.name for i in ort.InferenceSession(generator_path, providers=['CPUExecutionProvider']).get_inputs()]
    reader = _CalibrationReader(lq, inputs, encoder_path)
    folder = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as work:
        prepared = os.path.join(work, 'prepared.onnx')
        quant_pre_process(generator_path, prepared, skip_symbolic_shape=True)
        staged = os.path.join(work, 'int8.onnx')
        keep = fp32_nodes(prepared, recipe)
        quantize_static(prepared, staged, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(recipe.op_types) if recipe.op_types else None,
                        nodes_to_exclude=keep,
                        calibrate_method={'minmax': CalibrationMethod.MinMax,
                                          'percentile': CalibrationMethod.Percentile}[recipe.method],
                        extra_options={'CalibTensorRangeSymmetric': False, 'CalibPercentile': 99.999,
                                       # chunks of crops, for any method (the option's name says min-max)
                                       'CalibStridedMinMax': _chunk(len(reader))})
        if recipe.float_residuals:
            import onnx

            graph = onnx.load(staged)
            float_residual_inputs(graph.graph)
            onnx.save(graph, staged)
        os.replace(staged, output_path)  # same folder: atomic
    return output_path


def cached_int8_generator(onnx_dir, generator_path, encoder_path=None, calibration=CALIBRATION_FILE,
                          recipe=None):
    """The int8 generator for the fp32 pair in ``onnx_dir``, quantized on first use and reused afterwards.

    The file name carries the calibration file's sha256 and the recipe's key, so new calibration data or another
    recipe quantize again, and different ones can sit side by side; a ``.json`` beside it records how it was made.
    """
    from ddrsr.weights.manifest import sha256_file

    recipe = recipe or DEFAULT_RECIPE
    if not os.path.isfile(calibration):
        read_calibration(calibration)  # the clear error
    calibration_key = sha256_file(calibration)[:16]
    path = os.path.join(onnx_dir, f'generator.int8.{calibration_key}-{recipe.key()}.onnx')
    if not os.path.isfile(path):
        try:
            quantize_generator(generator_path, path, encoder_path, calibration, recipe)
            with open(path + '.json.tmp', 'w') as handle:
                json.dump({'calibration': os.path.basename(calibration), 'calibration_sha256_16': calibration_key,
                           'recipe': dataclasses.asdict(recipe), 'format': _QUANT_FORMAT}, handle)
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
