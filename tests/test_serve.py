"""ddrsr serve: the engine (reports, bad uploads, EXIF/ICC, progress, cancel, cleanup) and the server (queueing four
requests at once, messages instead of tracebacks, cancel, localhost by default). The browser test is
test_serve_browser.py. The shipped default model is used, on small crops of the sample photo."""
import io
import os
import socket
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from conftest import ROOT
from ddrsr.errors import DDRSRError
from ddrsr.inference import Upsampler
from ddrsr.serve.engine import JobCancelled, ServeEngine, report_row

SAMPLE = os.path.join(ROOT, 'inputs', 'seeding_small.png')
MAX_PIXELS = 150 * 150
TILE = 32


def _crop(size, left=0, top=0):
    with Image.open(SAMPLE) as image:
        return image.convert('RGB').crop((left, top, left + size[0], top + size[1]))


def _save(image, path, **options):
    image.save(path, **options)
    return str(path)


@pytest.fixture(scope='module')
def engine(tmp_path_factory):
    with ServeEngine(device='cpu', tile=TILE, max_pixels=MAX_PIXELS,
                     workdir=str(tmp_path_factory.mktemp('serve'))) as served:
        yield served


def _bad_uploads(folder):
    """``{name: file}``: not an image (with an image's name), a truncated JPEG, and one over MAX_PIXELS."""
    (folder / 'notes.jpg').write_text('shopping list, not a photo')
    whole = io.BytesIO()
    _crop((64, 64)).save(whole, 'JPEG', quality=80)
    (folder / 'cut.jpg').write_bytes(whole.getvalue()[:len(whole.getvalue()) // 2])
    _save(_crop((160, 160)), folder / 'huge.png')
    return {name: str(folder / name) for name in ('notes.jpg', 'cut.jpg', 'huge.png')}


# ------------------------------------------------------------------------------------------------ engine
def test_inspect_reports_each_photo_and_names_the_bad_ones(engine, tmp_path):
    good = _save(_crop((64, 48)), tmp_path / 'good.jpg', quality=60)
    bad = _bad_uploads(tmp_path)
    reports = engine.inspect([good, *bad.values()])
    assert [r.name for r in reports] == ['good.jpg', 'notes.jpg', 'cut.jpg', 'huge.png']
    assert reports[0].error is None and reports[0].result['jpeg']['quality'] == 60
    row = report_row(reports[0].result)
    assert row[:3] == ['good.jpg', '64x48', 'q 60 exactly (IJG tables)']
    errors = {r.name: r.error for r in reports[1:]}
    assert 'not a recognised image format' in errors['notes.jpg']
    assert 'truncated' in errors['cut.jpg']
    assert 'over the limit' in errors['huge.png'] and '--max_pixels' in errors['huge.png']
    for name, message in errors.items():  # the user's file name, never the server's temporary path
        assert message.startswith(name) and str(tmp_path) not in message


def test_upscale_keeps_exif_and_icc_and_equals_the_upsampler(engine, tmp_path):
    exif = Image.Exif()
    exif[0x013B] = 'Ada Lovelace'  # Artist
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
    photo = _save(_crop((56, 40)), tmp_path / 'portrait.jpg', quality=85, exif=exif.tobytes(), icc_profile=icc)
    result = engine.upscale(photo, 0.5)
    assert os.path.dirname(os.path.dirname(result.path)) == engine.workdir
    with Image.open(result.path) as written:
        assert written.size == (224, 160) == (result.width, result.height)
        assert written.getexif()[0x013B] == 'Ada Lovelace' and written.info['icc_profile'] == icc
        pixels = np.asarray(written)
    assert result.before.shape == result.after.shape == (160, 224, 3)
    direct = Upsampler(model=engine.model, device='cpu', tile=TILE, strength=0.5, backend='torch')
    expected = direct.upscale_file(photo, str(tmp_path / 'direct.jpg')).path
    assert np.array_equal(np.asarray(Image.open(expected)), pixels)


def test_progress_per_tile_and_cancel_leaves_nothing(engine, tmp_path):
    photo = _save(_crop((80, 70)), tmp_path / 'p.png')
    calls = []
    engine.upscale(photo, 1.0, on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 9) for i in range(1, 10)] and engine.tile_count(70, 80) == 9

    cancel, seen = threading.Event(), []

    def stop_after_two(done, total):
        seen.append(done)
        if done == 2:
            cancel.set()
    before = set(os.listdir(engine.workdir))
    with pytest.raises(JobCancelled, match='nothing was written'):
        engine.upscale(photo, 1.0, on_progress=stop_after_two, cancel=cancel)
    assert seen == [1, 2] and set(os.listdir(engine.workdir)) == before
    assert engine.upscale(photo, 1.0).width == 320  # the model is whole again after a cancel


def test_preview_and_strength_checks(engine, tmp_path):
    # A noisy photo: there strength 0 (treat as clean) and 1.5 (restore hard) must differ clearly, whatever the
    # weights; on a clean crop a model that leaves clean photos alone gives nearly the same preview at both.
    pixels = np.asarray(_crop((96, 96)), dtype=np.float64)
    noisy = np.clip(pixels + np.random.RandomState(0).normal(0, 20, pixels.shape), 0, 255).round().astype(np.uint8)
    photo = _save(Image.fromarray(noisy), tmp_path / 'p.png')
    before, low = engine.preview(photo, 0.0)
    _, high = engine.preview(photo, 1.5)
    assert before.shape == low.shape == (256, 256, 3) and before.dtype == np.uint8
    assert np.abs(low.astype(int) - high.astype(int)).mean() > 0.5  # the strength changes the preview
    with pytest.raises(DDRSRError, match='strength must be from 0'):
        engine.preview(photo, 2)


def test_close_removes_the_temporary_folder(tmp_path):
    engine = ServeEngine(device='cpu', workdir=str(tmp_path))
    photo = _save(_crop((32, 32)), tmp_path / 'p.png')
    result = engine.upscale(photo, 1.0)
    assert os.path.isfile(result.path)
    engine.close()
    assert not os.path.exists(engine.workdir) and os.listdir(tmp_path) == ['p.png']


def test_int8_runs_the_upscale_and_the_preview_stays_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv('DDRSR_CACHE', str(tmp_path / 'cache'))
    engine = ServeEngine(device='cpu', workdir=str(tmp_path), precision='int8')
    try:
        assert (engine.upsampler.precision_name, engine.upsampler.backend_name) == ('int8', 'onnx')
        assert next(engine.model.parameters()).dtype == torch.float32  # the inspector's and the preview's network
        photo = _save(_crop((32, 32)), tmp_path / 'p.png')
        assert os.path.isfile(engine.upscale(photo, 1.0).path)
    finally:
        engine.close()


def test_non_ddr_model_is_refused_with_the_way_out():
    with pytest.raises(DDRSRError, match='-n rrdb_ddr_real_x4_lite'):
        ServeEngine('rrdb_clean_x4_lite', device='cpu')


# ------------------------------------------------------------------------------------------------ command
def test_serve_without_gradio_says_how_to_install(monkeypatch, capsys):
    import importlib.util

    from ddrsr.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'gradio' else real(name, *a))
    assert main(['serve']) == 2
    assert 'pip install -e ".[web]"' in capsys.readouterr().err


