"""Reading and writing photos for inference, keeping what the user expects to get back.

``read_image`` turns any common file into float32 RGB ``(H, W, 3)`` in [0, 1] plus what is needed to
write a faithful result: the alpha channel, whether the photo was greyscale, its bit depth (8 or 16),
its ICC colour profile and its EXIF block. EXIF orientation is applied to the pixels on read, so the
EXIF written back has its orientation tag reset to 1 (otherwise viewers would rotate the result twice).

``write_image`` writes atomically (a temporary file in the same folder, then ``os.replace``), so an
interrupted run never leaves a half-written image under the final name.

Hostile files fail with one DDRSRError naming the file, never a hang or a huge allocation: only
regular files are opened (a named pipe would block the read forever, a symlink loop is named as such),
and the pixel count in the header is checked against ``max_pixels`` before anything is decoded.
"""
import contextlib
import dataclasses
import errno
import os
import stat
import struct
import zlib

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.errors import DDRSRError

_ORIENTATION_TAG = 0x0112
#: Default limit on the input pixel count (100 megapixels: above any camera; a x4 result of it already
#: needs ~19 GB of float32). Files over it are refused from their header, before decoding.
from ddrsr.defaults import MAX_PIXELS as DEFAULT_MAX_PIXELS  # noqa: E402
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


@dataclasses.dataclass
class ImageData:
    """A photo read for inference.

    Attributes:
        rgb (np.ndarray): float32 ``(H, W, 3)`` in [0, 1], RGB (grey photos are replicated to 3 channels).
        alpha (np.ndarray | None): float32 ``(H, W)`` in [0, 1], or None when the photo has no alpha.
        is_gray (bool): the photo was greyscale; write the result as greyscale.
        bit_depth (int): 8 or 16; write a 16-bit PNG for a 16-bit (or 32-bit int/float) source.
        icc (bytes | None): ICC profile to embed in the output.
        exif (bytes | None): EXIF block (``Exif\\0\\0`` + TIFF data) with orientation reset to 1.
        format (str): the source format as Pillow names it ('PNG', 'JPEG', ...).
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    is_gray: bool = False
    bit_depth: int = 8
    icc: bytes | None = None
    exif: bytes | None = None
    format: str = ''


def _exif_bytes(image):
    """The EXIF block of ``image`` with orientation set to 1, or None when it has no EXIF."""
    if not image.info.get('exif'):
        return None
    exif = Image.Exif()  # a fresh copy: editing image.getexif() in place would hide the orientation
    exif.load(image.info['exif'])
    exif[_ORIENTATION_TAG] = 1
    return exif.tobytes()


def _orient(array, orientation):
    """Apply EXIF ``orientation`` (1..8) to an ``(H, W[, C])`` array as ``ImageOps.exif_transpose`` does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](array)) if orientation in ops else array


def _needs_cv2(path, image):
    """True for 16-bit PNG/TIFF files: Pillow reads 16-bit RGB(A) as 8-bit, so cv2 reads those instead."""
    if image.format == 'PNG':
        with open(path, 'rb') as f:
            header = f.read(26)
        return len(header) == 26 and header[24] == 16  # IHDR bit depth
    if image.format == 'TIFF':
        bits = image.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return 16 in bits and not image.mode.startswith('I;16')  # Pillow reads 16-bit grey TIFF itself
    return False


def _read_cv2(path, image):
    """16-bit PNG/TIFF through cv2: returns (rgb, alpha, is_gray) as float32 in [0, 1]."""
    data = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise DDRSRError(f'{path}: cannot decode this 16-bit image (truncated?); re-save it as PNG')
    data = data.astype(np.float32) / (65535.0 if data.dtype == np.uint16 else 255.0)
    is_gray = image.mode.startswith(('L', 'I', 'F')) or data.ndim == 2
    alpha = None
    if data.ndim == 3 and data.shape[2] in (2, 4):
        alpha = data[:, :, -1]
    if data.ndim == 2:
        rgb = np.repeat(data[:, :, None], 3, axis=2)
    elif is_gray:
        rgb = np.repeat(data[:, :, :1], 3, axis=2)
    else:
        rgb = data[:, :, 2::-1]  # BGR(A) -> RGB
    orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    rgb = _orient(rgb, orientation)
    alpha = _orient(alpha, orientation) if alpha is not None else None
    return np.ascontiguousarray(rgb), alpha, is_gray


def _high_depth_gray(image):
    """Modes I;16*, I and F -> (float32 (H, W) in [0, 1], bit depth to write)."""
    data = np.asarray(image)
    if image.mode.startswith('I;16'):
        return data.astype(np.float32) / 65535.0, 16
    data = data.astype(np.float64)
    if image.mode == 'F':
        # Float images have no fixed white point; [0, 1] data is kept, anything else is scaled to its max.
        peak = float(data.max()) if data.size else 1.0
        data = data / peak if peak > 1.0 else data
    else:  # 32-bit int ('I'): 16-bit PNGs in older Pillow, or genuinely wider data
        peak = float(data.max()) if data.size else 0.0
        data = data / (255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak)
    return np.clip(data, 0.0, 1.0).astype(np.float32), 16


