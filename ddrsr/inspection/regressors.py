"""Degradation estimates from DDR features: small scikit-learn models, stored as plain arrays in an ``.npz``.

Features are the frozen DDR encoder's pooled generator features (:meth:`DDREncoder.pooled`, ``(T, 2C)``) of
the most detailed 64-pixel tiles of the photo (:func:`photo_tiles`); the encoder generator is frozen, so they do not change
when a model's MLP or StyleMods train. Each head predicts per tile; a photo's estimate is the median over its
tiles (class probabilities: the mean). Heads:

* ``blur`` (Gaussian blur sigma on the LR, pixels), ``noise`` (Gaussian noise sigma, 0-255),
  ``jpeg_quality`` (fitted on JPEG samples only): ridge or RBF SVR regressors;
* ``jpeg_present`` (binary) and ``spec`` (the named specs): logistic regressions.

A fitted head is a dict of numpy arrays (coefficients, support vectors), so the file is saved and read
with ``allow_pickle=False`` and prediction is a few lines of numpy here, with no unpickling of estimators.
``scripts/train_inspect_regressors.py`` fits them and writes ``weights/inspect_regressors_lite.npz``.
"""
import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from ddrsr.errors import DDRSRError

FORMAT_VERSION = 1
TILE = 64
MAX_TILES = 8
MAX_CANDIDATES = 64
REGRESSION_HEADS = ('blur', 'noise', 'jpeg_quality')
CLASSIFIER_HEADS = ('jpeg_present', 'spec')


def detail_scores(tiles):
    """Mean local standard deviation (7x7 windows, 0-1 luminance, after a 3x3 box pre-smoothing that damps noise)
    of each tile ``(T, 3, h, w) -> (T,)``: near 0 for flat tiles (sky, bokeh), which say little about blur or JPEG.
    The training crops were cut with the same kind of score (scripts/prepare_dataset.py skips flat crops).

    >>> scores = detail_scores(torch.stack([torch.full((3, 32, 32), 0.5), torch.rand(3, 32, 32)]))
    >>> bool(scores[0] < 1e-3 < scores[1])
    True
    """
    grey = (0.299 * tiles[:, 0:1] + 0.587 * tiles[:, 1:2] + 0.114 * tiles[:, 2:3]).float()
    grey = F.avg_pool2d(grey, 3, 1, 1, count_include_pad=False)
    mean = F.avg_pool2d(grey, 7, 1, 3, count_include_pad=False)
    var = F.avg_pool2d(grey ** 2, 7, 1, 3, count_include_pad=False) - mean ** 2
    return var.clamp_min(0).sqrt().mean(dim=(1, 2, 3))