def test_startup_message_says_who_can_connect():
    from ddrsr.serve.server import startup_message

    local = startup_message('http://127.0.0.1:7860', '127.0.0.1')
    assert 'http://127.0.0.1:7860' in local and '127.0.0.1 only' in local and 'other machines cannot' in local
    assert 'other machines that can reach this port' in startup_message('http://0.0.0.0:7860', '0.0.0.0')


# ------------------------------------------------------------------------------------------------ server
@pytest.fixture(scope='module')
def server(engine):
    pytest.importorskip('gradio')
    from ddrsr.serve.server import start

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    running = start(engine, port=port)
    yield running
    running.app.close()  # the engine fixture removes the folder


def _client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False)


def test_four_requests_at_once_are_queued_and_each_gets_its_own_result(server, engine, tmp_path):
    from gradio_client import handle_file

    jobs = [((48, 40), 0, 0.0), ((40, 48), 30, 0.5), ((44, 44), 60, 1.0), ((36, 52), 90, 1.5)]
    photos = [_save(_crop(size, left=left), tmp_path / f'photo{i}.png') for i, (size, left, _) in enumerate(jobs)]
    expected = [np.asarray(Image.open(engine.upscale(p, s).path)) for p, (_, _, s) in zip(photos, jobs)]
    clients = [_client(server) for _ in jobs]  # four sessions, as four browser tabs
    for client, photo in zip(clients, photos):
        client.predict([handle_file(photo)], api_name='/inspect')
    submitted = [client.submit([handle_file(photo)], 0, strength, api_name='/upscale')
                 for client, photo, (_, _, strength) in zip(clients, photos, jobs)]
    for job, photo, want, (size, _, strength) in zip(submitted, photos, expected, jobs):
        status, _, download = job.result(timeout=120)
        assert f'{4 * size[0]}×{4 * size[1]} at strength {strength:g}' in status
        assert np.array_equal(np.asarray(Image.open(download)), want)


def test_bad_uploads_show_messages_on_the_page(server, tmp_path):
    from gradio_client import handle_file

    bad = _bad_uploads(tmp_path)
    rows, messages, choice, *_ = _client(server).predict([handle_file(p) for p in bad.values()], api_name='/inspect')
    assert rows['data'] == []  # no row for a photo that could not be read
    assert choice['choices'] == [] and choice['value'] is None
    for name in ('notes', 'cut', 'huge'):
        assert name in messages
    assert 'cannot read it as an image' in messages and 'over the limit' in messages
    assert 'Traceback' not in messages and str(tmp_path) not in messages


def test_cancel_stops_a_running_upscale(server, engine, tmp_path):
    from gradio_client import handle_file

    photo = _save(_crop((150, 150)), tmp_path / 'big.png')  # 25 tiles of 32 px: seconds on a CPU
    client = _client(server)
    client.predict([handle_file(photo)], api_name='/inspect')
    job = client.submit([handle_file(photo)], 0, 1.0, api_name='/upscale')
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (job.status().progress_data or job.done()):
        time.sleep(0.05)
    assert not job.done(), 'the upscale finished before it could be cancelled'
    assert client.predict(api_name='/cancel') == 'Cancelled; nothing was written.'
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and engine._lock.locked():  # the job stops at its next tile
        time.sleep(0.05)
    assert not engine._lock.locked()
    assert not [n for n in os.listdir(engine.workdir) if n.startswith('job-') and any(
        f.startswith('big_') for f in os.listdir(os.path.join(engine.workdir, n)))]
