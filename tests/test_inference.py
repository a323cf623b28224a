"""Inference: tiling vs whole image, one embedding per photo, image I/O round trips, and the CLI."""
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from ddrsr.cli import upscale
from ddrsr.errors import DDRSRError
from ddrsr.inference import DEFAULT_TILE_PAD, Upsampler, read_image, write_image
from ddrsr.data.photo_io import _orient
from ddrsr.inference.tiling import TileBlender, axis_spans, feather_width, span_weights

from tiny_models import tiny_ddr_net

ONE_LEVEL = 1 / 255


@pytest.fixture(scope='module')
def model():
    return tiny_ddr_net()


@pytest.fixture(scope='module')
def photo():
    """A smooth random RGB photo (70 x 90) in [0, 1], lightly noisy on the left and heavily on the right."""
    rng = np.random.default_rng(0)
    small = Image.fromarray((rng.random((18, 23, 3)) * 255).astype(np.uint8))
    noise = rng.normal(0, 0.03, (70, 90, 3))
    noise[:, 45:] *= 5
    base = np.asarray(small.resize((90, 70), Image.BICUBIC), np.float32) / 255
    return np.clip(base + noise, 0, 1).astype(np.float32)


def _up(model, **kwargs):
    return Upsampler(model=model, device='cpu', backend='torch', **kwargs)  # the torch engine's tiling and I/O


# ----------------------------------------------------------------------------------------------- tiling
def test_tiled_matches_whole_image(model, photo):
    whole = _up(model).enhance(photo)
    tiled = _up(model, tile=32).enhance(photo)  # default tile_pad
    assert tiled.shape == whole.shape == (280, 360, 3)
    assert np.abs(tiled - whole).max() < ONE_LEVEL
    # The same comparison detects seams: without padding the tiles differ from the whole image.
    assert np.abs(_up(model, tile=32, tile_pad=0).enhance(photo) - whole).max() > ONE_LEVEL
    assert DEFAULT_TILE_PAD >= 8  # the tiny network needs >= 8 (measured: pad 4 -> 4e-4, pad 8 -> 3e-8)


def test_on_tile_reports_every_tile_and_can_stop_a_photo(model, photo):
    calls = []
    up = _up(model, tile=32, on_tile=lambda done, total: calls.append((done, total)))
    up.enhance(photo)
    assert calls == [(i, 9) for i in range(10)]  # 70 x 90 in 32 px tiles: 3 x 3, and 0 before the embedding

    def stop_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt
    up.on_tile, calls[:] = stop_after_two, []
    with pytest.raises(KeyboardInterrupt):
        up.enhance(photo)
    up.on_tile = None  # and without it the same Upsampler runs to the end
    assert up.enhance(photo).shape == (280, 360, 3)


def test_feather_weights_sum_to_one_and_keep_borders():
    spans = axis_spans(70, 32, 8)
    assert [(s.start, s.stop) for s in spans] == [(0, 23), (23, 47), (47, 70)]
    feather = feather_width(spans, 8)
    total = np.zeros(70 * 4)
    for span in spans:
        weight = span_weights(span, spans, 4, feather)
        total[4 * span.pad_start:4 * span.pad_stop] += weight
        assert weight.min() >= 0
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    first, last = span_weights(spans[0], spans, 4, feather), span_weights(spans[-1], spans, 4, feather)
    assert first[0] == 1.0 and last[-1] == 1.0  # never 0 at the image border
    assert first[-1] == 0.0  # the outer padding (corrupted by zero padding) is never used
    # Blending constant tiles gives back the constant everywhere.
    blender = TileBlender(37, 53, 2, 16, 6)
    for tile in blender.tiles:
        top, bottom, left, right = tile.read_box
        blender.add(tile, np.full((2 * (bottom - top), 2 * (right - left), 3), 0.5, np.float32))
    np.testing.assert_allclose(blender.result(), 0.5, atol=1e-6)


# ------------------------------------------------------------------------------------------ embedding
def test_embedding_computed_once_and_shared_by_all_tiles(model, photo, monkeypatch):
    upsampler = _up(model, tile=32)
    net = upsampler.model
    encoded, used = [], []
    original_encode, original_forward = net.encode, net.forward

    def counting_encode(lq):
        encoded.append(original_encode(lq))
        return encoded[-1]

    def recording_forward(x, embedding=None):
        used.append(embedding)
        return original_forward(x, embedding=embedding)

    monkeypatch.setattr(net, 'encode', counting_encode)
    monkeypatch.setattr(net, 'forward', recording_forward)
    upsampler.enhance(photo)
    assert len(encoded) == 1
    assert len(used) == 9  # 3 x 3 tiles
    assert all(e is encoded[0] for e in used)


