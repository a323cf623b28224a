"""The torch inference backend and its precision: fp32, fp16 (CUDA) or bf16 (autocast, CPUs with native bf16).

(int8 is resolved here too, but runs on the ONNX backend: ``ddrsr.inference.quantize``.)

``auto`` is resolved once per Upsampler by :func:`resolve_precision`: fp16 on CUDA (measured within 1/255 of fp32,
docs/DESIGN.md), and on the CPU the precision the model's descriptor declares (``LoadedModel.cpu_precision``, chosen
per model from the measured speed and quality loss in docs/BENCHMARKS_PRECISION.md) when the CPU has native bf16 units
(AVX512-BF16 or AMX, as oneDNN reports them), else fp32.
"""
import copy
import functools

import torch

from ddrsr.errors import DDRSRError

from ddrsr.defaults import FULL_PRECISION_ENDS, PRECISIONS  # noqa: E402


@functools.lru_cache(maxsize=None)
def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 units (AVX512-BF16 or AMX), as torch's CPU probe reports them.

    (oneDNN's own ``_is_mkldnn_bf16_supported`` also says yes on plain AVX-512 CPUs, where bf16 is emulated and
    slower than fp32.)
    """
    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return bool(native and torch.backends.mkldnn.is_available())
    except (AttributeError, RuntimeError):  # a torch build without the probes
        return False


def cpu_abilities() -> dict:
    """What this CPU offers inference, read from torch/oneDNN (for benchmark reports)."""
    return {'capability': torch.backends.cpu.get_cpu_capability(), 'bf16': cpu_supports_bf16(),
            'threads': torch.get_num_threads()}


def resolve_precision(precision: str, device: torch.device, cpu_preference: str = 'fp32',
                      supports_half: bool = True) -> str:
    """The precision that runs: ``precision``, or for ``'auto'`` the device's best (see the module docstring).

    ``cpu_preference`` and ``supports_half`` are what the model's descriptor declares (``LoadedModel.cpu_precision``
    and ``LoadedModel.supports_half``): ``auto`` on CUDA runs fp32 for a model that does not support fp16.

    Raises:
        DDRSRError: an unknown precision, bf16 on a CPU without native bf16, int8 off the CPU, or fp16 for a
            model that does not support it. (fp16 runs on the CPU, slowly:
            torch has no fast fp16 CPU kernels; it is kept for testing the NaN fallback.)

    >>> resolve_precision('auto', torch.device('cuda')), resolve_precision('fp32', torch.device('cpu'))
    ('fp16', 'fp32')
    """
    if precision not in PRECISIONS:
        raise DDRSRError(f'unknown precision {precision!r}; use {", ".join(PRECISIONS)}')
    device = torch.device(device)
    if precision == 'auto':
        if device.type == 'cuda':
            return 'fp16' if supports_half else 'fp32'
        if cpu_preference == 'int8':  # onnxruntime's int8 kernels run on any x86-64 CPU (VNNI makes them faster)
            return 'int8'
        return 'bf16' if cpu_preference == 'bf16' and cpu_supports_bf16() else 'fp32'
    if precision == 'fp16' and not supports_half:
        raise DDRSRError('this model does not support fp16 (its descriptor says supports_half=False); '
                         'use --precision fp32 (or auto)')
    if precision == 'int8' and device.type != 'cpu':
        raise DDRSRError('int8 runs on the CPU (onnxruntime\'s quantized graph); on CUDA use --precision fp16 or auto')
    if device.type == 'cpu' and precision == 'bf16' and not cpu_supports_bf16():
        raise DDRSRError('this CPU has no native bf16 units (AVX512-BF16 or AMX), where bf16 would be slower than '
                         'fp32; use --precision fp32 (or auto)')
    return precision


class NonFinite(Exception):
    """fp16 produced NaN or Inf: the photo is redone in fp32."""


_NonFinite = NonFinite  # the name it had in ddrsr.inference.upsampler


class TorchBackend:
    """Runs an ``nn.Module`` on ``device`` in ``precision``; inputs and outputs are CPU float32 tensors.

    In fp16 the network runs as a half copy while the fp32 original stays on the CPU: casting the half
    copy back would not undo weights that overflowed to Inf, and the fp32 fallback must be exact. In bf16 the
    fp32 weights stay and the forward runs under ``torch.autocast`` (convolutions in bf16, accumulation in fp32),
    except the ``fp32_ends`` convolutions at the start and at the end, which read and write the pixels and stay
    fp32 (``ddrsr.inference.precision_ends``; the model's descriptor says how many, ``LoadedModel.bf16_fp32_ends``);
    bf16 has fp32's range, so it needs no NaN fallback.

    With ``channels_last`` the weights and every input are NHWC in memory. oneDNN then runs the
    convolutions without reordering each activation (1.15x faster for the lite RRDBNet-DDR on the CPU in
    docs/BENCHMARKS.md), and cuDNN uses its NHWC tensor-core kernels in fp16. The output
    comes back NHWC too, so ``output[0].permute(1, 2, 0)`` is an (H, W, C) array without a copy.
    """

    def __init__(self, model, device, precision='fp32', channels_last=True, fp32_ends=FULL_PRECISION_ENDS):
        if isinstance(precision, bool):  # the older signature: TorchBackend(model, device, half)
            precision = 'fp16' if precision else 'fp32'
        if precision not in PRECISIONS[1:]:
            raise DDRSRError(f'TorchBackend needs a resolved precision (fp32, bf16, fp16), got {precision!r}')
        self.device, self.precision = device, precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.eval().requires_grad_(False)
        if precision == 'fp16':
            self._fp32 = model
            self.model = copy.deepcopy(model).to(device).half().to(memory_format=self.memory_format)
        else:
            self._fp32 = None
            self.model = model.to(device).to(memory_format=self.memory_format)
        if precision == 'bf16' and any(fp32_ends):  # pixel-facing convolutions stay fp32 (precision_ends)
            from ddrsr.inference.precision_ends import end_convolutions, keep_fp32_under_autocast

            keep_fp32_under_autocast(end_convolutions(self.model, tuple(fp32_ends)))

    @property
    def half(self):
        return self.precision == 'fp16'

    @property
    def dtype(self):
        """The dtype inputs are sent in (bf16 autocast takes fp32 inputs)."""
        return torch.float16 if self.half else torch.float32

    def _autocast(self):
        enabled = self.precision == 'bf16'
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def to_fp32(self):
        if self.half:
            self.model = self._fp32.to(self.device).to(memory_format=self.memory_format)
            self._fp32 = None
        self.precision = 'fp32'

    def encode(self, lq):
        """``(1, 3, h, w)`` CPU -> embedding ``(1, D)`` on the device (fp16 in fp16, else fp32).

        In bf16 the encoder runs in fp32, as it does for int8 (``ddrsr.inference.quantize``): it runs once per
        photo, so it costs little, and the embedding (strength, ``ddrsr inspect``) does not move with the precision.
        """
        with torch.autocast(self.device.type, enabled=False):
            e = self.model.encode(lq.to(self.device, self.dtype).contiguous(memory_format=self.memory_format))
        if self.half and not torch.isfinite(e).all():
            raise NonFinite
        return e if self.half else e.float()

    def __call__(self, tile, embedding):
        """``(1, 3, h, w)`` CPU -> ``(1, 3, s*h, s*w)`` CPU float32."""
        x = tile.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        with self._autocast():
            out = self.model(x) if embedding is None else self.model(x, embedding=embedding)
        if self.half and not torch.isfinite(out).all():
            raise NonFinite
        return out.float().cpu()
