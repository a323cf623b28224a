"""The bad-input corpus (ddrsr.testing.bad_inputs; scripts/make_bad_inputs.py): every case gives a correct output
or one error line.

One ``inference.py`` run over the whole corpus, in a subprocess with a timeout (a hang fails the test),
gives the exit status, stderr and outputs that most tests below check; the output-folder cases and the
pixel limit run in-process. The network is the tiny test net, so the expected pixels of each output are
recomputed here from the file as Pillow/cv2 read it, independently of ``read_image``.
"""
import errno
import hashlib
import os
import stat
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from conftest import ROOT
from ddrsr.cli import upscale
from ddrsr.errors import DDRSRError
from ddrsr.inference import Upsampler, read_image
from ddrsr.testing import bad_inputs
from tiny_models import TINY_ENCODER, tiny_ddr_net

TILE = 16  # the corpus run is tiled, so 1x1 and 3x3 photos meet tiles and padding larger than themselves
TIMEOUT = 300  # s; generous for a loaded 2-core machine (the run itself takes seconds)
NON_ASCII = 'ph\u00f4to d\u2019\u00e9t\u00e9 \u65e5\u672c'
#: Case -> a phrase its one error line must hold.
ERRORS = {'empty.png': 'cannot read it as an image', 'truncated.jpg': 'cannot read it as an image',
          'truncated.png': 'cannot read it as an image', 'text.png': 'cannot read it as an image',
          'bomb.png': '--max_pixels', 'loop.png': 'symbolic link loop', 'fifo.png': 'not a regular file'}
#: Case -> (output file, (height, width), PNG colour type and bit depth or 'JPEG').
#: PNG colour types: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA.
OUTPUTS = {
    'tiny_1x1.png': ('tiny_1x1_out.png', (4, 4), (2, 8)),
    'tiny_3x3.png': ('tiny_3x3_out.png', (12, 12), (2, 8)),
    'gray.png': ('gray_out.png', (40, 48), (0, 8)),
    'gray_alpha.png': ('gray_alpha_out.png', (40, 48), (4, 8)),
    'rgba.png': ('rgba_out.png', (40, 48), (6, 8)),
    'palette.png': ('palette_out.png', (40, 48), (2, 8)),
    'palette_transparent.png': ('palette_transparent_out.png', (40, 48), (6, 8)),
    'cmyk.jpg': ('cmyk_out.jpg', (40, 48), 'JPEG'),
    'rgb16.png': ('rgb16_out.png', (40, 48), (2, 16)),
    'gray16.png': ('gray16_out.png', (40, 48), (0, 16)),
    'float32.tif': ('float32_out.png', (40, 48), (0, 16)),  # a float source is written as 16-bit PNG
    'exif_rotated.jpg': ('exif_rotated_out.jpg', (56, 40), 'JPEG'),  # stored 14x10, displayed 10x14
    f'{NON_ASCII}.png': (f'{NON_ASCII}_out.png', (36, 44), (2, 8)),
}
ARCH = {'type': 'RRDBNetDDR', 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4, 'scale': 4, 'use_ddr': True,
        'encoder': TINY_ENCODER}
# Runs inference.py as a user would, with the tiny net registered in the zoo first.
DRIVER = '''import runpy, sys
sys.path[:0] = [{root!r}, {tests!r}]
from ddrsr import zoo
zoo.MODELS['tiny_ddr'] = {entry!r}
sys.argv = ['inference.py', *sys.argv[1:]]
runpy.run_path({script!r}, run_name='__main__')
'''


def _cli():
    return upscale  # what python inference.py runs


def snapshot(folder):
    """What each entry of ``folder`` is, without ever opening a pipe or following a link."""
    result = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            result[name] = ('link', os.readlink(path))
        elif stat.S_ISREG(mode):
            result[name] = ('file', hashlib.sha256(open(path, 'rb').read()).hexdigest(), stat.S_IMODE(mode))
        elif stat.S_ISDIR(mode):
            result[name] = ('dir', stat.S_IMODE(mode), snapshot(path))
        else:
            result[name] = ('other', stat.S_IFMT(mode))
    return result


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith('ddrsr: error:')]


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / 'bad'
    bad_inputs.make_bad_inputs(str(folder))
    return folder


