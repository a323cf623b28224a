"""Batched, device-agnostic degradation synthesis with kornia.

One function, :func:`degrade`, turns HR batches into LQ batches from per-sample parameters
(:class:`DegradationParams`). The parameters come from one of two places:

* :class:`~ddrsr.data.random_degradation.RandomDegradation`: ranges from an option file's ``degradation:``
  block (training).
* :func:`parse_spec`: fixed, named evaluation settings such as ``clean``, ``blur2``, ``noise20``,
  ``blur2_noise20`` or ``jpeg30`` (validation, ``ddrsr degrade``, analysis, benchmarks).

Steps, in order: blur (``blur_stage='hr'``) → resize by 1/scale → blur (``blur_stage='lr'``, the
paper's test sets) → [optional JPEG before the noise] → Gaussian/Poisson noise → 8-bit rounding → JPEG →
8-bit rounding.
All tensors are ``(B, 3, H, W)`` RGB in [0, 1]; randomness comes from an explicit ``torch.Generator``
on the same device as the images.
"""
import functools
import re
from dataclasses import dataclass
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from kornia.enhance import jpeg_codec_differentiable
from kornia.filters import fft_conv, filter2d

from ddrsr.utils.compile_fallback import compiled_or_eager
from ddrsr.errors import DDRSRError, check_image_batch

RESIZE_MODES = ('bicubic', 'bilinear', 'area')
#: What :func:`degrade` can do besides resizing, in :attr:`DegradationParams.steps`.
STEPS = frozenset({'blur', 'noise', 'poisson', 'jpeg', 'jpeg_pre'})
BLUR_STAGES = ('lr', 'hr')


@dataclass
class DegradationParams:
    """Per-sample degradation parameters for a batch of B images. All tensors have shape ``(B,)``.

    A zero ``sigma_x`` means no blur, a zero ``noise_sigma`` / ``poisson_scale`` means no noise of that
    kind, and a zero ``jpeg_quality`` means no JPEG. ``jpeg_quality_pre`` (optional, zero = none) is a
    JPEG round trip *before* the noise: a photo saved as JPEG, then noised (a scan, a re-capture) and
    saved again.

    ``steps`` is the set of steps (:data:`STEPS`) that any sample may take, known without reading the
    tensors (from the sampling probabilities or the spec). :func:`degrade` then skips the others without
    a data-dependent branch: no host sync, and one graph for ``torch.compile``. ``None`` means "read the
    tensors to find out" (one sync per step).
    """
    sigma_x: torch.Tensor
    sigma_y: torch.Tensor
    theta: torch.Tensor
    resize_modes: List[str]
    noise_sigma: torch.Tensor
    gray_noise: torch.Tensor
    poisson_scale: torch.Tensor
    jpeg_quality: torch.Tensor
    kernel_size: int = 15
    blur_stage: str = 'lr'
    jpeg_quality_pre: Optional[torch.Tensor] = None
    steps: Optional[frozenset] = None

    @property
    def batch_size(self):
        return len(self.resize_modes)

    def active_steps(self):
        """The steps :func:`degrade` runs: ``steps`` when set, else the ones some sample needs."""
        if self.steps is not None:
            return self.steps
        values = {'blur': self.sigma_x, 'noise': self.noise_sigma, 'poisson': self.poisson_scale,
                  'jpeg': self.jpeg_quality, 'jpeg_pre': self.jpeg_quality_pre}
        return frozenset(name for name, value in values.items() if value is not None and bool((value > 0).any()))


