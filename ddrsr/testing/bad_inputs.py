"""Damaged and unusual image files that inference must survive: the bad-input corpus and a seeded fuzz corpus.

:func:`make_bad_inputs` writes broken files (empty, truncated, text, a "decompression bomb" whose header claims
100000x100000, a symlink loop, a named pipe), odd but valid images (1x1, 3x3, grey, grey+alpha, RGBA, palette,
CMYK JPEG, 16-bit RGB and grey PNG, 32-bit float TIFF, EXIF-rotated JPEG, a name with spaces and non-ASCII
letters) and two output folders: ``readonly_out/`` (mode 0555) and ``existing_out/`` (already holds
``rgba_out.png``). :func:`make_fuzz_corpus` writes small valid PNG, JPEG, WebP and TIFF files, each damaged by bit
flips, a truncation or a header edit. Every file must give an output or one error line; the tests check it
(tests/test_bad_inputs.py, tests/test_fuzz_inputs.py), and ``scripts/make_bad_inputs.py`` writes either corpus
for a manual run of ``inference.py``. Everything is generated, so no binary is committed.
"""
import io
import os
import stat
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

NON_ASCII_NAME = 'ph\u00f4to d\u2019\u00e9t\u00e9 \u65e5\u672c.png'
#: Case file -> what it is. Files that must fail and files that must give an output are in the test.
CASES = {
    'empty.png': 'zero bytes',
    'truncated.jpg': 'a JPEG cut after 40% of its bytes',
    'truncated.png': 'a PNG cut after 40% of its bytes',
    'text.png': 'a text file named .png',
    'tiny_1x1.png': '1x1 RGB, smaller than the tile padding',
    'tiny_3x3.png': '3x3 RGB, smaller than the tile padding',
    'gray.png': '8-bit grey (L)',
    'gray_alpha.png': '8-bit grey + alpha (LA), left half transparent',
    'rgba.png': '8-bit RGBA, top half transparent',
    'palette.png': 'palette (P) without transparency',
    'palette_transparent.png': 'palette (P) with a transparent index',
    'cmyk.jpg': 'CMYK JPEG',
    'rgb16.png': '16-bit RGB PNG',
    'gray16.png': '16-bit grey PNG',
    'float32.tif': '32-bit float grey TIFF, values in [0, 1]',
    'exif_rotated.jpg': 'JPEG stored 14x10 with EXIF orientation 6 (displayed 10x14, red half on top)',
    'bomb.png': 'PNG whose header claims 100000x100000 (10 gigapixels)',
    NON_ASCII_NAME: 'name with spaces and non-ASCII letters',
    'loop.png': 'symbolic link to itself',
    'fifo.png': 'named pipe (opening it for reading would block forever)',
}
READONLY_OUT, EXISTING_OUT = 'readonly_out', 'existing_out'
#: Bytes of the output that already exists in ``existing_out/`` (not a valid PNG, so any rewrite shows).
EXISTING_BYTES = b'an output from an earlier run; it must not be overwritten without --overwrite\n'


def texture(height, width, channels, seed):
    """Smooth random 8-bit pixels ``(height, width, channels)`` (a noise field upsampled), so a network's output
    has structure.

    >>> texture(10, 12, 3, 0).shape, texture(10, 12, 3, 0).dtype.name
    ((10, 12, 3), 'uint8')
    """
    rng = np.random.default_rng(seed)
    small = rng.random((max(2, height // 3), max(2, width // 3), channels)).astype(np.float32)
    big = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    big = big.reshape(height, width, channels)
    return (np.clip(big, 0, 1) * 255 + 0.5).astype(np.uint8)


def _encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width=100000, height=100000):
    """A well-formed PNG header claiming ``width x height`` 8-bit grey pixels, with a few rows of data.

    Decoding it would need ``width * height`` bytes (10 GB); a reader must refuse it from the header.
    """
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b'\x00' * (width + 1) * 4, 9)  # filter byte + zero pixels, four rows
    return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', ihdr) + _png_chunk(b'IDAT', rows)
            + _png_chunk(b'IEND', b''))


def _write(folder, name, data):
    with open(os.path.join(folder, name), 'wb') as f:
        f.write(data)


def _clear(folder):
    """Remove what an earlier run wrote (only the corpus' own names), so it can be written again."""
    for name in list(CASES) + [READONLY_OUT, EXISTING_OUT]:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o755)
            for inner in os.listdir(path):
                os.remove(os.path.join(path, inner))
            os.rmdir(path)
        elif os.path.lexists(path):
            os.remove(path)


