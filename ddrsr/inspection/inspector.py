"""What is wrong with this photo: JPEG quality, noise, blur, the nearest named spec and a ``--strength``.

:class:`Inspector` combines three independent readings of one photo:

1. the file's JPEG quantization tables (exact q, :mod:`ddrsr.inspection.jpeg_quality`),
2. pixel-statistics noise estimators (:mod:`ddrsr.inspection.noise`),
3. small regressors on the DDR encoder's pooled features of the photo's 64 px tiles
   (:mod:`ddrsr.inspection.regressors`): blur sigma, noise sigma, JPEG q, the nearest named spec with its
   probability, and from those a recommended ``--strength``.
"""
import os

import numpy as np
import torch

from ddrsr.errors import DDRSRError
from ddrsr.inspection.jpeg_quality import jpeg_quality
from ddrsr.inspection.noise import ESTIMATORS
from ddrsr.inspection.regressors import DDRRegressors, encoder_fingerprint, photo_tiles, pooled_features

#: The pixel-statistics estimator reported as ``noise_sigma``: the one with the lower MAE on the degraded
#: validation photos in docs/INSPECT.md (both are reported under ``noise_sigma_by_estimator``).
NOISE_ESTIMATOR = 'wavelet_mad'
from ddrsr.defaults import DEFAULT_REGRESSORS  # noqa: E402


STRENGTH_HEAD = 'strength'


def strength_head(model_name):
    """The regressor-file head that holds model ``model_name``'s strength table (one file serves several models
    that share the encoder)."""
    return f'{STRENGTH_HEAD}@{model_name}'


def recommend_strength(spec_probabilities, regressors, model):
    """``(strength, basis)``: the mean of the per-spec best strengths weighted by the spec probabilities.

    The per-spec best strengths (PSNR on training crops) are stored with the regressors, one table per model, each
    keyed by the fingerprint of that model's weights alone (``state_fingerprint``: no software version in it). For
    weights without a table the recommendation is 1 and ``basis`` says why.
    """
    tables = [head for name, head in regressors.heads.items()
              if name == STRENGTH_HEAD or name.startswith(STRENGTH_HEAD + '@')]
    if not tables:
        return 1.0, 'default 1: the regressor file has no strength table (its model had no clean embedding)'
    if not getattr(model, 'has_clean_embedding', False):
        return 1.0, 'default 1: this model has no clean embedding (scripts/compute_clean_embedding.py)'
    from ddrsr.weights.manifest import state_fingerprint

    fingerprint = state_fingerprint(model)
    table = next((head for head in tables if str(head.get('sr_fingerprint')) == fingerprint), None)
    if table is None:
        return 1.0, ('default 1: no strength table was made for these weights; run '
                     'scripts/train_inspect_regressors.py --strength_only -n MODEL for them')
    best = dict(zip((str(s) for s in table['specs']), table['best']))
    strength = sum(p * best[name] for name, p in spec_probabilities.items() if name in best)
    return round(float(strength) * 20) / 20, 'confidence-weighted PSNR-best strength of the named specs'


