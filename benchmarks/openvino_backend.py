"""OpenVINO on ddrsr's exported graphs, for the precision section's engine comparison (issue 23).

OpenVINO is not part of ddrsr's stack (torch, onnxruntime); it is compared here because it is the other maintained
CPU engine with bf16 and int8 kernels. It reads the same files the onnx backend runs: the fp32 pair from
``cached_split_pair`` and the int8 (QDQ) generator from ``cached_int8_generator``, so the comparison is of engines,
not of graphs or quantization recipes. ``pip install openvino`` enables it; without it the rows say so.
"""
import numpy as np
import torch

#: The OpenVINO precisions compared: the fp32 graph in fp32 and in bf16 (OpenVINO's ``INFERENCE_PRECISION_HINT``),
#: and the int8 QDQ graph (OpenVINO turns its Q/DQ pairs into int8 kernels).
OPENVINO_PRECISIONS = ('fp32', 'bf16', 'int8')


def openvino_version():
    """The installed OpenVINO's version, or None."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.__version__.split('-')[0]


class OpenVINOBackend:
    """Encoder and generator compiled by OpenVINO for the CPU; the interface of
    :class:`ddrsr.inference.onnx_backend.OnnxBackend` (``encode``, ``__call__``), so an ``Upsampler`` can run it.

    Args:
        encoder_path (str | None): ``lq -> embedding`` ONNX graph (always compiled in fp32: it runs once per photo).
        generator_path (str): ``(lq, embedding) -> sr`` ONNX graph (fp32 or QDQ int8).
        precision (str): ``'fp32'`` or ``'bf16'``, OpenVINO's inference precision for the generator.
        threads (int, optional): ``INFERENCE_NUM_THREADS``.
    """

    half = False

    def __init__(self, encoder_path, generator_path, precision='fp32', threads=None):
        import openvino

        core = openvino.Core()
        config = {'PERFORMANCE_HINT': 'LATENCY'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = int(threads)
        self.encoder = None
        if encoder_path is not None:
            self.encoder = core.compile_model(encoder_path, 'CPU', {**config, 'INFERENCE_PRECISION_HINT': 'f32'})
        self.generator = core.compile_model(
            generator_path, 'CPU', {**config, 'INFERENCE_PRECISION_HINT': 'bf16' if precision == 'bf16' else 'f32'})

    def encode(self, lq):
        """``(1, 3, h, w)`` CPU tensor -> embedding ``(1, D)`` numpy float32."""
        return np.asarray(self.encoder(np.ascontiguousarray(lq.numpy()))[0])

    def __call__(self, tile, embedding):
        """``(1, 3, h, w)`` CPU tensor -> ``(1, 3, s*h, s*w)`` CPU float32 tensor."""
        inputs = [np.ascontiguousarray(tile.numpy())] + ([embedding] if embedding is not None else [])
        return torch.from_numpy(np.array(self.generator(inputs)[0], dtype=np.float32))

    def to_fp32(self):
        """Nothing to do: the graphs are fp32 (or int8, which has no fp16 overflow to fall back from)."""