def test_per_tile_embeddings_would_differ(model, photo, monkeypatch):
    """Guard for the test above: embeddings per tile change the output beyond one grey level."""
    whole = _up(model).enhance(photo)
    per_tile = _up(model, tile=32)
    monkeypatch.setattr(per_tile, '_embedding', lambda lq: None)  # the network then encodes each tile
    assert np.abs(per_tile.enhance(photo) - whole).max() > ONE_LEVEL


def test_embedding_from_centre_crop(model, photo, monkeypatch):
    upsampler = _up(model, tile=32, embed_crop=16)
    seen = []
    original = upsampler.model.encode
    monkeypatch.setattr(upsampler.model, 'encode', lambda lq: seen.append(lq.clone()) or original(lq))
    upsampler.enhance(photo)
    expected = torch.from_numpy(photo[27:43, 37:53].transpose(2, 0, 1))[None]
    assert len(seen) == 1 and torch.equal(seen[0], expected)


# -------------------------------------------------------------------------------------- arrays, scale
def test_enhance_keeps_dtype_layout_and_outscale(model):
    rng = np.random.default_rng(1)
    gray16 = (rng.random((9, 11)) * 65535).astype(np.uint16)
    out = _up(model).enhance(gray16)
    assert out.dtype == np.uint16 and out.shape == (36, 44)
    rgba8 = (rng.random((9, 11, 4)) * 255).astype(np.uint8)
    out = _up(model).enhance(rgba8, outscale=2.5)
    assert out.dtype == np.uint8 and out.shape == (22, 28, 4)
    with pytest.raises(DDRSRError):
        _up(model).enhance(rgba8, outscale=0)


def test_fp16_overflow_falls_back_to_fp32(photo):
    def overflowing():
        net = tiny_ddr_net()
        net.conv_last.weight.data *= 1e6  # fp16 overflows to inf; fp32 stays finite (then clipped)
        return net

    expected = _up(overflowing()).enhance(photo[:20, :20])
    with pytest.warns(RuntimeWarning, match='fp32'):
        out = _up(overflowing(), half=True).enhance(photo[:20, :20])
    np.testing.assert_allclose(out, expected, atol=1e-5)


# ---------------------------------------------------------------------------------------- image files
def _save_rgba(path):
    rng = np.random.default_rng(2)
    rgba = (rng.random((10, 12, 4)) * 255).astype(np.uint8)
    rgba[..., 3] = 255
    rgba[:5, :, 3] = 0  # top half transparent
    Image.fromarray(rgba, 'RGBA').save(path)


@pytest.mark.parametrize('kind', ['rgba8', 'gray8', 'rgb16', 'gray16', 'palette'])
def test_file_round_trip_keeps_mode_and_depth(model, tmp_path, kind):
    import cv2

    rng = np.random.default_rng(3)
    src = tmp_path / f'{kind}.png'
    if kind == 'rgba8':
        _save_rgba(src)
    elif kind == 'gray8':
        Image.fromarray((rng.random((10, 12)) * 255).astype(np.uint8), 'L').save(src)
    elif kind == 'rgb16':
        cv2.imwrite(str(src), (rng.random((10, 12, 3)) * 65535).astype(np.uint16))
    elif kind == 'gray16':
        cv2.imwrite(str(src), (rng.random((10, 12)) * 65535).astype(np.uint16))
    else:
        Image.fromarray((rng.random((10, 12, 3)) * 255).astype(np.uint8)).convert('P').save(src)
    result = _up(model).upscale_file(src, tmp_path / 'out' / f'{kind}_out.png')
    written = cv2.imread(result.path, cv2.IMREAD_UNCHANGED)
    assert written.shape[:2] == (40, 48)
    assert written.dtype == (np.uint16 if kind.endswith('16') else np.uint8)
    assert written.ndim == (2 if kind.startswith('gray') else 3)
    if kind == 'rgba8':
        assert written.shape[2] == 4
        alpha = written[..., 3]
        assert alpha[:16].max() == 0 and alpha[24:].min() == 255
    back = read_image(result.path)
    assert back.is_gray == kind.startswith('gray') and back.bit_depth == (16 if kind.endswith('16') else 8)


def test_exif_orientation_applied_and_reset(model, tmp_path):
    rgb = np.zeros((6, 10, 3), np.uint8)
    rgb[:, :5] = (255, 0, 0)  # left half red
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    src = tmp_path / 'rotated.jpg'
    image.save(src, exif=exif.tobytes(), quality=100)
    data = read_image(src)
    assert data.rgb.shape == (10, 6, 3)
    assert data.rgb[2, 3, 0] > 0.9 and data.rgb[8, 3, 0] < 0.1  # red on top after the rotation
    result = _up(model).upscale_file(src, tmp_path / 'rotated_out.jpg')
    with Image.open(result.path) as out:
        assert out.size == (24, 40) and out.getexif().get(0x0112) == 1


