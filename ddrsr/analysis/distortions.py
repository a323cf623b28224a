"""A LIVE-style distortion set from HR photos: five classes, several levels, split by source photo.

Classes (the LIVE database's, Sheikh et al. 2006), applied to 8-bit RGB regions:

* ``GB``   Gaussian blur, standard deviation in pixels.
* ``WN``   additive white Gaussian noise, standard deviation in 8-bit levels.
* ``JPEG`` baseline JPEG (Pillow/libjpeg, 4:2:0), quality factor.
* ``JP2K`` JPEG 2000 (Pillow/OpenJPEG, irreversible 9/7 wavelet), compression ratio against 24-bit RGB.
* ``FF``   "fast fading": JPEG 2000 at ratio :data:`FF_RATIO` sent over a binary symmetric channel.
  Each bit of the codestream *after its main header* (from the first start-of-data marker to the
  end-of-codestream marker, both kept intact so the decoder can parse the stream) flips independently
  with the level's **bit error rate** (BER); at least one bit is flipped. The corrupted stream is then
  decoded. OpenJPEG rejects some corrupted streams (a few percent at BER 1e-3); a rejected stream is
  re-transmitted with fresh errors (up to :data:`FF_ATTEMPTS` times), and if all of them fail the number
  of flipped bits is halved and the attempts repeat (down to the uncorrupted stream, recorded as 0
  bits, which never happened in our runs). The flipped-bit count actually used is recorded per sample.

Every random choice comes from ``numpy.random.default_rng([seed, photo, region, class, level])``, so a
sample does not depend on which other samples are made. Photos are first resized (area) to a short side of
``short_side`` pixels, about LIVE's 768x512, so a region shows a scene rather than a few pixels of it.
"""
import io
import sys
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ddrsr.data.image_io import list_images, read_rgb
from ddrsr.errors import DDRSRError

CLASSES = ('GB', 'WN', 'JPEG', 'JP2K', 'FF')
# Level values from mild to strong, roughly spanning LIVE's ranges at this image size.
DEFAULT_LEVELS = {
    'GB': (1.0, 2.0, 4.0),           # sigma, pixels
    'WN': (5.0, 15.0, 30.0),         # sigma, 8-bit levels
    'JPEG': (40, 20, 10),            # quality
    'JP2K': (16.0, 32.0, 64.0),      # compression ratio (1.5, 0.75, 0.375 bits per pixel)
    'FF': (2e-4, 5e-4, 1e-3),        # bit error rate of the codestream after the main header
}
FF_RATIO = 24.0        # JPEG 2000 compression ratio before the channel errors (1 bit per pixel)
FF_ATTEMPTS = 8        # re-transmissions with fresh errors before halving the number of flipped bits
_SOD, _EOC = b'\xff\x93', b'\xff\xd9'


# ------------------------------------------------------------------------------------------ distortions
def gaussian_blur(image, sigma):
    """``(H, W, 3)`` uint8 -> blurred uint8; kernel of ±3 sigma, mirrored borders."""
    radius = max(1, int(np.ceil(3 * sigma)))
    return cv2.GaussianBlur(image, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT_101)


def white_noise(image, sigma, rng):
    """``(H, W, 3)`` uint8 + N(0, sigma²) per pixel and channel, rounded and clipped to 8 bits."""
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _decode(data):
    with Image.open(io.BytesIO(data)) as decoded:
        decoded.load()
        return np.asarray(decoded.convert('RGB'))


def jpeg(image, quality):
    """``(H, W, 3)`` uint8 through a JPEG file of ``quality`` (1..95) and back."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, 'JPEG', quality=int(quality))
    return _decode(buffer.getvalue())


def encode_jpeg2000(image, ratio):
    """A raw JPEG 2000 codestream (``.j2k``) of ``(H, W, 3)`` uint8 at compression ratio ``ratio``."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, 'JPEG2000', quality_mode='rates', quality_layers=[float(ratio)],
                                irreversible=True, no_jp2=True)
    return buffer.getvalue()


def jpeg2000(image, ratio):
    """``(H, W, 3)`` uint8 through JPEG 2000 at compression ratio ``ratio`` and back."""
    return _decode(encode_jpeg2000(image, ratio))


def payload_range(stream):
    """``(start, end)`` byte range of a codestream that FF may corrupt: after the first SOD, before EOC."""
    sod = stream.find(_SOD)
    if sod < 0 or not stream.endswith(_EOC):
        raise ValueError('not a JPEG 2000 codestream with SOD and EOC markers')
    return sod + len(_SOD), len(stream) - len(_EOC)


