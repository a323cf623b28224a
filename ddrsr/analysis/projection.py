"""Deep features -> 2-D points: PCA to at most 50 dimensions once, then t-SNE several times.

t-SNE is stochastic, and one run can split or merge clusters by chance, so scores are averaged over
``runs`` embeddings with seeds ``0..runs-1``. PCA first removes noise dimensions and makes t-SNE's
neighbour search cheap (features of a 64-channel layer on 32x32 patches have 65,536 dimensions).
"""
import sys

import numpy as np
from tqdm import tqdm

from ddrsr.errors import DDRSRError

PCA_DIM = 50
MAX_PERPLEXITY = 30.0  # sklearn's default, and the usual value for a few hundred points


def default_perplexity(num_points):
    """sklearn's default of 30, lowered to ``(N - 1) / 3`` for small N (t-SNE needs perplexity < N)."""
    return float(max(1.0, min(MAX_PERPLEXITY, (num_points - 1) / 3.0)))


def pca_reduce(features, n_components=PCA_DIM, seed=0):
    """``(N, D)`` -> ``(N, min(n_components, N, D))`` principal components (float64)."""
    from sklearn.decomposition import PCA

    features = np.asarray(features, dtype=np.float64)
    count, dim = features.shape
    n_components = min(n_components, count, dim)
    # random_state matters only for the randomized solver sklearn picks for large inputs.
    return PCA(n_components=n_components, random_state=seed).fit_transform(features)


def tsne_runs(features, runs=5, perplexity=None, pca_dim=PCA_DIM, progress=True, desc='t-SNE'):
    """PCA once, then ``runs`` t-SNE embeddings with ``random_state`` 0, 1, ..., ``runs - 1``.

    Args:
        features (np.ndarray): ``(N, D)``.
        runs (int): number of t-SNE runs (>= 1).
        perplexity (float, optional): default :func:`default_perplexity` (N); must be below N.

    Returns:
        tuple: (list of ``runs`` arrays ``(N, 2)``, the perplexity used).
    """
    from sklearn.manifold import TSNE

    count = len(features)
    if runs < 1:
        raise DDRSRError(f'--runs must be at least 1, got {runs}')
    if count < 3:
        raise DDRSRError(f't-SNE needs at least 3 points, got {count}; use more --patches')
    perplexity = default_perplexity(count) if perplexity is None else float(perplexity)
    if not 0 < perplexity < count:
        raise DDRSRError(f'perplexity must lie in (0, {count}) for {count} points, got {perplexity}')
    reduced = pca_reduce(features, pca_dim)
    embeddings = []
    for seed in tqdm(range(runs), desc=desc, unit='run', file=sys.stderr, disable=not progress, leave=False):
        # Random initialisation: with sklearn's default init='pca' the optimisation is deterministic and
        # every seed gives the same embedding, so repeated runs would measure nothing.
        tsne = TSNE(n_components=2, perplexity=perplexity, init='random', learning_rate='auto', random_state=seed)
        embeddings.append(tsne.fit_transform(reduced))
    return embeddings, perplexity
