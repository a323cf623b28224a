"""``ddrsr serve`` used as a person would: Debian's chromium, driven by Playwright, on the real command.

Skipped when Gradio, Playwright or a chromium binary is missing (``.ci/run`` installs all three). The page
is served by ``python -m ddrsr.cli serve`` in a child process with the shipped default model; the photo is
the 160 px JPEG sample, so the whole visit takes seconds of model time on a CPU.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from PIL import Image

from conftest import ROOT
from ddrsr.inspection.jpeg_quality import jpeg_quality

pytest.importorskip('gradio')
sync_api = pytest.importorskip('playwright.sync_api')
CHROMIUM = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason='no chromium binary (apt-get install chromium)')

PHOTO = os.path.join(ROOT, 'inputs', 'seeding_detail.jpg')
#: Where the screenshot of the finished page goes (results/ is git-ignored; docs/serve.png is a copy of it).
SCREENSHOT = os.path.join(ROOT, 'results', 'serve', 'serve_page.png')
STARTUP_TIMEOUT = 120  # s: importing torch and Gradio on a loaded 2-core machine


def _free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """``(url, first stderr line)`` of a ``ddrsr serve`` child; stopped with Ctrl+C (SIGINT) afterwards."""
    port = _free_port()
    log = open(tmp_path / 'serve.log', 'w+')
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'TMPDIR': str(tmp_path)}
    child = subprocess.Popen([sys.executable, '-m', 'ddrsr.cli', 'serve', '--port', str(port), '--device', 'cpu'],
                             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    line = ''
    while time.monotonic() < deadline and child.poll() is None:
        log.seek(0)
        line = next((text for text in log if text.startswith('ddrsr serve: open')), '')
        if line:
            break
        time.sleep(0.5)
    if not line:
        child.kill()
        log.seek(0)
        pytest.fail(f'ddrsr serve did not start:\n{log.read()[-3000:]}')
    yield f'http://127.0.0.1:{port}', line
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=30)
    finally:
        child.kill()
    # The temporary folder (uploads, results, Gradio's copies) is gone once the server stops.
    assert not [name for name in os.listdir(tmp_path) if name.startswith('ddrsr-serve-')]


def _sources(component):
    return [image.get_attribute('src') for image in component.locator('img').all()]


def _settle(component):
    """Wait until ``component`` shows no request in progress (Gradio's 'processing' / 'queue' timer)."""
    sync_api.expect(component).not_to_contain_text(re.compile('processing|queue'), timeout=60_000)


def test_upload_inspect_strength_upscale_download(served, tmp_path):
    url, startup = served
    assert url in startup and '127.0.0.1 only' in startup
    quality = jpeg_quality(PHOTO).quality
    assert quality is not None
    with Image.open(PHOTO) as photo:
        width, height = photo.size
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1000}, accept_downloads=True)
            page.goto(url, wait_until='domcontentloaded')
            page.locator('#photos input[type=file]').set_input_files(PHOTO)
            report = page.locator('#report')
            sync_api.expect(report).to_contain_text(f'q {quality} exactly', timeout=60_000)  # the JPEG quality
            preview = page.locator('#preview')
            sync_api.expect(preview.locator('img').first).to_be_visible(timeout=60_000)
            _settle(preview)
            shown = _sources(preview)

            # Move the slider as a person does with the keyboard: from the recommended value, +0.25.
            slider = page.locator('#strength input[type=range]')
            start = float(slider.input_value())
            slider.focus()
            for _ in range(5):
                slider.press('ArrowRight')
            expected = min(1.5, start + 0.25)
            assert float(slider.input_value()) == pytest.approx(expected)
            deadline = time.monotonic() + 60  # the preview is redrawn at the new strength
            while _sources(preview) == shown and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            assert _sources(preview) != shown, 'moving the strength slider did not redraw the preview'
            _settle(preview)

            page.locator('#run').click()
            status = page.locator('#status')
            sync_api.expect(status).to_contain_text(f'{4 * width}×{4 * height} at strength {expected:g}',
                                                    timeout=120_000)
            sync_api.expect(page.locator('#result img').first).to_be_visible(timeout=30_000)
            _settle(page.locator('#result'))
            with page.expect_download(timeout=30_000) as download_info:
                page.locator('#download a').first.click()
            saved = tmp_path / download_info.value.suggested_filename
            download_info.value.save_as(saved)
            with Image.open(saved) as result:
                assert result.size == (4 * width, 4 * height)
                assert result.format == 'JPEG'  # the input's format is kept, as inference.py does

            os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
            page.screenshot(path=SCREENSHOT, full_page=True)
            assert os.path.getsize(SCREENSHOT) > 10_000
            assert not re.search(r'Traceback|Error:', page.inner_text('body'))
        finally:
            browser.close()
