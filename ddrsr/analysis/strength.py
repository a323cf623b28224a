"""What ``--strength`` does, in numbers: PSNR per spec and strength, the noise left in the output, and the two
targets (residual noise falls as strength rises; strength 0 on clean photos is within 0.2 dB of a clean-trained
RRDB). ``scripts/control_report.py`` runs it on the validation photos and words it as docs/CONTROL.md.

Images are ``(1, 3, H, W)`` tensors in [0, 1]; PSNR is on Y with a ``scale``-pixel border cut, as in
``ddrsr evaluate``.
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F

from ddrsr.evaluation import psnr_y

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
#: The strength-0 PSNR on clean photos may be this much below the clean-trained baseline's (dB).
CLEAN_TOLERANCE_DB = 0.2


def spec_pairs(hr, meta_info, spec, crop_size, scale=4, seed=0):
    """``[(lq (1, 3, h, w), gt (1, 3, H, W))]`` exactly as ``ddrsr evaluate`` builds them."""
    from ddrsr.data.spec_paired_dataset import SpecPairedDataset

    dataset = SpecPairedDataset({'dataroot_gt': hr, 'meta_info': meta_info, 'spec': spec, 'scale': scale,
                                 'crop_size': crop_size, 'seed': seed})
    return [(item['lq'][None], item['gt'][None]) for item in (dataset[i] for i in range(len(dataset)))]


def luma(image):
    """Y (0-255, BT.601 as in BasicSR) of ``(1, 3, H, W)`` RGB in [0, 1]: ``(H, W)`` float64."""
    r, g, b = image[0].double()
    return 16.0 + 65.481 * r + 128.553 * g + 24.966 * b


def residual_noise_std(sr, gt, scale=4, sigma=2.0):
    """Std (0-255, Y) of the high-frequency part of ``sr - gt``: the residual minus its Gaussian blur.

    >>> residual_noise_std(torch.full((1, 3, 32, 32), 0.5), torch.full((1, 3, 32, 32), 0.5))
    0.0
    """
    residual = (luma(sr.clamp(0, 1)) - luma(gt))[None, None]
    radius = int(3 * sigma)
    axis = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (axis / sigma) ** 2)
    kernel = kernel / kernel.sum()
    blurred = F.conv2d(F.pad(residual, (radius,) * 4, mode='reflect'), (kernel[:, None] * kernel[None])[None, None])
    high = (residual - blurred)[0, 0, scale:-scale, scale:-scale]
    return float(high.std())


def noise_transfer_std(model, noisy, clean, embedding, scale=4):
    """Std (0-255, Y, border cut) of ``model(noisy) - model(clean)`` under one ``embedding``: the output's noise."""
    difference = luma(model(noisy, embedding=embedding).clamp(0, 1)) - luma(model(clean, embedding=embedding).clamp(0, 1))
    return float(difference[scale:-scale, scale:-scale].std())


def _psnr(sr, gt, scale):
    return psnr_y(sr, gt, scale)[0]


def measure(model, baseline, pairs_by_spec, strengths=STRENGTHS, scale=4, progress=True):
    """PSNR per spec and strength, the noise left on noise20 inputs, and the baseline's and bicubic's PSNR.

    Args:
        model: a DDR network with ``encode``, ``steer`` and ``forward(lq, embedding=...)``.
        baseline: a plain SR network to compare strength 0 with on clean photos.
        pairs_by_spec (dict): ``{spec: [(lq, gt)]}`` (:func:`spec_pairs`); ``noise20`` needs ``clean`` too, with
            the same photos in the same order (its noise-free twin).

    Returns:
        tuple: ``table`` (``{spec: {strength: mean PSNR}}``), ``noise`` (``{strength: (noise transfer std,
        high-frequency std of SR - HR, blind noise estimate of SR)}`` on noise20, empty without it), ``base`` and
        ``bicubic`` (``{spec: mean PSNR}``).
    """
    from ddrsr.inspection.noise import sigma_wavelet_mad

    table = {spec: {} for spec in pairs_by_spec}
    noise = {}
    with torch.no_grad():
        for spec, pairs in pairs_by_spec.items():
            for strength in strengths:
                values, transfer, residuals, blind = [], [], [], []
                for index, (lq, gt) in enumerate(pairs):
                    embedding = model.steer(model.encode(lq), strength)
                    sr = model(lq, embedding=embedding)
                    values.append(_psnr(sr, gt, scale))
                    if spec == 'noise20':
                        transfer.append(noise_transfer_std(model, lq, pairs_by_spec['clean'][index][0], embedding, scale))
                        residuals.append(residual_noise_std(sr, gt, scale))
                        blind.append(sigma_wavelet_mad(sr[0].clamp(0, 1).permute(1, 2, 0).numpy()))
                table[spec][strength] = float(np.mean(values))
                if spec == 'noise20':
                    noise[strength] = (float(np.mean(transfer)), float(np.mean(residuals)), float(np.mean(blind)))
            if progress:
                print(f'control: {spec}: ' + ', '.join(f'{s:g}: {v:.2f}' for s, v in table[spec].items()),
                      file=sys.stderr)
        base = {spec: float(np.mean([_psnr(baseline(lq), gt, scale) for lq, gt in pairs]))
                for spec, pairs in pairs_by_spec.items()}
        bicubic = {spec: float(np.mean([_psnr(F.interpolate(lq, scale_factor=scale, mode='bicubic', align_corners=False),
                                               gt, scale) for lq, gt in pairs])) for spec, pairs in pairs_by_spec.items()}
    return table, noise, base, bicubic


def targets(table, noise, base, tolerance=CLEAN_TOLERANCE_DB):
    """The two targets, from :func:`measure`'s numbers.

    Returns:
        dict: ``noise_falls`` (the residual noise std falls strictly from each strength to the next),
        ``residual`` (that std per strength, in order), ``clean_gap`` (strength-0 PSNR on clean minus the
        baseline's, dB) and ``clean_met`` (``clean_gap >= -tolerance``; above the baseline counts as met).

    >>> targets({'clean': {0.0: 30.1}}, {0.0: (3.0, 0, 0), 1.0: (2.0, 0, 0)}, {'clean': 30.2})['clean_met']
    True
    """
    residual = [noise[s][0] for s in sorted(noise)]
    gap = table['clean'][0.0] - base['clean']
    return {'noise_falls': all(b < a for a, b in zip(residual, residual[1:])), 'residual': residual,
            'clean_gap': gap, 'clean_met': gap >= -tolerance}
