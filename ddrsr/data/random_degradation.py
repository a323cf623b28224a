"""Random degradations for training: per-sample parameters drawn from an option file's ``degradation:`` ranges.

:class:`RandomDegradation` samples :class:`~ddrsr.data.degradations.DegradationParams` and runs
:func:`~ddrsr.data.degradations.degrade` on them.
"""
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import torch

from ddrsr.data.degradations import BLUR_STAGES, RESIZE_MODES, DegradationParams, degrade
from ddrsr.errors import DDRSRError, check_image_batch, unknown_names_error


def _host_generator(generator):
    """A CPU generator that follows ``generator``'s stream without reading anything from its device.

    A CPU generator is used as it is. For another device, the seed and the (Philox) offset are host-side
    values, so a new CPU generator seeded from both differs from call to call, as the device stream does.
    """
    if generator.device.type == 'cpu':
        return generator
    try:
        offset = generator.get_offset()
    except RuntimeError:  # a device generator without an offset
        offset = 0
    return torch.Generator().manual_seed((generator.initial_seed() * 1_000_003 + offset) % 2**63)


@dataclass
class RandomDegradation:
    """Samples per-sample parameters from ranges (the ``degradation:`` block of an option file).

    Probabilities decide whether a step happens for a sample; ranges are ``[low, high]`` and are
    sampled uniformly (JPEG quality as an integer).
    """
    blur_stage: str = 'lr'
    blur_prob: float = 0.0
    kernel_size: int = 15
    blur_sigma: Sequence[float] = (0.2, 4.0)
    aniso_prob: float = 0.0
    resize_modes: Sequence[str] = ('bicubic', )
    noise_prob: float = 0.0
    noise_sigma: Sequence[float] = (1.0, 30.0)
    gray_noise_prob: float = 0.0
    poisson_prob: float = 0.0
    poisson_scale: Sequence[float] = (0.05, 1.0)
    jpeg_prob: float = 0.0
    jpeg_quality: Sequence[int] = (30, 95)
    jpeg_before_noise_prob: float = 0.0  # an extra JPEG before the noise (then the usual one after it)
    clean_prob: float = 0.0  # samples left undegraded (bicubic resize only), so the model learns to leave them
    compile: bool = False  # torch.compile the blur and the JPEG codec (see degrade)

    @classmethod
    def from_options(cls, options: Optional[Mapping[str, Any]]) -> 'RandomDegradation':
        """Build from an option-file dict; unknown keys give a DDRSRError naming the key."""
        options = dict(options or {})
        known = list(cls.__dataclass_fields__)
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise unknown_names_error('key(s)', unknown, known, where='degradation options')
        self = cls(**options)
        self.validate()
        return self

    def validate(self) -> None:
        if self.blur_stage not in BLUR_STAGES:
            raise DDRSRError(f'degradation blur_stage must be one of {BLUR_STAGES}, got {self.blur_stage!r}')
        bad = [m for m in self.resize_modes if m not in RESIZE_MODES]
        if bad or not self.resize_modes:
            raise DDRSRError(f'degradation resize_modes must be a non-empty subset of {RESIZE_MODES}, got '
                             f'{list(self.resize_modes)}')
        for name in ('blur_sigma', 'noise_sigma', 'poisson_scale', 'jpeg_quality'):
            low, high = getattr(self, name)
            if low > high or low < 0:
                raise DDRSRError(f'degradation {name} must be [low, high] with 0 <= low <= high, got '
                                 f'{list(getattr(self, name))}')
        low, high = self.jpeg_quality
        if self.jpeg_prob > 0 and not (1 <= low <= high <= 100):
            raise DDRSRError(f'degradation jpeg_quality must lie in [1, 100], got {list(self.jpeg_quality)}')
        for name in ('blur_prob', 'aniso_prob', 'noise_prob', 'gray_noise_prob', 'poisson_prob', 'jpeg_prob',
                     'jpeg_before_noise_prob', 'clean_prob'):
            if not 0 <= getattr(self, name) <= 1:
                raise DDRSRError(f'degradation {name} must be a probability in [0, 1]')

    def sample(self, batch_size: int, generator: torch.Generator,
               device: Union[str, torch.device] = 'cpu') -> DegradationParams:
        """Draw :class:`DegradationParams` for ``batch_size`` samples with ``generator`` (on ``device``)."""
        def uniform(low_high):
            low, high = low_high
            return low + (high - low) * torch.rand(batch_size, generator=generator, device=device)

        def coin(prob):
            return torch.rand(batch_size, generator=generator, device=device) < prob

        zeros = torch.zeros(batch_size, device=device)
        blurred = coin(self.blur_prob)
        sigma_x = torch.where(blurred, uniform(self.blur_sigma), zeros)
        aniso = coin(self.aniso_prob)
        sigma_y = torch.where(aniso, uniform(self.blur_sigma), sigma_x)
        sigma_y = torch.where(blurred, sigma_y, zeros)
        theta = torch.where(aniso, uniform((0.0, math.pi)), zeros)
        # Resize modes are Python strings, read on the host: draw them there, so that reading them does not wait
        # for the device.
        host = _host_generator(generator)
        mode_index = torch.randint(len(self.resize_modes), (batch_size, ), generator=host)
        modes = [self.resize_modes[i] for i in mode_index.tolist()]
        noise_sigma = torch.where(coin(self.noise_prob), uniform(self.noise_sigma), zeros)
        gray = coin(self.gray_noise_prob)
        poisson = torch.where(coin(self.poisson_prob), uniform(self.poisson_scale), zeros)
        quality_range = (self.jpeg_quality[0], self.jpeg_quality[1] + 1 - 1e-6)
        quality = torch.where(coin(self.jpeg_prob), torch.floor(uniform(quality_range)), zeros)
        quality_pre = None
        if self.jpeg_before_noise_prob > 0:
            quality_pre = torch.where(coin(self.jpeg_before_noise_prob), torch.floor(uniform(quality_range)), zeros)
        if self.clean_prob > 0:
            # Drawn last (on the host generator), so that it leaves every other draw of a seeded run unchanged.
            clean_on_host = torch.rand(batch_size, generator=host) < self.clean_prob
            degraded = ~clean_on_host.to(device)
            sigma_x, sigma_y, noise_sigma, poisson, quality = (
                torch.where(degraded, value, zeros) for value in (sigma_x, sigma_y, noise_sigma, poisson, quality))
            if quality_pre is not None:
                quality_pre = torch.where(degraded, quality_pre, zeros)
            modes = ['bicubic' if clean else mode for mode, clean in zip(modes, clean_on_host.tolist())]
        probabilities = {'blur': self.blur_prob, 'noise': self.noise_prob, 'poisson': self.poisson_prob,
                         'jpeg': self.jpeg_prob, 'jpeg_pre': self.jpeg_before_noise_prob}
        return DegradationParams(sigma_x, sigma_y, theta, modes, noise_sigma, gray, poisson, quality,
                                 kernel_size=self.kernel_size, blur_stage=self.blur_stage,
                                 jpeg_quality_pre=quality_pre,
                                 steps=frozenset(name for name, prob in probabilities.items() if prob > 0))

    def __call__(self, hr: torch.Tensor, scale: int, generator: torch.Generator) -> torch.Tensor:
        """Degrade ``hr`` with freshly sampled parameters: float ``(B, 3, H, W)`` in [0, 1] ->
        ``(B, 3, H // scale, W // scale)``. ``generator`` lives on ``hr.device``. DDRSRError for another shape."""
        check_image_batch(hr, 'RandomDegradation: hr')
        return degrade(hr, self.sample(hr.shape[0], generator, hr.device), scale, generator, compiled=self.compile)


__all__ = ['RandomDegradation']