def _check_regular_file(path):
    """DDRSRError unless ``path`` is a regular file (checked before opening: a FIFO would block forever)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise DDRSRError(f'{path}: symbolic link loop; fix the link or remove it from the input') from None
        if os.path.islink(path):
            raise DDRSRError(f'{path}: broken symbolic link (to {os.readlink(path)!r}); fix the link or remove '
                             'it from the input') from None
        if error.errno == errno.ENOENT:
            raise DDRSRError(f'{path}: no such file; check the path given to -i') from None
        raise DDRSRError(f'{path}: cannot open it ({error.strerror}); check its permissions') from None
    if not stat.S_ISREG(mode):
        raise DDRSRError(f'{path}: not a regular file (a folder, pipe or device); pass image files only')


def check_pixel_count(path, width, height, max_pixels):
    """DDRSRError when ``width * height`` is over ``max_pixels`` (0 or None: no limit)."""
    if max_pixels and width * height > max_pixels:
        raise DDRSRError(f'{path}: {width}x{height} is {width * height / 1e6:.6g} megapixels, over the limit of '
                         f'{max_pixels / 1e6:g} megapixels (refused before decoding: a header this large is usually a '
                         'corrupt file or a decompression bomb); if the image is genuine, raise the limit with '
                         f'--max_pixels {width * height}')


@contextlib.contextmanager
def _own_pixel_limit():
    """Switch off Pillow's global decompression-bomb limit while ``read_image`` applies its own.

    Pillow refuses above ~179 MP from a module global that a caller's ``--max_pixels`` could not raise;
    ``check_pixel_count`` takes its place, from the same header and equally before decoding.
    """
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Read a photo for inference.

    Args:
        path (str): an image file (PNG, JPEG, WebP, BMP, TIFF, GIF: the first frame).
        max_pixels (int): refuse files whose header claims more pixels (0 or None: no limit).

    Returns:
        ImageData: ``rgb`` float32 ``(H, W, 3)`` in [0, 1], ``alpha`` ``(H, W)`` or None, and metadata.

    Raises:
        DDRSRError: missing, unreadable, truncated, too large or not an image; the message names the file.
    """
    path = os.fspath(path)
    _check_regular_file(path)
    try:
        with _own_pixel_limit(), Image.open(path) as opened:
            check_pixel_count(path, *opened.size, max_pixels)  # from the header, before any decoding
            opened.load()  # decode now: truncated files raise here, not later
            icc = opened.info.get('icc_profile') or None
            exif = _exif_bytes(opened)
            fmt = opened.format or ''
            if _needs_cv2(path, opened):
                rgb, alpha, is_gray = _read_cv2(path, opened)
                return ImageData(rgb, alpha, is_gray, 16, icc, exif, fmt)
            image = ImageOps.exif_transpose(opened)
    except DDRSRError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        reason = 'not a recognised image format, or corrupt' if isinstance(error, UnidentifiedImageError) \
            else str(error).replace(path, '').strip(" '") or type(error).__name__
        raise DDRSRError(f'{path}: cannot read it as an image ({reason}); replace the file or remove it '
                         'from the input') from None

    mode, bit_depth, alpha, is_gray = image.mode, 8, None, False
    if mode == 'CMYK':
        # The ICC profile of a CMYK file describes CMYK ink, not the RGB pixels we produce: drop it.
        image, icc = image.convert('RGB'), None
    elif mode == 'P':
        image = image.convert('RGBA' if 'transparency' in image.info else 'RGB')
    elif mode in ('PA', 'RGBa', 'La'):
        image = image.convert('RGBA' if mode != 'La' else 'LA')
    elif mode == '1':
        image = image.convert('L')
    elif mode not in ('L', 'LA', 'RGB', 'RGBA', 'F', 'I') and not mode.startswith('I;16'):
        image = image.convert('RGB')  # YCbCr, LAB, HSV, RGBX
    mode = image.mode

    if mode in ('F', 'I') or mode.startswith('I;16'):
        gray, bit_depth = _high_depth_gray(image)
        is_gray = True
    else:
        data = np.asarray(image).astype(np.float32) / 255.0
        if mode in ('L', 'LA'):
            is_gray = True
            gray = data if mode == 'L' else data[:, :, 0]
            alpha = data[:, :, 1] if mode == 'LA' else None
        else:
            rgb = data[:, :, :3]
            alpha = data[:, :, 3] if mode == 'RGBA' else None
    if is_gray:
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
    return ImageData(np.ascontiguousarray(rgb), alpha, is_gray, bit_depth, icc, exif, fmt)