@pytest.fixture(scope='module')
def corpus_run(tmp_path_factory):
    """``inference.py -i bad/ -o out/ -t 16`` in a subprocess; returns what the tests need."""
    import torch

    base = tmp_path_factory.mktemp('corpus_run')
    folder, out = base / 'bad', base / 'out'
    cases = bad_inputs.make_bad_inputs(str(folder))
    checkpoint = base / 'tiny.pth'
    torch.save({'params_ema': tiny_ddr_net().state_dict()}, checkpoint)
    driver = base / 'driver.py'
    driver.write_text(DRIVER.format(root=ROOT, tests=os.path.join(ROOT, 'tests'),
                                    script=os.path.join(ROOT, 'inference.py'), entry={'file': str(checkpoint), 'scale': 4, 'arch': ARCH}))
    before = snapshot(folder)
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONIOENCODING='utf-8')
    proc = subprocess.run([sys.executable, str(driver), '-i', str(folder), '-o', str(out), '-n', 'tiny_ddr', '-t',
                           str(TILE)], capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=str(base))
    return {'folder': folder, 'out': out, 'cases': cases, 'before': before, 'after': snapshot(folder),
            'returncode': proc.returncode, 'stderr': proc.stderr, 'stdout': proc.stdout}


@pytest.fixture(scope='module')
def reference():
    """The tiny net behind an Upsampler configured as the corpus run is."""
    return Upsampler(model=tiny_ddr_net(), device='cpu', backend='torch', tile=TILE)


# ------------------------------------------------------------------------------------- the folder run
def test_corpus_covers_every_case(corpus_run):
    assert sorted(corpus_run['cases']) == sorted([*ERRORS, *OUTPUTS])


def test_folder_run_continues_exits_nonzero_one_line_per_bad_file(corpus_run):
    stderr = corpus_run['stderr']
    assert corpus_run['returncode'] == 1, stderr
    assert 'Traceback' not in stderr
    lines = error_lines(stderr)
    assert len(lines) == len(ERRORS), lines
    for name, phrase in ERRORS.items():
        (line, ) = [line for line in lines if os.path.join(str(corpus_run['folder']), name) in line]
        assert phrase in line, line
    assert f'{len(ERRORS)} of {len(ERRORS) + len(OUTPUTS)} input(s) failed' in stderr
    assert sorted(os.listdir(corpus_run['out'])) == sorted(out for out, _, _ in OUTPUTS.values())


def test_inputs_are_never_modified(corpus_run):
    assert corpus_run['after'] == corpus_run['before']


# ------------------------------------------------------------------------------------------ outputs
def _png_header(path):
    with open(path, 'rb') as f:
        header = f.read(26)
    assert header[:8] == b'\x89PNG\r\n\x1a\n', path
    return header[25], header[24]  # colour type, bit depth


def _expected(reference, source):
    """What the output of ``source`` must hold, from Pillow/cv2's own reading of the file."""
    if source.endswith('16.png'):
        data = cv2.imread(source, cv2.IMREAD_UNCHANGED)
        return reference.enhance(data if data.ndim == 2 else data[:, :, ::-1])
    with Image.open(source) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode == 'F':
            return reference.enhance(np.asarray(image, np.float32))
        mode = {'P': 'RGBA' if 'transparency' in image.info else 'RGB', 'CMYK': 'RGB', 'LA': 'L'}.get(image.mode,
                                                                                                    image.mode)
        return reference.enhance(np.asarray(image.convert(mode)))


