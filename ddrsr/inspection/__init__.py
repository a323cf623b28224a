"""``ddrsr inspect``: what is wrong with a photo (JPEG quality, noise, blur, nearest spec, a --strength)."""
from .inspector import DEFAULT_REGRESSORS, NOISE_ESTIMATOR, Inspector, describe, recommend_strength
from .jpeg_quality import JpegQuality, jpeg_quality, quality_from_tables
from .noise import ESTIMATORS, sigma_skimage, sigma_wavelet_mad
from .regressors import DDRRegressors, photo_tiles, pooled_features

__all__ = ['DEFAULT_REGRESSORS', 'NOISE_ESTIMATOR', 'Inspector', 'describe', 'recommend_strength', 'JpegQuality',
           'jpeg_quality', 'quality_from_tables', 'ESTIMATORS', 'sigma_skimage', 'sigma_wavelet_mad', 'DDRRegressors',
           'photo_tiles', 'pooled_features']