def make_bad_inputs(folder):
    """Write every case of :data:`CASES` and the two output folders into ``folder``; returns the case names."""
    os.makedirs(folder, exist_ok=True)
    _clear(folder)
    rgb = texture(24, 32, 3, 0)
    jpeg, png = _encoded(Image.fromarray(rgb), 'JPEG', quality=90), _encoded(Image.fromarray(rgb), 'PNG')
    _write(folder, 'empty.png', b'')
    _write(folder, 'truncated.jpg', jpeg[:len(jpeg) * 2 // 5])
    _write(folder, 'truncated.png', png[:len(png) * 2 // 5])
    _write(folder, 'text.png', b'This is a text file, not a PNG.\n')
    Image.fromarray(texture(1, 1, 3, 1)).save(os.path.join(folder, 'tiny_1x1.png'))
    Image.fromarray(texture(3, 3, 3, 2)).save(os.path.join(folder, 'tiny_3x3.png'))
    Image.fromarray(texture(10, 12, 1, 3)[:, :, 0], 'L').save(os.path.join(folder, 'gray.png'))
    gray_alpha = np.dstack([texture(10, 12, 1, 4), np.full((10, 12, 1), 255, np.uint8)])
    gray_alpha[:, :6, 1] = 0
    Image.fromarray(gray_alpha, 'LA').save(os.path.join(folder, 'gray_alpha.png'))
    rgba = np.dstack([texture(10, 12, 3, 5), np.full((10, 12, 1), 255, np.uint8)])
    rgba[:5, :, 3] = 0
    Image.fromarray(rgba, 'RGBA').save(os.path.join(folder, 'rgba.png'))
    Image.fromarray(texture(10, 12, 3, 6)).convert('P').save(os.path.join(folder, 'palette.png'))
    palette = Image.fromarray(texture(10, 12, 3, 7)).convert('P')
    palette.save(os.path.join(folder, 'palette_transparent.png'), transparency=int(np.asarray(palette)[0, 0]))
    Image.fromarray(texture(10, 12, 3, 8)).convert('CMYK').save(os.path.join(folder, 'cmyk.jpg'), quality=95)
    rng = np.random.default_rng(9)
    rgb16 = cv2.resize(rng.random((4, 5, 3)).astype(np.float32), (12, 10), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(os.path.join(folder, 'rgb16.png'), (np.clip(rgb16, 0, 1) * 65535).astype(np.uint16))
    gray16 = cv2.resize(rng.random((4, 5)).astype(np.float32), (12, 10), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(os.path.join(folder, 'gray16.png'), (np.clip(gray16, 0, 1) * 65535).astype(np.uint16))
    Image.fromarray(np.clip(gray16[::-1], 0, 1).astype(np.float32), 'F').save(os.path.join(folder, 'float32.tif'))
    stored = texture(10, 14, 3, 10)
    stored[:, :7] = (230, 30, 30)  # left half red: orientation 6 (90° clockwise) turns it into the top half
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(os.path.join(folder, 'exif_rotated.jpg'), exif=exif.tobytes(), quality=95)
    _write(folder, 'bomb.png', bomb_png())
    Image.fromarray(texture(9, 11, 3, 11)).save(os.path.join(folder, NON_ASCII_NAME))
    os.symlink('loop.png', os.path.join(folder, 'loop.png'))
    os.mkfifo(os.path.join(folder, 'fifo.png'))
    readonly = os.path.join(folder, READONLY_OUT)
    os.makedirs(readonly)
    os.chmod(readonly, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    os.makedirs(os.path.join(folder, EXISTING_OUT))
    _write(os.path.join(folder, EXISTING_OUT), 'rgba_out.png', EXISTING_BYTES)
    return sorted(CASES)


#: Fuzz sources: extension -> (Pillow format, save options). Small, so 300 files run in seconds.
FUZZ_FORMATS = {'.png': ('PNG', {}), '.jpg': ('JPEG', {'quality': 90}), '.webp': ('WEBP', {'quality': 80}),
                '.tif': ('TIFF', {})}
FUZZ_MUTATIONS = ('bitflip', 'truncate', 'header')


def _fuzz_sources(seed):
    """Each format encoded from an RGB, a grey and an RGBA picture (JPEG: RGB and grey), 12x16 pixels."""
    pictures = [Image.fromarray(texture(12, 16, 3, seed)),
                Image.fromarray(texture(12, 16, 1, seed + 1)[:, :, 0], 'L'),
                Image.fromarray(np.dstack([texture(12, 16, 3, seed + 2), texture(12, 16, 1, seed + 3)]), 'RGBA')]
    sources = []
    for ext, (fmt, options) in FUZZ_FORMATS.items():
        for picture in pictures:
            if fmt == 'JPEG' and picture.mode == 'RGBA':
                continue
            sources.append((ext, _encoded(picture, fmt, **options)))
    return sources


def mutate(data, kind, rng):
    """``data`` damaged one way: ``bitflip`` (1 to 8 random bits), ``truncate`` (cut at a random length,
    possibly zero) or ``header`` (1 to 4 random bytes within the first 64, where sizes, bit depths and
    chunk lengths live)."""
    data = bytearray(data)
    if kind == 'bitflip':
        for _ in range(int(rng.integers(1, 9))):
            position = int(rng.integers(len(data)))
            data[position] ^= 1 << int(rng.integers(8))
    elif kind == 'truncate':
        data = data[:int(rng.integers(len(data)))]
    elif kind == 'header':
        for _ in range(int(rng.integers(1, 5))):
            data[int(rng.integers(min(64, len(data))))] = int(rng.integers(256))
    else:
        raise ValueError(f'unknown mutation {kind!r}; use one of {FUZZ_MUTATIONS}')
    return bytes(data)


def make_fuzz_corpus(folder, count=300, seed=0):
    """Write ``count`` mutated images into ``folder`` (the same bytes for the same seed); returns their names.

    File ``i`` is source ``i % len(sources)`` (see :func:`_fuzz_sources`) with mutation
    ``FUZZ_MUTATIONS[i % 3]``, named ``fuzz_<i>_<mutation>.<ext>``. A mutation may leave a file readable.
    """
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    sources = _fuzz_sources(seed)
    names = []
    for index in range(count):
        ext, data = sources[index % len(sources)]
        kind = FUZZ_MUTATIONS[index % len(FUZZ_MUTATIONS)]
        name = f'fuzz_{index:03d}_{kind}{ext}'
        _write(folder, name, mutate(data, kind, rng))
        names.append(name)
    return names