def photo_tiles(lq, tile=TILE, max_tiles=MAX_TILES, candidates=MAX_CANDIDATES):
    """The ``max_tiles`` most detailed ``tile`` x ``tile`` tiles of a grid over the middle of ``lq`` ``(1, 3, H, W)``.

    The grid has at most ``candidates`` cells (the middle of the photo when it has more); cells are ranked by
    :func:`detail_scores`, since the regressors were fitted on detailed training crops. Tile corners sit on
    multiples of 8 pixels from the image origin, so JPEG blocks line up in every tile as they do in the training
    patches. A photo smaller than a tile is one tile, cut to multiples of 8.

    Returns:
        Tensor: ``(T, 3, tile, tile)`` (or ``(1, 3, h, w)`` for a small photo).

    >>> photo_tiles(torch.rand(1, 3, 200, 300)).shape
    torch.Size([8, 3, 64, 64])
    """
    height, width = lq.shape[-2:]
    if min(height, width) < 16:
        raise DDRSRError(f'the image is {width}x{height} pixels; inspect needs at least 16x16')
    if height < tile or width < tile:
        return lq[:, :, :height - height % 8, :width - width % 8]
    rows, cols = height // tile, width // tile
    while rows * cols > candidates:  # trim the longer side first, keeping the middle of the photo
        if rows >= cols:
            rows -= 1
        else:
            cols -= 1
    top = ((height - rows * tile) // 2) // 8 * 8
    left = ((width - cols * tile) // 2) // 8 * 8
    tiles = torch.cat([lq[:, :, top + r * tile:top + (r + 1) * tile, left + c * tile:left + (c + 1) * tile]
                       for r in range(rows) for c in range(cols)])
    if len(tiles) <= max_tiles:
        return tiles
    keep = torch.argsort(detail_scores(tiles), descending=True)[:max_tiles]
    return tiles[torch.sort(keep).values]


def pooled_features(encoder, tiles, batch_size=32):
    """``(T, 2C)`` float64 numpy: ``encoder.pooled`` of ``tiles`` ``(T, 3, h, w)`` in batches.

    >>> from ddrsr.archs import DDREncoder
    >>> encoder = DDREncoder({'type': 'SRResNet', 'num_feat': 4, 'num_block': 1}, layer='body.0', embed_dim=2)
    >>> pooled_features(encoder, torch.rand(3, 3, 16, 16)).shape
    (3, 8)
    """
    parameter = next(encoder.parameters())
    with torch.no_grad():
        chunks = [encoder.pooled(tiles[i:i + batch_size].to(parameter.device, parameter.dtype)).float().cpu()
                  for i in range(0, len(tiles), batch_size)]
    return torch.cat(chunks).double().numpy()


def encoder_fingerprint(encoder):
    """sha256 (16 hex) of the encoder generator's weights and layer: the features the heads were fitted on."""
    digest = hashlib.sha256(str(encoder.layer).encode())
    for name, tensor in encoder.generator.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- fitting
def fit_regressor(x, y, kind='svr', c=10.0, alpha=1.0):
    """Fit one regression head on standardized features ``x`` ``(N, F)``; returns its array dict.

    ``kind`` ``'ridge'`` (``alpha``) or ``'svr'`` (RBF, ``gamma='scale'``, ``C = c``); targets are scaled by
    their std while fitting, so ``c`` means the same for every target.

    >>> x = np.linspace(-1, 1, 40)[:, None]
    >>> head = fit_regressor(x, 3 * x[:, 0] + 1, 'ridge', alpha=1e-6)
    >>> [round(float(v), 3) for v in predict_head(head, np.array([[0.0], [0.5]]))]
    [1.0, 2.5]
    """
    from sklearn.linear_model import Ridge
    from sklearn.svm import SVR

    y = np.asarray(y, dtype=np.float64)
    y_mean, y_scale = float(y.mean()), float(y.std() or 1.0)
    target = (y - y_mean) / y_scale
    if kind == 'ridge':
        model = Ridge(alpha=alpha).fit(x, target)
        head = {'coef': model.coef_, 'intercept': np.array(model.intercept_)}
    elif kind == 'svr':
        model = SVR(kernel='rbf', C=c, epsilon=0.05, gamma='scale').fit(x, target)
        head = {'support': model.support_vectors_.astype(np.float32), 'dual': model.dual_coef_[0],
                'intercept': np.array(model.intercept_[0]), 'gamma': np.array(model._gamma)}
    else:
        raise ValueError(f'unknown regressor kind {kind!r}')
    head.update(kind=np.array(kind), y_mean=np.array(y_mean), y_scale=np.array(y_scale),
                y_min=np.array(float(y.min())), y_max=np.array(float(y.max())))
    return head


def fit_classifier(x, labels, classes, c=1.0):
    """Fit a (multinomial) logistic regression on standardized ``x``; returns its array dict."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000).fit(x, labels)
    order = [list(model.classes_).index(name) for name in classes]
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn keeps one row for two classes: P(second class)
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return {'kind': np.array('logistic'), 'coef': coef[order], 'intercept': intercept[order],
            'classes': np.array(classes)}


# ---------------------------------------------------------------------------------------------- prediction
def predict_head(head, x):
    """Per-row predictions of one head on standardized ``x`` ``(N, F)``: values ``(N,)`` (regressors, clipped
    to the training range) or class probabilities ``(N, K)`` (classifiers)."""
    kind = str(head['kind'])
    if kind == 'logistic':
        logits = x @ head['coef'].T + head['intercept']
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        return prob / prob.sum(axis=1, keepdims=True)
    if kind == 'ridge':
        value = x @ head['coef'] + head['intercept']
    elif kind == 'svr':
        sq = (x ** 2).sum(1)[:, None] + (head['support'] ** 2).sum(1)[None] - 2 * x @ head['support'].T
        value = np.exp(-head['gamma'] * np.maximum(sq, 0)) @ head['dual'] + head['intercept']
    else:
        raise DDRSRError(f'unknown head kind {kind!r} in the regressor file; rerun scripts/train_inspect_regressors.py')
    return np.clip(value * head['y_scale'] + head['y_mean'], head['y_min'], head['y_max'])


class DDRRegressors:
    """The fitted heads and the feature standardization, as stored in the ``.npz``.

    Args:
        arrays (dict): ``{'feature_mean', 'feature_scale', 'encoder_fingerprint', '<head>.<key>': ...}``.
    """

    def __init__(self, arrays):
        self.arrays = dict(arrays)
        heads = {}
        for key, value in self.arrays.items():
            if '.' in key:
                head, field = key.split('.', 1)
                heads.setdefault(head, {})[field] = value
        self.heads = heads
        missing = [h for h in REGRESSION_HEADS + CLASSIFIER_HEADS if h not in heads]
        if missing or 'feature_mean' not in self.arrays:
            raise DDRSRError(f'the regressor file lacks {", ".join(missing) or "feature_mean"}; rerun '
                             'scripts/train_inspect_regressors.py')

    @property
    def fingerprint(self):
        return str(self.arrays['encoder_fingerprint'])

    @property
    def spec_names(self):
        return [str(n) for n in self.heads['spec']['classes']]

    def standardize(self, features):
        return (features - self.arrays['feature_mean']) / self.arrays['feature_scale']

    def predict_tiles(self, features):
        """``{head: per-tile predictions}`` for raw features ``(T, F)``."""
        x = self.standardize(np.asarray(features, dtype=np.float64))
        return {name: predict_head(head, x) for name, head in self.heads.items() if 'kind' in head}

    def predict_photo(self, features):
        """One photo from its tiles' features ``(T, F)``: medians of the regressors, mean probabilities."""
        tiles = self.predict_tiles(features)
        result = {name: float(np.median(tiles[name])) for name in REGRESSION_HEADS}
        result['jpeg_probability'] = float(tiles['jpeg_present'][:, 1].mean())
        prob = tiles['spec'].mean(axis=0)
        result['spec_probabilities'] = {name: float(p) for name, p in zip(self.spec_names, prob)}
        return result

    def save(self, path):
        """Write every array to ``path`` (``np.savez_compressed``: no pickled objects)."""
        from ddrsr.utils.atomic_file import AtomicFile

        with AtomicFile(path) as f:
            np.savez_compressed(f, **self.arrays)
        return path

    @classmethod
    def load(cls, path):
        """Read a regressor file with ``allow_pickle=False``; DDRSRError when it is missing or malformed.

        The shipped file (in ``weights/``) is first checked against ``weights/SHA256SUMS``.
        """
        import os

        from ddrsr.weights.manifest import verify_shipped
        from ddrsr.zoo import WEIGHTS_DIR

        if os.path.isfile(path) and os.path.dirname(os.path.abspath(path)) == os.path.abspath(WEIGHTS_DIR):
            verify_shipped(path, WEIGHTS_DIR)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except FileNotFoundError:
            raise DDRSRError(f'regressor file {path!r} not found; make it with python '
                             'scripts/train_inspect_regressors.py') from None
        except (ValueError, OSError) as error:
            raise DDRSRError(f'cannot read regressor file {path!r} ({error}); rerun '
                             'scripts/train_inspect_regressors.py') from None
        if int(arrays.get('format_version', -1)) != FORMAT_VERSION:
            raise DDRSRError(f'{path!r} is not a version-{FORMAT_VERSION} regressor file; rerun '
                             'scripts/train_inspect_regressors.py')
        return cls(arrays)
