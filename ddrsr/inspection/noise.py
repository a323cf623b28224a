"""Pixel-statistics noise estimators: sigma of additive Gaussian noise, in 0-255 units, from one photo.

Both are MADs of the finest diagonal wavelet band, where photos have little signal and white noise keeps all
of its variance: ``sigma = median(|HH|) / 0.6745`` (Donoho and Johnstone).

* :func:`sigma_skimage`: ``skimage.restoration.estimate_sigma`` (Daubechies-2 band, per channel, averaged).
* :func:`sigma_wavelet_mad`: the same rule on an orthonormal Haar band computed here, restricted to the
  flattest half of the 8x8 blocks (texture and edges leak into HH and raise the MAD; flat blocks keep only
  the noise), per channel, averaged.

docs/INSPECT.md measures both (and the DDR regressor) on degraded validation photos.
"""
import numpy as np

_MAD_TO_SIGMA = 1 / 0.6745


def _as_float_rgb(rgb):
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim == 2:
        rgb = rgb[:, :, None]
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 8:
        raise ValueError(f'expected an (H, W[, C]) image of at least 8x8 pixels, got shape {rgb.shape}')
    return rgb


def sigma_skimage(rgb):
    """Noise sigma (0-255) of ``rgb`` ``(H, W, 3)`` float in [0, 1], by ``skimage.restoration.estimate_sigma``.

    >>> rng = np.random.RandomState(0)
    >>> round(sigma_skimage(np.clip(0.5 + rng.randn(96, 96, 3) * 10 / 255, 0, 1)))
    10
    """
    from skimage.restoration import estimate_sigma

    rgb = _as_float_rgb(rgb)
    return float(estimate_sigma(rgb, channel_axis=-1, average_sigmas=True)) * 255.0


def sigma_wavelet_mad(rgb, flat_fraction=0.5, block=8):
    """Noise sigma (0-255) of ``rgb`` ``(H, W, 3)`` float in [0, 1]: Haar HH MAD over the flattest blocks.

    The Haar HH coefficient of each 2x2 cell is ``(a - b - c + d) / 2`` (orthonormal: white noise of sigma
    s gives HH of sigma s). Blocks of ``block`` pixels are ranked by their LL-band gradient energy, and the
    MAD is taken over the ``flat_fraction`` flattest ones.

    >>> rng = np.random.RandomState(0)
    >>> round(sigma_wavelet_mad(np.clip(0.5 + rng.randn(96, 96, 3) * 10 / 255, 0, 1)))
    10
    """
    rgb = _as_float_rgb(rgb) * 255.0
    height, width = (rgb.shape[0] // block) * block, (rgb.shape[1] // block) * block
    rgb = rgb[:height, :width]
    a, b, c, d = rgb[0::2, 0::2], rgb[0::2, 1::2], rgb[1::2, 0::2], rgb[1::2, 1::2]
    hh = (a - b - c + d) / 2
    ll = (a + b + c + d) / 2
    half = block // 2
    rows, cols = hh.shape[0] // half, hh.shape[1] // half
    hh_blocks = hh.reshape(rows, half, cols, half, -1).transpose(0, 2, 1, 3, 4).reshape(rows * cols, -1, hh.shape[2])
    gy, gx = np.gradient(ll.mean(axis=2))
    energy = (gx ** 2 + gy ** 2).reshape(rows, half, cols, half).mean(axis=(1, 3)).reshape(-1)
    keep = np.argsort(energy)[:max(1, int(round(flat_fraction * len(energy))))]
    chosen = hh_blocks[keep]  # (blocks, pixels, channels)
    sigmas = np.median(np.abs(chosen.reshape(-1, chosen.shape[2])), axis=0) * _MAD_TO_SIGMA
    return float(np.mean(sigmas))


ESTIMATORS = {'skimage': sigma_skimage, 'wavelet_mad': sigma_wavelet_mad}
