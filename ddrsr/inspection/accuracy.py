"""How accurate ``ddrsr inspect`` is: its estimates on crops degraded with known parameters, the nearest-spec
confusion matrix, and JPEG quality read back from files written at known q. ``scripts/inspect_report.py`` runs
it on the validation photos and words it as docs/INSPECT.md.
"""
import io
import sys

import numpy as np
import torch
from tqdm import tqdm

from ddrsr.data.degradations import NAMED_SPECS, DegradationSpec, degrade_with_spec
from ddrsr.data.image_io import list_images, read_rgb, to_tensor
from ddrsr.errors import check_image_batch
from ddrsr.inspection.jpeg_quality import jpeg_quality
from ddrsr.inspection.noise import ESTIMATORS

BLUR_LEVELS = (0.5, 1.0, 2.0, 3.0, 4.0)
NOISE_LEVELS = (5.0, 10.0, 15.0, 20.0, 30.0)
JPEG_LEVELS = (30, 50, 70, 95)
#: Random combinations of blur, noise and JPEG in :func:`settings`.
COMBINED = 16
#: Groups of :func:`settings`, in the order reports show them.
GROUPS = ('clean', 'blur alone', 'noise alone', 'JPEG alone', 'combined')


def settings(seed):
    """``[(group, DegradationSpec)]``: each degradation alone, clean, and ``COMBINED`` seeded random combinations.

    >>> [group for group, _ in settings(0)].count('combined'), settings(0) == settings(0)
    (16, True)
    """
    out = [('clean', DegradationSpec('clean'))]
    out += [('blur alone', DegradationSpec(f'blur{b:g}', blur_sigma=b)) for b in BLUR_LEVELS]
    out += [('noise alone', DegradationSpec(f'noise{n:g}', noise_sigma=n)) for n in NOISE_LEVELS]
    out += [('JPEG alone', DegradationSpec(f'jpeg{q}', jpeg_quality=q)) for q in JPEG_LEVELS]
    rng = np.random.RandomState(seed)
    for _ in range(COMBINED):
        b, n, q = round(rng.uniform(0, 4), 2), round(rng.uniform(0, 30), 1), int(rng.randint(30, 96))
        out.append(('combined', DegradationSpec(f'blur{b:g}_noise{n:g}_jpeg{q}', blur_sigma=b, noise_sigma=n,
                                                jpeg_quality=q)))
    return out


def validation_crops(hr, meta_info, size):
    """Two ``size`` px HR crops per photo of ``hr`` (left and right of the centre): ``(N, 3, size, size)``."""
    crops = []
    for path in list_images(hr, meta_info):
        image = read_rgb(path)
        top = (image.shape[0] - size) // 2
        for left in (image.shape[1] // 2 - size, image.shape[1] // 2):
            crops.append(to_tensor(image[top:top + size, left:left + size]))
    return torch.stack(crops)


def synthetic(inspector, crops, seed, scale=4, progress=True):
    """One row per (setting of :func:`settings`, crop): the true values and every estimate.

    Args:
        inspector (Inspector): what is measured.
        crops (Tensor): HR crops ``(N, 3, H, W)``, degraded with each setting (seed ``seed + setting index``).

    Returns:
        list[dict]: ``group``, ``spec``, the true ``blur``, ``noise`` and ``jpeg`` (0 = none), the DDR estimates
        ``ddr_blur``, ``ddr_noise``, ``ddr_jpeg``, ``ddr_jpeg_p`` (P(JPEG)), and ``<estimator>_noise`` for each
        pixel-statistics noise estimator.
    """
    check_image_batch(crops, 'synthetic: crops')
    rows = []
    for number, (group, spec) in enumerate(tqdm(settings(seed), desc='inspect settings', unit='setting',
                                                file=sys.stderr, disable=not progress)):
        with torch.no_grad():
            lq = degrade_with_spec(crops, spec, scale, seed=seed + number)
        for index in range(len(lq)):
            rgb = lq[index].permute(1, 2, 0).numpy()
            ddr = inspector.ddr_estimates(rgb)
            rows.append({'group': group, 'spec': spec.name, 'blur': spec.blur_sigma, 'noise': spec.noise_sigma,
                         'jpeg': spec.jpeg_quality, 'ddr_blur': ddr['blur'], 'ddr_noise': ddr['noise'],
                         'ddr_jpeg': ddr['jpeg_quality'], 'ddr_jpeg_p': ddr['jpeg_probability'],
                         **{f'{name}_noise': f(rgb) for name, f in ESTIMATORS.items()}})
    return rows


def spec_accuracy(inspector, crops, seed, scale=4):
    """Confusion matrix of the nearest named spec: ``{true spec: {named spec: count}}`` over ``crops`` degraded
    with each named spec (seed ``seed + 500 + spec index``)."""
    check_image_batch(crops, 'spec_accuracy: crops')
    confusion = {spec: {other: 0 for other in NAMED_SPECS} for spec in NAMED_SPECS}
    for number, spec in enumerate(NAMED_SPECS):
        with torch.no_grad():
            lq = degrade_with_spec(crops, spec, scale, seed=seed + 500 + number)
        for index in range(len(lq)):
            probabilities = inspector.ddr_estimates(lq[index].permute(1, 2, 0).numpy())['spec_probabilities']
            confusion[spec][max(probabilities, key=probabilities.get)] += 1
    return confusion


def table_reading(crops, count=4):
    """How many JPEGs written by Pillow / OpenCV at q 30, 35, ..., 95 read back with the exact q, over the first
    ``count`` crops: ``({'Pillow': exact, 'OpenCV': exact}, files per writer)``."""
    import cv2
    from PIL import Image

    exact, total = {'Pillow': 0, 'OpenCV': 0}, 0
    for crop in crops[:count]:
        pixels = (crop.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        for q in range(30, 96, 5):
            total += 1
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, 'JPEG', quality=q)
            exact['Pillow'] += jpeg_quality(io.BytesIO(buffer.getvalue())).quality == q
            ok, encoded = cv2.imencode('.jpg', pixels[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
            exact['OpenCV'] += jpeg_quality(io.BytesIO(encoded.tobytes())).quality == q
    return exact, total


def mae(rows, estimate, truth, keep=lambda row: True):
    """``(mean |row[estimate] - row[truth]|, count)`` over the rows ``keep`` accepts; ``(nan, 0)`` for none.

    >>> mae([{'a': 1.0, 'b': 3.0}, {'a': 2.0, 'b': 2.0}], 'a', 'b')
    (1.0, 2)
    """
    values = [abs(row[estimate] - row[truth]) for row in rows if keep(row)]
    return (float(np.mean(values)), len(values)) if values else (float('nan'), 0)


def meets(value, target):
    """Whether an error ``value`` meets the target ``value <= target`` (nan never does).

    >>> meets(2.9, 3), meets(3.5, 3), meets(float('nan'), 3)
    (True, False, False)
    """
    return bool(value <= target)
