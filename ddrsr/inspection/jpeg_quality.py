"""JPEG quality read exactly from a file's quantization tables, against the IJG (libjpeg) tables.

libjpeg, Pillow, OpenCV, ImageMagick and most cameras' "quality" scale the two tables of the JPEG standard's
Annex K the IJG way: ``scale = 5000 / q`` below 50, ``200 - 2 q`` from 50, each entry
``clamp((base * scale + 50) // 100, 1, 255)``. Reading the tables back therefore gives q exactly when the file
was written that way; other encoders (some cameras, Photoshop) use their own tables, and then the nearest IJG
quality is reported with ``exact = False``.
"""
import dataclasses

import numpy as np

from ddrsr.errors import DDRSRError

# JPEG standard, Annex K.1 and K.2, in natural (row-major) order, which is how Pillow returns tables.
IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
IJG_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32)


def ijg_table(base, quality):
    """The IJG table for ``quality`` 1..100 (baseline: entries clamped to 1..255)."""
    quality = int(quality)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


@dataclasses.dataclass
class JpegQuality:
    """What the quantization tables say: ``quality`` (None when the file has no tables, i.e. is not a JPEG),
    ``exact`` (the tables are IJG tables of that quality), ``quality_range`` (every IJG quality giving the
    same tables; qualities near 100 share all-ones tables), and ``error`` (mean absolute difference between
    the file's tables and the nearest IJG tables; 0 when exact)."""

    quality: int = None
    exact: bool = False
    quality_range: tuple = None
    error: float = None

    def describe(self):
        if self.quality is None:
            return 'not a JPEG'
        if self.exact:
            span = '' if self.quality_range[0] == self.quality_range[1] else \
                f' (tables equal for q {self.quality_range[0]}-{self.quality_range[1]})'
            return f'q {self.quality} exactly (IJG tables){span}'
        return f'q ~{self.quality} (non-IJG tables, mean table difference {self.error:.1f})'


def quality_from_tables(tables):
    """:class:`JpegQuality` from quantization tables ``{index: 64 values in natural order}`` (Pillow's
    ``Image.quantization``); an empty or missing table set means "not a JPEG".

    >>> quality_from_tables({0: list(ijg_table(IJG_LUMA, 75)), 1: list(ijg_table(IJG_CHROMA, 75))}).quality
    75
    >>> quality_from_tables({}).describe()
    'not a JPEG'
    """
    if not tables:
        return JpegQuality()
    try:
        luma = np.asarray(tables[min(tables)], dtype=np.int64).reshape(64)
        chroma = np.asarray(tables[sorted(tables)[1]], dtype=np.int64).reshape(64) if len(tables) > 1 else None
    except (ValueError, TypeError):
        raise DDRSRError('the JPEG quantization tables are not 64-entry tables; the file is damaged') from None
    errors = []
    for quality in range(1, 101):
        diff = np.abs(ijg_table(IJG_LUMA, quality) - luma).sum()
        count = 64
        if chroma is not None:
            diff += np.abs(ijg_table(IJG_CHROMA, quality) - chroma).sum()
            count += 64
        errors.append(diff / count)
    errors = np.array(errors)
    matches = np.flatnonzero(errors == 0) + 1
    if len(matches):
        low, high = int(matches.min()), int(matches.max())
        return JpegQuality(quality=int(round((low + high) / 2)), exact=True, quality_range=(low, high), error=0.0)
    best = int(np.argmin(errors)) + 1
    return JpegQuality(quality=best, exact=False, quality_range=(best, best), error=float(errors.min()))


def jpeg_quality(path):
    """:class:`JpegQuality` of the image file at ``path`` ("not a JPEG" for PNG and other formats).

    >>> import io; from PIL import Image
    >>> buffer = io.BytesIO(); Image.new('RGB', (16, 16)).save(buffer, 'JPEG', quality=42)
    >>> jpeg_quality(buffer).describe()
    'q 42 exactly (IJG tables)'

    Raises:
        DDRSRError: the file cannot be opened as an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            tables = getattr(image, 'quantization', None) if image.format == 'JPEG' else None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DDRSRError(f'cannot read {path!r} as an image ({error}); check that it is a photo') from None
    return quality_from_tables(tables or {})
