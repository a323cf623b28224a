"""BRISQUE features (Mittal, Moorthy & Bovik 2012): 36 statistics of mean-subtracted contrast-normalised
(MSCN) luminance, the classic hand-made baseline for distortion identification.

Per scale (the image, then the image halved), 18 numbers:

* a generalized Gaussian (GGD) fit to the MSCN coefficients: shape α and variance σ² (2);
* an asymmetric GGD (AGGD) fit to the products of horizontally, vertically, and the two diagonally
  neighbouring MSCN coefficients: shape ν, mean η, left and right variances σl², σr² (4 x 4).

Both fits use the moment matching of the reference MATLAB code (``estimateggdparam``,
``estimateaggdparam``; shape searched on a 0.2:0.001:10 grid). Unlike the MATLAB ``circshift``, the
neighbour products do not wrap around the image border, and the second scale is a 2x2 box
average instead of MATLAB's bicubic ``imresize``. PyPI offers ``brisque``, ``pybrisque`` and
similar packages, but they output a quality score from their own SVR, not the feature vector, so the
features are computed here with numpy and scipy.
"""
import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import gamma as gamma_fn

FEATURE_NAMES = tuple(
    f'{name}_s{scale}' for scale in (1, 2)
    for name in ('ggd_alpha', 'ggd_var', *(f'{pair}_{stat}' for pair in ('h', 'v', 'd1', 'd2')
                                          for stat in ('nu', 'mean', 'var_left', 'var_right'))))
_SHAPES = np.arange(0.2, 10.0 + 1e-9, 0.001)
_GGD_RATIO = gamma_fn(1 / _SHAPES) * gamma_fn(3 / _SHAPES) / gamma_fn(2 / _SHAPES) ** 2
_AGGD_RATIO = gamma_fn(2 / _SHAPES) ** 2 / (gamma_fn(1 / _SHAPES) * gamma_fn(3 / _SHAPES))
_C = 1.0  # keeps MSCN finite on flat regions (8-bit luminance units, as in the reference code)


def luminance(image):
    """``(H, W, 3)`` uint8 RGB (or ``(H, W)`` grey) -> ``(H, W)`` float64 luma in 8-bit units (BT.601)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        return image
    return image @ np.array([0.299, 0.587, 0.114])


def mscn(luma, sigma=7 / 6):
    """MSCN coefficients ``(I - μ) / (σ + C)`` with a Gaussian window (std 7/6, truncated to 7x7)."""
    truncate = 3 / sigma  # 7x7 window, as in the reference fspecial('gaussian', 7, 7/6)
    mu = gaussian_filter(luma, sigma, mode='nearest', truncate=truncate)
    var = gaussian_filter(luma * luma, sigma, mode='nearest', truncate=truncate) - mu * mu
    return (luma - mu) / (np.sqrt(np.abs(var)) + _C)


def fit_ggd(values):
    """``(α, σ²)`` of a zero-mean generalized Gaussian by moment matching (``estimateggdparam``)."""
    values = np.ravel(values)
    variance = float(np.mean(values ** 2))
    mean_abs = float(np.mean(np.abs(values)))
    if mean_abs == 0.0:
        return float(_SHAPES[-1]), variance
    rho = variance / mean_abs ** 2
    return float(_SHAPES[np.argmin(np.abs(rho - _GGD_RATIO))]), variance


def fit_aggd(values):
    """``(ν, η, σl², σr²)`` of an asymmetric generalized Gaussian (``estimateaggdparam``)."""
    values = np.ravel(values)
    left, right = values[values < 0], values[values > 0]
    left_std = float(np.sqrt(np.mean(left ** 2))) if len(left) else 0.0
    right_std = float(np.sqrt(np.mean(right ** 2))) if len(right) else 0.0
    mean_square = float(np.mean(values ** 2))
    if left_std == 0.0 or right_std == 0.0 or mean_square == 0.0:
        return float(_SHAPES[-1]), 0.0, left_std ** 2, right_std ** 2
    ratio = left_std / right_std
    r_hat = float(np.mean(np.abs(values))) ** 2 / mean_square
    r_norm = r_hat * (ratio ** 3 + 1) * (ratio + 1) / (ratio ** 2 + 1) ** 2
    nu = float(_SHAPES[np.argmin((_AGGD_RATIO - r_norm) ** 2)])
    eta = (right_std - left_std) * gamma_fn(2 / nu) / gamma_fn(1 / nu) * np.sqrt(gamma_fn(1 / nu) / gamma_fn(3 / nu))
    return nu, float(eta), left_std ** 2, right_std ** 2


def _scale_features(luma):
    coefficients = mscn(luma)
    features = list(fit_ggd(coefficients))
    # Neighbour pairs: horizontal, vertical, main diagonal, anti-diagonal.
    pairs = (coefficients[:, :-1] * coefficients[:, 1:], coefficients[:-1, :] * coefficients[1:, :],
             coefficients[:-1, :-1] * coefficients[1:, 1:], coefficients[1:, :-1] * coefficients[:-1, 1:])
    for product in pairs:
        features.extend(fit_aggd(product))
    return features


def _half(luma):
    """Halve with a 2x2 box average (the reference code uses MATLAB's antialiased bicubic ``imresize``)."""
    height, width = (luma.shape[0] // 2) * 2, (luma.shape[1] // 2) * 2
    return luma[:height, :width].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))


def brisque_features(image):
    """The 36 BRISQUE features of one image (order: :data:`FEATURE_NAMES`).

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8 RGB or ``(H, W)`` grey in 8-bit units; at least 8x8.

    Returns:
        np.ndarray: ``(36,)`` float64.
    """
    luma = luminance(image)
    if min(luma.shape) < 8:
        raise ValueError(f'BRISQUE needs an image of at least 8x8 pixels, got {luma.shape[1]}x{luma.shape[0]}')
    return np.array(_scale_features(luma) + _scale_features(_half(luma)))


def brisque_batch(images):
    """``(N, H, W, 3)`` uint8 -> ``(N, 36)`` features."""
    return np.stack([brisque_features(image) for image in images])