class Inspector:
    """Inspect photos with a DDR model's encoder and the fitted regressors.

    Args:
        model (nn.Module): a DDR network (``encoder``, ``encode``, ``steer``), e.g. ``ddrsr.loader.load().network``.
        regressors (DDRRegressors | str): the heads, or the path of their ``.npz``.
        noise_estimator (str): the estimator reported as ``noise_sigma`` (see :data:`NOISE_ESTIMATOR`).

    Raises:
        DDRSRError: the model has no DDR encoder, or the regressors were fitted on another encoder.
    """

    def __init__(self, model, regressors=DEFAULT_REGRESSORS, noise_estimator=NOISE_ESTIMATOR):
        if not getattr(model, 'use_ddr', False):
            raise DDRSRError('inspect needs a DDR model (with an encoder), such as rrdb_ddr_real_x4_lite')
        self.model = model.eval()
        self.regressors = regressors if isinstance(regressors, DDRRegressors) else DDRRegressors.load(regressors)
        if self.regressors.fingerprint != encoder_fingerprint(model.encoder):
            raise DDRSRError('the inspect regressors were fitted on another DDR encoder than this model\'s; rerun '
                             'python scripts/train_inspect_regressors.py for it, or pass its file with --regressors')
        if noise_estimator not in ESTIMATORS:
            raise DDRSRError(f'unknown noise estimator {noise_estimator!r}; use one of {", ".join(ESTIMATORS)}')
        self.noise_estimator = noise_estimator

    def ddr_estimates(self, rgb):
        """Regressor readings of ``rgb`` ``(H, W, 3)`` float in [0, 1]: blur, noise, q, spec probabilities."""
        lq = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()
        return self.regressors.predict_photo(pooled_features(self.model.encoder, photo_tiles(lq)))

    def recommend(self, lq):
        """``(strength, basis)`` for one LQ photo ``(1, 3, H, W)`` float in [0, 1]: what ``--strength auto`` uses."""
        features = pooled_features(self.model.encoder, photo_tiles(lq.float().cpu()))
        probabilities = self.regressors.predict_photo(features)['spec_probabilities']
        return recommend_strength(probabilities, self.regressors, self.model)

    def measure(self, rgb, tables_quality=None):
        """Every estimate for one photo ``rgb`` ``(H, W, 3)`` float in [0, 1]; ``tables_quality`` is the file's
        :class:`~ddrsr.inspection.jpeg_quality.JpegQuality` (None for an array that came from no file).

        Returns:
            dict: ``jpeg`` (from the tables), ``noise_sigma`` (+ ``noise_sigma_by_estimator``), ``ddr``
            (blur_sigma, noise_sigma, jpeg_quality or None, jpeg_probability), ``nearest_spec`` (name,
            confidence), ``spec_probabilities``, ``recommended_strength`` and ``strength_basis``.
        """
        rgb = np.asarray(rgb, dtype=np.float32)
        sigmas = {name: round(estimate(rgb), 2) for name, estimate in ESTIMATORS.items()}
        ddr = self.ddr_estimates(rgb)
        probabilities = ddr.pop('spec_probabilities')
        nearest = max(probabilities, key=probabilities.get)
        strength, basis = recommend_strength(probabilities, self.regressors, self.model)
        jpeg_q = round(ddr['jpeg_quality']) if ddr['jpeg_probability'] >= 0.5 else None
        result = {
            'width': int(rgb.shape[1]), 'height': int(rgb.shape[0]),
            'noise_sigma': sigmas[self.noise_estimator], 'noise_estimator': self.noise_estimator,
            'noise_sigma_by_estimator': sigmas,
            'ddr': {'blur_sigma': round(ddr['blur'], 2), 'noise_sigma': round(ddr['noise'], 2), 'jpeg_quality': jpeg_q,
                    'jpeg_quality_if_jpeg': round(ddr['jpeg_quality'], 1),
                    'jpeg_probability': round(ddr['jpeg_probability'], 3)},
            'nearest_spec': {'name': nearest, 'confidence': round(probabilities[nearest], 3)},
            'spec_probabilities': {k: round(v, 3) for k, v in probabilities.items()},
            'recommended_strength': strength, 'strength_basis': basis,
        }
        if tables_quality is not None:
            result['jpeg'] = {'quality': tables_quality.quality, 'exact': tables_quality.exact,
                              'quality_range': list(tables_quality.quality_range) if tables_quality.quality_range
                              else None, 'text': tables_quality.describe()}
        return result

    def inspect_file(self, path, max_pixels=None):
        """:meth:`measure` of the image file ``path`` (EXIF orientation applied; alpha and bit depth ignored),
        with ``file`` and the quantization-table reading. DDRSRError for unreadable files."""
        from ddrsr.data.photo_io import DEFAULT_MAX_PIXELS, read_image

        image = read_image(path, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
        return {'file': os.fspath(path), **self.measure(image.rgb, jpeg_quality(path))}


def describe(result):
    """Human-readable lines for one :meth:`Inspector.measure` / ``inspect_file`` result."""
    ddr = result['ddr']
    jpeg_ddr = f'q ~{ddr["jpeg_quality"]}' if ddr['jpeg_quality'] is not None else 'no JPEG'
    lines = [f'{result.get("file", "image")} ({result["width"]}x{result["height"]})']
    if 'jpeg' in result:
        lines.append(f'  JPEG quality (tables): {result["jpeg"]["text"]}')
    others = ', '.join(f'{k} {v:.1f}' for k, v in result['noise_sigma_by_estimator'].items()
                       if k != result['noise_estimator'])
    lines += [f'  noise sigma ({result["noise_estimator"]}): {result["noise_sigma"]:.1f} (0-255; {others})',
              f'  DDR: blur sigma {ddr["blur_sigma"]:.2f} px, noise sigma {ddr["noise_sigma"]:.1f}, {jpeg_ddr} '
              f'(P(JPEG) {ddr["jpeg_probability"]:.2f})',
              f'  nearest spec: {result["nearest_spec"]["name"]} (confidence {result["nearest_spec"]["confidence"]:.2f})',
              f'  recommended --strength {result["recommended_strength"]:g} ({result["strength_basis"]})']
    return lines