@pytest.mark.parametrize('name', ['photo.jpg', 'photo16.png'])
def test_icc_profile_is_kept(model, tmp_path, name):
    import cv2
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    src = tmp_path / name
    if name.endswith('.jpg'):
        Image.fromarray(np.full((8, 9, 3), 120, np.uint8)).save(src, icc_profile=icc)
    else:  # 16-bit: read and written through cv2, the profile is carried by hand
        cv2.imwrite(str(src), np.full((8, 9, 3), 30000, np.uint16))
        write_image(src, read_image(src).rgb, bit_depth=16, icc=icc)
    assert read_image(src).icc == icc
    out = _up(model).upscale_file(src, tmp_path / 'out' / name)
    with Image.open(out.path) as written:
        assert written.info.get('icc_profile') == icc and written.size == (36, 32)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_numpy_orientation_matches_pillow(orientation):
    """The 16-bit (cv2) read path rotates with numpy; it must agree with ImageOps.exif_transpose."""
    pixels = np.arange(6 * 10 * 3, dtype=np.uint8).reshape(6, 10, 3)
    image = Image.fromarray(pixels)
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(_orient(pixels, orientation), expected)


def test_unreadable_files_raise_ddrsr_error(tmp_path):
    junk = tmp_path / 'junk.png'
    junk.write_bytes(b'not an image at all')
    buffer = tmp_path / 'full.jpg'
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(buffer)
    truncated = tmp_path / 'truncated.jpg'
    truncated.write_bytes(buffer.read_bytes()[:300])
    for path in (junk, truncated, tmp_path / 'missing.png'):
        with pytest.raises(DDRSRError, match=path.name):
            read_image(path)


def test_atomic_write_leaves_no_temp_files(tmp_path, monkeypatch):
    image = np.random.default_rng(4).random((8, 8, 3)).astype(np.float32)
    write_image(tmp_path / 'a.png', image)
    write_image(tmp_path / 'b.jpg', image, icc=b'', exif=None)
    assert sorted(os.listdir(tmp_path)) == ['a.png', 'b.jpg']

    def broken_save(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(Image.Image, 'save', broken_save)
    with pytest.raises(OSError):
        write_image(tmp_path / 'c.png', image)
    assert sorted(os.listdir(tmp_path)) == ['a.png', 'b.jpg']


def test_input_is_never_overwritten(model, tmp_path):
    src = tmp_path / 'x.png'
    _save_rgba(src)
    before = src.read_bytes()
    with pytest.raises(DDRSRError, match='overwrite the input'):
        _up(model).upscale_file(src, src)
    assert src.read_bytes() == before


# ------------------------------------------------------------------------------------------------ CLI
def _cli():
    return upscale  # what python inference.py runs


def test_cli_folder_with_a_corrupt_file(tiny_zoo, tmp_path, capsys):
    inputs, outputs = tmp_path / 'in', tmp_path / 'out'
    inputs.mkdir()
    _save_rgba(inputs / 'a.png')
    Image.fromarray(np.full((9, 7), 90, np.uint8), 'L').save(inputs / 'c.jpg')
    (inputs / 'b_corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    (inputs / 'notes.txt').write_text('not an image, not an input')
    cli = _cli()
    status = cli.main(['-i', str(inputs), '-o', str(outputs), '-n', 'tiny_ddr', '--weights', tiny_zoo])
    err = capsys.readouterr().err
    assert status == 1
    assert sorted(os.listdir(outputs)) == ['a_out.png', 'c_out.jpg']
    errors = [line for line in err.splitlines() if line.startswith('ddrsr: error:')]
    assert len(errors) == 1 and 'b_corrupt.png' in errors[0] and 'Traceback' not in err
    # A second run skips what exists, and never touches the inputs.
    status = cli.main(['-i', str(inputs / 'a.png'), '-o', str(outputs), '-n', 'tiny_ddr'])
    assert status == 0 and 'skip' in capsys.readouterr().err
    assert cli.main(['-i', str(inputs / 'a.png'), '-o', str(inputs), '--suffix', '', '-n', 'tiny_ddr']) == 1
    assert 'overwrite the input' in capsys.readouterr().err


def test_cli_unknown_model_is_one_line(tmp_path, capsys):
    (tmp_path / 'in').mkdir()
    _save_rgba(tmp_path / 'in' / 'a.png')
    status = _cli().main(['-i', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '-n', 'rrdb_ddr_bn_x4_lit'])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert err[0].startswith('ddrsr: error:') and 'rrdb_ddr_bn_x4_lite' in err[0]