def gaussian_kernels(sigma_x, sigma_y, theta, kernel_size):
    """Anisotropic Gaussian kernels, one per sample, each summing to 1.

    Args:
        sigma_x, sigma_y (Tensor): ``(B,)`` standard deviations along the rotated axes, in pixels.
            A sample with ``sigma_x == 0`` gets the identity (delta) kernel.
        theta (Tensor): ``(B,)`` rotation angle in radians.
        kernel_size (int): odd side length k.

    Returns:
        Tensor: ``(B, k, k)``.
    """
    if kernel_size % 2 == 0:
        raise DDRSRError(f'blur kernel_size must be odd, got {kernel_size}')
    device, dtype = sigma_x.device, torch.float32
    half = kernel_size // 2
    axis = torch.arange(-half, half + 1, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(axis, axis, indexing='ij')
    cos, sin = torch.cos(theta.to(dtype))[:, None, None], torch.sin(theta.to(dtype))[:, None, None]
    # Coordinates in the kernel's rotated frame; sigma clamped so that disabled samples stay finite.
    u = cos * xx + sin * yy
    v = -sin * xx + cos * yy
    sx = sigma_x.to(dtype).clamp_min(1e-3)[:, None, None]
    sy = sigma_y.to(dtype).clamp_min(1e-3)[:, None, None]
    kernels = torch.exp(-0.5 * ((u / sx)**2 + (v / sy)**2))
    delta = torch.zeros_like(kernels)
    delta[:, half, half] = 1
    kernels = torch.where((sigma_x > 0)[:, None, None], kernels, delta)
    return kernels / kernels.sum(dim=(1, 2), keepdim=True)


def blur(images, params):
    """Convolve each image with its own kernel (reflect padding); ``sigma_x == 0`` gives the identity kernel.

    ``(B, C, H, W) -> (B, C, H, W)``.
    """
    return _blur(images, params.sigma_x, params.sigma_y, params.theta, params.kernel_size)


#: Smallest kernel for which the CPU blur goes through kornia's FFT convolution. A per-sample kernel is a
#: depthwise convolution, which the CPU runs far below its peak: for 15x15 kernels on a batch of 32 64-px LR
#: crops, ``fft_conv`` took 8 ms where ``filter2d`` took 25 (one thread). The two agree to 1e-6.
FFT_BLUR_MIN_KERNEL = 7


def _blur(images, sigma_x, sigma_y, theta, kernel_size):
    kernels = gaussian_kernels(sigma_x, sigma_y, theta, kernel_size).to(images.dtype)
    if images.device.type == 'cpu' and kernel_size >= FFT_BLUR_MIN_KERNEL:
        return fft_conv(images, kernels, border_type='reflect')
    return filter2d(images, kernels, border_type='reflect')


#: Largest side resized through :func:`resampling_matrix`. One matmul per side costs ``n_out`` multiply-adds
#: per input pixel, so it beats ``F.interpolate`` only on small images: for a batch of 32 256-px crops to
#: 64 px it took 8.5 ms where antialiased bicubic took 16 (one thread), and it resizes a batch of mixed
#: modes in one call instead of one call and one gather/scatter per mode.
MATRIX_RESIZE_MAX_SIDE = 256


def resampling_matrix(n_in, n_out, mode, device='cpu'):
    """The ``(n_in, n_out)`` matrix of a 1-D resize: ``x @ M`` resizes the last axis of ``x`` as ``F.interpolate``.

    It is ``F.interpolate`` applied to the identity, so it holds exactly the weights torch uses (antialiased
    for ``bicubic`` / ``bilinear``, box for ``area``), borders included. Cached per size, mode and device.

    >>> m = resampling_matrix(8, 2, 'area')
    >>> m[:, 0].tolist()
    [0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0]
    """
    return _resampling_matrix(int(n_in), int(n_out), mode, str(torch.device(device)))


@functools.lru_cache(maxsize=64)
def _resampling_matrix(n_in, n_out, mode, device):
    identity = torch.eye(n_in, device=device)[None, None]
    return _resize(identity, (n_in, n_out), mode)[0, 0].contiguous()


def downsample(images, scale, modes):
    """Resize by ``1/scale`` with a per-sample mode. ``(B, C, H, W) -> (B, C, H//scale, W//scale)``."""
    if scale == 1:
        return images
    height, width = images.shape[-2:]
    size = (height // scale, width // scale)
    present = list(dict.fromkeys(modes))  # in first-seen order, so the op sequence is reproducible
    if max(height, width) <= MATRIX_RESIZE_MAX_SIDE and images.dtype == torch.float32:
        # rows^T @ image @ columns with each sample's mode's matrices (cached on the device: no host-to-device
        # copy, no index tensor, no gather/scatter): one batched matmul per side for the whole batch.
        def matrices(n_in, n_out):
            return {mode: resampling_matrix(n_in, n_out, mode, images.device) for mode in present}

        columns, rows = matrices(width, size[1]), matrices(height, size[0])
        if len(present) == 1:
            return rows[present[0]].t() @ (images @ columns[present[0]])
        batch, channels = images.shape[:2]
        # One matrix per image plane: (B*C, W, w) and (B*C, H, h).
        columns = torch.stack([columns[mode] for mode in modes for _ in range(channels)])
        rows = columns if (height, size[0]) == (width, size[1]) else torch.stack(
            [rows[mode] for mode in modes for _ in range(channels)])
        out = torch.bmm(images.reshape(batch * channels, height, width), columns)
        return torch.bmm(rows.transpose(1, 2), out).reshape(batch, channels, *size)
    if len(present) == 1:
        return _resize(images, size, present[0])
    if images.device.type != 'cpu':
        # On an accelerator, resize the whole batch once per mode and select: an index tensor made from a
        # Python list would be a host-to-device copy that waits for the device.
        chosen = torch.tensor([present.index(m) for m in modes])
        chosen = (chosen.pin_memory() if images.device.type == 'cuda' else chosen).to(images.device, non_blocking=True)
        out = _resize(images, size, present[0])
        for number, mode in enumerate(present[1:], start=1):
            out = torch.where((chosen == number)[:, None, None, None], _resize(images, size, mode), out)
        return out
    out = images.new_empty(images.shape[0], images.shape[1], *size)
    for mode in present:
        # One index tensor per mode: indexing with a Python list dispatches an op per element.
        index = torch.tensor([i for i, m in enumerate(modes) if m == mode], device=images.device)
        out.index_copy_(0, index, _resize(images.index_select(0, index), size, mode))
    return out


def _resize(images, size, mode):
    if mode == 'area':
        return F.interpolate(images, size=size, mode='area')
    # antialias=True makes torch's bicubic behave like MATLAB/PIL imresize when shrinking.
    return F.interpolate(images, size=size, mode=mode, align_corners=False, antialias=True)


def add_gaussian_noise(images, params, generator):
    """Gaussian noise, colour or grey per sample, sigma in 0-255 units. Shapes are preserved."""
    sigma = (params.noise_sigma.to(images) / 255.0)[:, None, None, None]
    colour = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    # A grey sample takes its first channel's draw for all three: no second draw, and the same distribution,
    # since each sample uses either the colour or the grey noise, never both.
    grey = colour[:, :1].expand_as(colour)
    noise = torch.where(params.gray_noise.to(images.device)[:, None, None, None], grey, colour)
    return images + noise * sigma


def add_noise(images, params, generator, steps=None):
    """Gaussian (colour or grey, sigma in 0-255 units) and Poisson noise. Shapes are preserved.

    ``steps`` (see :attr:`DegradationParams.steps`) skips a kind of noise that no sample takes.
    """
    steps = params.active_steps() if steps is None else steps
    if 'noise' in steps:
        images = add_gaussian_noise(images, params, generator)
    if 'poisson' in steps:
        images = add_poisson_noise(images, params, generator)
    return images


def add_poisson_noise(images, params, generator):
    """Poisson (shot) noise on the samples with ``poisson_scale > 0``. Shapes are preserved."""
    # Shot noise of an 8-bit sensor: counts ~ Poisson(255 * x); ``scale`` multiplies its amplitude.
    scale = params.poisson_scale.to(images)
    if images.device.type != 'cpu':
        # On an accelerator, draw the whole batch: selecting the samples (nonzero) would wait for the device.
        counts = images.clamp(0, 1) * 255.0
        shot = torch.poisson(counts, generator=generator) / 255.0 - counts / 255.0
        return images + shot * scale[:, None, None, None]
    # On the CPU only the samples that get it are drawn: a Poisson draw costs ~20 Gaussian ones there,
    # and drawing the whole batch made this the slowest step of the pipeline (docs/BENCHMARKS.md).
    index = torch.nonzero(scale > 0).flatten()
    if index.numel() > 0:
        counts = images[index].clamp(0, 1) * 255.0
        shot = torch.poisson(counts, generator=generator) / 255.0 - counts / 255.0
        images = images.index_add(0, index, shot * scale[index][:, None, None, None])
    return images


def quantize(images):
    """Clamp to [0, 1] and round to 8-bit levels, as a saved image would be."""
    return torch.round(images.clamp(0, 1) * 255.0) / 255.0


def jpeg(images, quality):
    """JPEG round trip with kornia's codec; samples with ``quality == 0`` pass through unchanged.

    Every sample goes through the codec and the untouched ones are selected back with ``where``: no
    data-dependent indexing, so one call is one fixed graph (a few hundred small ops, which
    ``torch.compile`` fuses; see :func:`degrade`).

    Args:
        images (Tensor): ``(B, 3, H, W)`` in [0, 1], any H, W (kornia pads to a multiple of 16).
        quality (Tensor): ``(B,)`` JPEG quality in [1, 100], 0 for "no JPEG".
    """
    quality = quality.to(device=images.device, dtype=images.dtype)
    coded = jpeg_codec_differentiable(images, quality.clamp_min(1))
    return torch.where((quality > 0)[:, None, None, None], coded, images)


def _jpeg_quantized(images, quality):
    return quantize(jpeg(images, quality))


def degrade(hr: torch.Tensor, params: DegradationParams, scale: int, generator: Optional[torch.Generator] = None,
            compiled: bool = False) -> torch.Tensor:
    """Synthesize a low-quality batch from a high-resolution batch.

    Args:
        hr (Tensor): ``(B, 3, H, W)`` RGB in [0, 1]; H and W should be multiples of ``scale``.
        params (DegradationParams): per-sample parameters for B images.
        scale (int): SR scale; the output is ``(B, 3, H // scale, W // scale)``.
        generator (torch.Generator, optional): on ``hr.device``; makes the noise reproducible.
        compiled (bool): run the blur and the JPEG codec through ``torch.compile`` (one graph per shape,
            cached; CUDA graphs on CUDA). Fused float ops may flip an 8-bit rounding: at most one level,
            on a tiny share of pixels. Falls back to eager, with one warning, where compiling fails.

    Returns:
        Tensor: ``(B, 3, H // scale, W // scale)`` in [0, 1], on 8-bit levels.

    Raises:
        DDRSRError: ``hr`` is not a float ``(B, 3, H, W)`` tensor, or ``params`` is for another batch size.

    >>> hr = torch.rand(2, 3, 32, 32)
    >>> tuple(degrade(hr, parse_spec('blur2_noise20').params(2), scale=4).shape)
    (2, 3, 8, 8)
    """
    check_image_batch(hr, 'degrade: hr')
    if params.batch_size != hr.shape[0]:
        raise DDRSRError(f'{params.batch_size} degradation parameter sets for a batch of {hr.shape[0]}')
    steps = params.active_steps()
    blur_fn = compiled_or_eager(_blur, hr.device) if compiled else _blur
    jpeg_fn = compiled_or_eager(_jpeg_quantized, hr.device) if compiled else _jpeg_quantized
    blur_args = (params.sigma_x, params.sigma_y, params.theta, params.kernel_size)
    out = hr
    if 'blur' in steps and params.blur_stage == 'hr':
        out = blur_fn(out, *blur_args)
    out = downsample(out, scale, params.resize_modes)
    if 'blur' in steps and params.blur_stage == 'lr':
        out = blur_fn(out, *blur_args)
    if 'jpeg_pre' in steps:
        out = jpeg_fn(quantize(out), params.jpeg_quality_pre)
    out = quantize(add_noise(out, params, generator, steps))
    if 'jpeg' in steps:
        out = jpeg_fn(out, params.jpeg_quality)
    return out


# ----------------------------------------------------------------------------------------------------
# Named, deterministic evaluation specs
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DegradationSpec:
    """A fixed degradation, identical for every image. Built by :func:`parse_spec`."""
    name: str
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 0
    kernel_size: int = 15
    resize_mode: str = 'bicubic'

    def params(self, batch_size, device='cpu'):
        """The same parameters repeated for ``batch_size`` samples (isotropic blur on the LR)."""
        def full(value):
            return torch.full((batch_size,), float(value), device=device)

        return DegradationParams(
            sigma_x=full(self.blur_sigma), sigma_y=full(self.blur_sigma), theta=full(0),
            resize_modes=[self.resize_mode] * batch_size, noise_sigma=full(self.noise_sigma),
            gray_noise=torch.zeros(batch_size, dtype=torch.bool, device=device), poisson_scale=full(0),
            jpeg_quality=full(self.jpeg_quality), kernel_size=self.kernel_size, blur_stage='lr',
            steps=frozenset(name for name, value in (('blur', self.blur_sigma), ('noise', self.noise_sigma),
                                                     ('jpeg', self.jpeg_quality)) if value > 0))


# The paper's test sets; any combination of the tokens also parses (e.g. ``blur2_jpeg50``).
from ddrsr.defaults import NAMED_SPECS  # noqa: E402
_TOKEN = re.compile(r'^(blur|noise|jpeg)(\d+(?:\.\d+)?)$')


def parse_spec(name: Union[str, 'DegradationSpec']) -> 'DegradationSpec':
    """Turn a spec name such as ``blur2_noise20`` into a :class:`DegradationSpec`.

    Tokens: ``clean``; ``blur<sigma>`` (Gaussian blur of width sigma on the LR, 15x15 kernel);
    ``noise<sigma>`` (Gaussian colour noise, 0-255 units); ``jpeg<quality>``. Joined with ``_``.
    """
    if isinstance(name, DegradationSpec):
        return name
    if not isinstance(name, str) or not name:
        raise DDRSRError(f'degradation spec must be a name such as {", ".join(NAMED_SPECS)}; got {name!r}')
    if name == 'clean':
        return DegradationSpec('clean')
    values = {}
    for token in name.split('_'):
        match = _TOKEN.match(token)
        if match is None or match.group(1) in values:
            raise DDRSRError(f'unknown degradation spec {name!r} (bad part {token!r}); use names like '
                             f'{", ".join(NAMED_SPECS)}, or combine blur<sigma>, noise<sigma>, jpeg<quality> with _')
        values[match.group(1)] = float(match.group(2))
    quality = values.get('jpeg', 0)
    if quality and not 1 <= quality <= 100:
        raise DDRSRError(f'JPEG quality in spec {name!r} must be in 1..100')
    return DegradationSpec(name, blur_sigma=values.get('blur', 0.0), noise_sigma=values.get('noise', 0.0),
                           jpeg_quality=int(quality))


def degrade_with_spec(hr: torch.Tensor, spec: Union[str, 'DegradationSpec'], scale: int, seed: int = 0) -> torch.Tensor:
    """Apply a named spec deterministically: same input, spec and seed give the same output on a device.

    ``hr`` is a float ``(B, 3, H, W)`` tensor in [0, 1] (DDRSRError otherwise); returns
    ``(B, 3, H // scale, W // scale)`` on ``hr``'s device.

    >>> hr = torch.rand(2, 3, 32, 32)
    >>> lq = degrade_with_spec(hr, 'blur2_noise20', scale=4, seed=0)
    >>> tuple(lq.shape), torch.equal(lq, degrade_with_spec(hr, 'blur2_noise20', scale=4, seed=0))
    ((2, 3, 8, 8), True)
    """
    check_image_batch(hr, 'degrade_with_spec: hr')
    spec = parse_spec(spec)
    generator = torch.Generator(device=hr.device).manual_seed(int(seed))
    return degrade(hr, spec.params(hr.shape[0], hr.device), scale, generator)


__all__ = ['DegradationParams', 'DegradationSpec', 'NAMED_SPECS', 'degrade',
           'degrade_with_spec', 'parse_spec', 'gaussian_kernels', 'blur', 'downsample', 'add_noise', 'jpeg',
           'quantize']