def _png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_add_metadata(png, icc, exif):
    """Insert iCCP / eXIf chunks right after IHDR of encoded ``png`` bytes (cv2 cannot write them)."""
    extra = b''
    if icc:
        extra += _png_chunk(b'iCCP', b'ICC profile\x00\x00' + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b'eXIf', exif[6:] if exif.startswith(b'Exif\x00\x00') else exif)
    ihdr_end = len(_PNG_SIGNATURE) + 8 + 13 + 4
    return png[:ihdr_end] + extra + png[ihdr_end:]


def _to_uint(array, bit_depth):
    peak = 65535.0 if bit_depth == 16 else 255.0
    # One float temporary, scaled in place: chained operators would hold two (800 MB at 8K output).
    scaled = np.clip(array, 0.0, 1.0)
    scaled *= peak
    scaled += 0.5
    return scaled.astype(np.uint16 if bit_depth == 16 else np.uint8)


def _encode_png16(pixels, alpha, is_gray, icc, exif):
    """16-bit PNG bytes through cv2 (Pillow cannot write 16-bit colour), with ICC and EXIF added back."""
    if is_gray and alpha is None:
        array = _to_uint(pixels, 16)
    else:
        # cv2 has no grey+alpha PNG writer, so 16-bit grey with alpha is written as 16-bit RGBA.
        bgr = np.repeat(pixels[:, :, None], 3, axis=2) if is_gray else pixels[:, :, ::-1]
        array = _to_uint(bgr if alpha is None else np.dstack([bgr, alpha]), 16)
    ok, encoded = cv2.imencode('.png', array)
    if not ok:
        raise DDRSRError('cv2 could not encode the 16-bit PNG; write with --ext png from an 8-bit input')
    return _png_add_metadata(encoded.tobytes(), icc, exif)


def _pil_image(pixels, alpha, is_gray, fmt):
    """An 8-bit Pillow image in the richest mode ``fmt`` can store (JPEG: no alpha; WebP: no grey)."""
    base = _to_uint(pixels, 8)
    if is_gray and fmt == 'WEBP':
        base, is_gray = np.repeat(base[:, :, None], 3, axis=2), False
    if alpha is not None and fmt in ('PNG', 'WEBP', 'TIFF'):
        return Image.fromarray(np.dstack([base, _to_uint(alpha, 8)]), 'LA' if is_gray else 'RGBA')
    return Image.fromarray(base, 'L' if is_gray else 'RGB')


_FORMATS = {'.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG', '.webp': 'WEBP', '.tif': 'TIFF', '.tiff': 'TIFF',
            '.bmp': 'BMP'}


def write_image(path, rgb, alpha=None, is_gray=False, bit_depth=8, icc=None, exif=None, quality=95):
    """Write an image atomically; the format follows the extension of ``path``.

    Args:
        path (str): output file (.png, .jpg/.jpeg, .webp, .tif/.tiff, .bmp).
        rgb (np.ndarray): float ``(H, W, 3)`` (or ``(H, W)`` when ``is_gray``) in [0, 1], RGB.
        alpha (np.ndarray, optional): float ``(H, W)`` in [0, 1]; dropped for JPEG and BMP.
        is_gray (bool): write one channel (the mean of the three when ``rgb`` has three).
        bit_depth (int): 16 writes a 16-bit PNG (other formats are written with 8 bits).
        icc, exif (bytes, optional): embedded where the format allows (PNG, JPEG, WebP, TIFF).
        quality (int): JPEG / WebP quality.
    """
    path = os.fspath(path)
    fmt = _FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise DDRSRError(f'{path}: cannot write this extension; use one of {", ".join(sorted(_FORMATS))}')
    pixels = np.asarray(rgb, dtype=np.float32)
    if is_gray and pixels.ndim == 3:
        pixels = pixels.mean(axis=2)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        output = AtomicFile(path)
    except OSError as error:  # read-only folder, a file where the folder should be, read-only file system
        raise DDRSRError(f'{path}: cannot write the output ({error.strerror or error}); choose a writable '
                         'output folder (-o)') from None
    with output as f:
        if bit_depth == 16 and fmt == 'PNG':
            f.write(_encode_png16(pixels, alpha, is_gray, icc, exif))
        else:
            options = {}
            if fmt in ('PNG', 'JPEG', 'WEBP', 'TIFF'):
                options.update({k: v for k, v in (('icc_profile', icc), ('exif', exif)) if v})
            if fmt in ('JPEG', 'WEBP'):
                options['quality'] = quality
            _pil_image(pixels, alpha, is_gray, fmt).save(f, format=fmt, **options)
    return path