def flip_bits(stream, count, rng):
    """``stream`` with ``count`` distinct bits of its payload (:func:`payload_range`) inverted."""
    start, end = payload_range(stream)
    corrupted = bytearray(stream)
    for bit in rng.choice((end - start) * 8, size=min(count, (end - start) * 8), replace=False):
        corrupted[start + bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(corrupted)


def fast_fading(image, bit_error_rate, rng, ratio=FF_RATIO, attempts=FF_ATTEMPTS):
    """JPEG 2000 at ``ratio``, payload bits flipped at ``bit_error_rate``, decoded (see module docstring).

    Returns:
        tuple: ``((H, W, 3) uint8 image, number of bits flipped in the stream that decoded)``.
    """
    stream = encode_jpeg2000(image, ratio)
    start, end = payload_range(stream)
    flips = max(1, int(rng.binomial((end - start) * 8, bit_error_rate)))
    while flips > 0:
        for _ in range(attempts):
            try:
                decoded = _decode(flip_bits(stream, flips, rng))
            except (OSError, ValueError, SyntaxError):  # OpenJPEG: "broken data stream"
                continue
            if decoded.shape == image.shape:
                return decoded, flips
        flips //= 2
    return _decode(stream), 0  # unreachable in practice: one flipped bit that never decodes 8 times


def distort(image, name, level, rng):
    """Apply class ``name`` (one of :data:`CLASSES`) at ``level`` to ``(H, W, 3)`` uint8.

    Returns:
        tuple: ``(uint8 image, flipped bits for FF else None)``.
    """
    if name == 'GB':
        return gaussian_blur(image, level), None
    if name == 'WN':
        return white_noise(image, level, rng), None
    if name == 'JPEG':
        return jpeg(image, level), None
    if name == 'JP2K':
        return jpeg2000(image, level), None
    if name == 'FF':
        return fast_fading(image, level, rng)
    raise DDRSRError(f'unknown distortion class {name!r}; use one of {", ".join(CLASSES)}')


def check_levels(levels):
    """``{class: [level, ...]}`` for all five classes, each with >= 1 level; DDRSRError otherwise."""
    missing = [name for name in CLASSES if not levels.get(name)]
    unknown = [name for name in levels if name not in CLASSES]
    if missing or unknown:
        raise DDRSRError(f'distortion levels must be given for exactly {", ".join(CLASSES)} '
                         f'(missing: {", ".join(missing) or "none"}; unknown: {", ".join(unknown) or "none"})')
    return {name: tuple(levels[name]) for name in CLASSES}


# -------------------------------------------------------------------------------------------- photos
def load_photo(path, short_side=512):
    """A photo as ``(H, W, 3)`` uint8 RGB, area-resized so that its short side is ``short_side`` (0: as is)."""
    image = read_rgb(path)
    height, width = image.shape[:2]
    if short_side and min(height, width) != short_side:
        factor = short_side / min(height, width)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def grid_regions(image, size, count, rng):
    """``count`` (or all, if fewer) seeded cells of the centred non-overlapping ``size`` grid, as crops."""
    height, width = image.shape[:2]
    rows, cols = height // size, width // size
    top0, left0 = (height - rows * size) // 2, (width - cols * size) // 2
    cells = [(top0 + r * size, left0 + c * size) for r in range(rows) for c in range(cols)]
    chosen = sorted(rng.choice(len(cells), size=min(count, len(cells)), replace=False))
    return [image[cells[i][0]:cells[i][0] + size, cells[i][1]:cells[i][1] + size] for i in chosen]


def split_photos(names, test_fraction=0.3, seed=0, test_names=None):
    """Boolean ``(P,)``: which photos are test photos. No photo is on both sides, so no content is shared.

    ``test_names`` (file names) fixes the test photos; otherwise a seeded ``test_fraction`` of them is
    drawn. Both sides must hold at least one photo.
    """
    names = list(names)
    if test_names is not None:
        wanted = {str(n).split('/')[-1] for n in test_names}
        is_test = np.array([name in wanted for name in names])
    else:
        if not 0 < test_fraction < 1:
            raise DDRSRError(f'--test_fraction must lie strictly between 0 and 1, got {test_fraction}')
        count = min(len(names) - 1, max(1, round(test_fraction * len(names))))
        is_test = np.zeros(len(names), dtype=bool)
        if count > 0:
            is_test[np.random.default_rng(seed).choice(len(names), size=count, replace=False)] = True
    if is_test.all() or not is_test.any():
        raise DDRSRError(f'the split by photo needs at least one training and one test photo; got '
                         f'{int((~is_test).sum())} training and {int(is_test.sum())} test photos out of {len(names)} '
                         '(use more photos, or check that --test_list names photos of --hr)')
    return is_test


# ----------------------------------------------------------------------------------------------- set
@dataclass
class DistortionSet:
    """Distorted centre crops and their labels; index arrays all have length N.

    Attributes:
        images (np.ndarray): ``(N, crop, crop, 3)`` uint8 RGB.
        labels (np.ndarray): class index into :data:`CLASSES`.
        levels (np.ndarray): level index into ``level_values[class]``.
        sources (np.ndarray): photo index into ``photos``.
        is_test (np.ndarray): bool, True for samples of test photos.
        flipped_bits (np.ndarray): bits flipped by FF (-1 for the other classes).
        photos (list[str]): photo file names.
        level_values (dict): ``{class: (level, ...)}``.
    """
    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    levels: np.ndarray = field(repr=False)
    sources: np.ndarray = field(repr=False)
    is_test: np.ndarray = field(repr=False)
    flipped_bits: np.ndarray = field(repr=False)
    photos: list = field(default_factory=list)
    level_values: dict = field(default_factory=dict)

    def __len__(self):
        return len(self.labels)

    @property
    def train_index(self):
        return np.flatnonzero(~self.is_test)

    @property
    def test_index(self):
        return np.flatnonzero(self.is_test)

    def tensors(self, index=None):
        """``(n, 3, crop, crop)`` float tensor in [0, 1] of the samples ``index`` (default: all)."""
        images = self.images if index is None else self.images[index]
        return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float().div_(255.0)

    def summary(self):
        """JSON-ready counts: photos and samples per side, levels, FF bits flipped."""
        ff = self.flipped_bits[self.flipped_bits >= 0]
        return {'classes': list(CLASSES), 'levels': {k: list(v) for k, v in self.level_values.items()},
                'samples': len(self), 'train_samples': int((~self.is_test).sum()),
                'test_samples': int(self.is_test.sum()),
                'train_photos': sorted({self.photos[i] for i in self.sources[~self.is_test]}),
                'test_photos': sorted({self.photos[i] for i in self.sources[self.is_test]}),
                'crop': int(self.images.shape[1]),
                'ff_flipped_bits': {'min': int(ff.min()), 'mean': float(ff.mean()), 'max': int(ff.max())}
                if len(ff) else None}


def build_distortion_set(hr_dir, meta_info=None, regions=4, size=128, crop=96, short_side=512, levels=None,
                         test_fraction=0.3, test_names=None, seed=0, progress=True):
    """Distort ``regions`` regions of every photo with every class and level; keep their centre crops.

    Args:
        hr_dir (str): folder of photos (``meta_info`` optionally names the ones to use).
        regions (int): regions per photo, seeded cells of a ``size`` grid on the resized photo.
        size (int): region side: the image each distortion sees (codecs and blur work on all of it).
        crop (int): side of the centre crop that is kept (the classifiers' input), ``<= size``.
        short_side (int): photos are resized to this short side first (0: keep their size).
        levels (dict, optional): ``{class: levels}`` (default :data:`DEFAULT_LEVELS`).
        test_fraction (float), test_names (list[str], optional): see :func:`split_photos`.

    Returns:
        DistortionSet: ``len(photos) * regions * sum(len(levels))`` samples.
    """
    levels = check_levels(DEFAULT_LEVELS if levels is None else levels)
    if not 0 < crop <= size or regions < 1:
        raise DDRSRError(f'need 0 < --crop <= --size and --regions >= 1, got crop {crop}, size {size}, '
                         f'regions {regions}')
    paths = list_images(hr_dir, meta_info)
    names = [p.replace('\\', '/').split('/')[-1] for p in paths]
    if len(set(names)) != len(names):
        raise DDRSRError(f'photo file names under {hr_dir!r} must be unique (the split is by photo name)')
    is_test_photo = split_photos(names, test_fraction, seed, test_names)
    offset = (size - crop) // 2
    columns = {key: [] for key in ('images', 'labels', 'levels', 'sources', 'flipped_bits')}
    for photo, path in enumerate(tqdm(paths, desc='distort photos', unit='photo', file=sys.stderr,
                                      disable=not progress)):
        image = load_photo(path, short_side)
        if min(image.shape[:2]) < size:
            raise DDRSRError(f'{path}: {image.shape[1]}x{image.shape[0]} after resizing is smaller than the region '
                             f'size {size}; use a smaller --size or a larger --short_side')
        for region_index, region in enumerate(grid_regions(image, size, regions,
                                                           np.random.default_rng([seed, photo]))):
            for label, name in enumerate(CLASSES):
                for level_index, level in enumerate(levels[name]):
                    rng = np.random.default_rng([seed, photo, region_index, label, level_index])
                    distorted, bits = distort(region, name, level, rng)
                    columns['images'].append(distorted[offset:offset + crop, offset:offset + crop])
                    columns['labels'].append(label)
                    columns['levels'].append(level_index)
                    columns['sources'].append(photo)
                    columns['flipped_bits'].append(-1 if bits is None else bits)
    arrays = {key: np.asarray(value) for key, value in columns.items()}
    return DistortionSet(is_test=is_test_photo[arrays['sources']], photos=names, level_values=levels, **arrays)