def _as_jpeg(rgb):
    """``rgb`` uint8 after the JPEG round trip the writer applies (quality 95), for like-for-like comparison."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format='JPEG', quality=95)
    return np.asarray(Image.open(buffer).convert('RGB'))


def _read_output(path):
    if path.endswith('.jpg'):
        return np.asarray(Image.open(path).convert('RGB'))
    data = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if data.ndim == 3:
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return data


@pytest.mark.parametrize('case', sorted(OUTPUTS))
def test_output_size_mode_depth_and_pixels(corpus_run, reference, case):
    name, size, kind = OUTPUTS[case]
    path = os.path.join(corpus_run['out'], name)
    with Image.open(path) as written:
        assert written.size[::-1] == size
        if kind == 'JPEG':
            assert written.format == 'JPEG' and written.mode == 'RGB'
            assert written.getexif().get(0x0112, 1) == 1  # orientation applied to the pixels, not left in EXIF
    if kind != 'JPEG':
        assert _png_header(path) == kind
    got, expected = _read_output(path), _expected(reference, os.path.join(corpus_run['folder'], case))
    if case == 'gray_alpha.png':
        got = cv2.imread(path, cv2.IMREAD_UNCHANGED)[:, :, 0]  # cv2 gives grey+alpha as BGRA; compare grey
    if expected.dtype == np.float32:  # float TIFF -> 16-bit PNG
        expected = (expected * 65535 + 0.5).astype(np.uint16)
    if kind == 'JPEG':
        expected = _as_jpeg(expected)
    assert got.shape == expected.shape
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    peak = 65535 if got.dtype == np.uint16 else 255
    assert diff.max() <= 0.002 * peak + 1, diff.max()


@pytest.mark.parametrize('case,transparent', [('rgba.png', np.s_[:16, :]), ('gray_alpha.png', np.s_[:, :20])])
def test_alpha_preserved(corpus_run, case, transparent):
    """The transparent half of the source (top rows / left columns) stays transparent, the rest opaque."""
    with Image.open(os.path.join(corpus_run['out'], OUTPUTS[case][0])) as written:
        alpha = np.asarray(written)[:, :, -1]
    opaque = np.s_[24:, :] if case == 'rgba.png' else np.s_[:, 28:]
    assert alpha[transparent].max() == 0 and alpha[opaque].min() == 255


def test_exif_rotation_is_applied_the_right_way(corpus_run, reference):
    """Orientation 6 turns the stored left half (red) into the top; the other rotation would put it at the bottom."""
    out = _read_output(os.path.join(corpus_run['out'], OUTPUTS['exif_rotated.jpg'][0])).astype(np.float64)
    with Image.open(os.path.join(corpus_run['folder'], 'exif_rotated.jpg')) as stored:
        right = _as_jpeg(reference.enhance(np.asarray(stored.transpose(Image.Transpose.ROTATE_270))))
        wrong = _as_jpeg(reference.enhance(np.asarray(stored.transpose(Image.Transpose.ROTATE_90))))
    assert np.abs(out - right).max() <= 2 and np.abs(out - wrong).mean() > 10
    upright = read_image(os.path.join(corpus_run['folder'], 'exif_rotated.jpg')).rgb
    red = np.array([230, 30, 30]) / 255
    assert upright.shape == (14, 10, 3)
    assert np.abs(upright[:4] - red).max() < 0.12 < np.abs(upright[9:] - red).mean()  # red on top only (JPEG bleeds)


@pytest.mark.parametrize('size', [1, 3])
def test_images_smaller_than_tile_and_padding(size):
    rgb = np.random.default_rng(size).random((size, size, 3)).astype(np.float32)
    whole = Upsampler(model=tiny_ddr_net(), device='cpu', backend='torch').enhance(rgb)
    tiled = Upsampler(model=tiny_ddr_net(), device='cpu', backend='torch', tile=1, tile_pad=24).enhance(rgb)
    assert whole.shape == tiled.shape == (4 * size, 4 * size, 3) and np.isfinite(whole).all()
    assert np.abs(tiled - whole).max() < 1 / 255


# ----------------------------------------------------------------------------------- output folders
def test_existing_output_kept_unless_overwrite(tiny_zoo, corpus, capsys):
    cli = _cli()
    existing = corpus / 'existing_out' / 'rgba_out.png'
    before = existing.read_bytes()
    args = ['-i', str(corpus / 'rgba.png'), '-o', str(corpus / 'existing_out'), '-n', 'tiny_ddr']
    assert cli.main(args) == 0
    assert existing.read_bytes() == before
    assert 'pass --overwrite' in capsys.readouterr().err
    assert cli.main([*args, '--overwrite']) == 0
    with Image.open(existing) as written:
        assert written.size == (48, 40) and written.mode == 'RGBA'
    assert sorted(os.listdir(corpus / 'existing_out')) == ['rgba_out.png']  # no temporary file left


def test_read_only_output_folder_is_one_clear_error(tiny_zoo, corpus, capsys, monkeypatch):
    folder = corpus / 'readonly_out'
    assert not os.stat(folder).st_mode & stat.S_IWUSR
    if os.access(folder, os.W_OK):
        # root ignores mode bits; give the answer the kernel gives everyone else for a 0555 folder.
        real_temporary, real_mkstemp = tempfile.TemporaryFile, tempfile.mkstemp

        def refuse(real):
            def wrapper(*args, **kwargs):
                if os.path.abspath(kwargs.get('dir') or '') == str(folder):
                    raise PermissionError(errno.EACCES, 'Permission denied', str(folder))
                return real(*args, **kwargs)
            return wrapper

        monkeypatch.setattr(tempfile, 'TemporaryFile', refuse(real_temporary))
        monkeypatch.setattr(tempfile, 'mkstemp', refuse(real_mkstemp))
    status = _cli().main(['-i', str(corpus), '-o', str(folder), '-n', 'tiny_ddr'])
    err = capsys.readouterr().err
    (line, ) = error_lines(err)
    assert status == 2 and 'Traceback' not in err
    assert str(folder) in line and 'Permission denied' in line and '-o' in line
    assert os.listdir(folder) == []


def test_read_only_folder_when_writing_one_file(corpus):
    """If the folder turns read-only mid-run, the write fails with a DDRSRError naming the output file."""
    from ddrsr.inference import write_image

    target = corpus / 'text.png' / 'out.png'  # a "folder" that is a file: no OS lets this be created
    with pytest.raises(DDRSRError, match='cannot write the output'):
        write_image(target, np.zeros((4, 4, 3), np.float32))


def test_output_folder_that_is_a_file(tiny_zoo, corpus, capsys):
    status = _cli().main(['-i', str(corpus / 'gray.png'), '-o', str(corpus / 'text.png'), '-n', 'tiny_ddr'])
    (line, ) = error_lines(capsys.readouterr().err)
    assert status == 2 and 'text.png' in line and 'output folder' in line


# --------------------------------------------------------------------------------------- pixel limit
def test_bomb_is_refused_from_its_header_before_decoding(corpus, monkeypatch):
    def no_decoding(self):
        raise AssertionError('the pixels were decoded')

    monkeypatch.setattr(ImageFile.ImageFile, 'load', no_decoding)
    with pytest.raises(DDRSRError, match=r'bomb\.png: 100000x100000 is 10000 megapixels.*--max_pixels'):
        read_image(corpus / 'bomb.png')


def test_max_pixels_option_refuses_and_can_be_raised(tiny_zoo, corpus, tmp_path, capsys):
    cli = _cli()
    src = str(corpus / 'rgb16.png')  # 12 x 10 = 120 pixels
    assert cli.main(['-i', src, '-o', str(tmp_path / 'a'), '-n', 'tiny_ddr', '--max_pixels', '119']) == 1
    (line, ) = error_lines(capsys.readouterr().err)
    assert 'rgb16.png' in line and '--max_pixels 120' in line
    assert cli.main(['-i', src, '-o', str(tmp_path / 'b'), '-n', 'tiny_ddr', '--max_pixels', '120']) == 0
    assert cli.main(['-i', src, '-o', str(tmp_path / 'c'), '-n', 'tiny_ddr', '--max_pixels', '0']) == 0
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(['--max_pixels', 'many'])


def test_max_pixels_for_arrays_and_outscale():
    upsampler = Upsampler(model=tiny_ddr_net(), device='cpu', backend='torch', max_pixels=100)
    with pytest.raises(DDRSRError, match='max_pixels'):
        upsampler.enhance(np.zeros((10, 11, 3), np.float32))
    assert upsampler.enhance(np.zeros((10, 10, 3), np.float32)).shape == (40, 40, 3)
    with pytest.raises(DDRSRError, match='outscale'):  # 10x10 at x5 is over 100 x 4² output pixels
        upsampler.enhance(np.zeros((10, 10, 3), np.float32), outscale=5)


def test_script_runs_again_on_its_own_corpus(corpus):
    before = snapshot(corpus)
    bad_inputs.make_bad_inputs(str(corpus))
    assert snapshot(corpus) == before
