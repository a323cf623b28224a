"""Folder runs that are stopped (Ctrl-C, SIGTERM) or share their output folder with another process.

The signal is sent by the run to itself at a chosen moment (HOOK below), so the test does not depend on
timing: during the computation of the third file (it must be abandoned) or during the encoding of the
second output (it must be finished first). An ``os.kill`` of the own process reaches Python's handler
exactly as a signal from a terminal or ``kill`` does.
"""
import os
import subprocess
import sys
import threading
import time

import pytest
import torch
from PIL import Image

from conftest import ROOT
from ddrsr.testing.bad_inputs import texture
from ddrsr.utils.interruption import Interrupted, StopOnSignal, protected
from test_bad_inputs import ARCH, DRIVER
from tiny_models import tiny_ddr_net

TIMEOUT = 240  # s
FILES = 6
# Sends signal SIGNAL to this process at the AT-th call of WHERE (compute: Upsampler.enhance_data;
# write: PIL's Image.save, inside the atomic write), then lets the call go on.
HOOK = '''import os, signal, sys
sys.path[:0] = [{root!r}]
from PIL import Image
from ddrsr.inference.upsampler import Upsampler
where, at, signum = {where!r}, {at!r}, getattr(signal, {signal!r})
calls = [0]
owner, name = (Upsampler, 'enhance_data') if where == 'compute' else (Image.Image, 'save')
original = getattr(owner, name)
def hooked(*args, **kwargs):
    calls[0] += 1
    if calls[0] == at:
        os.kill(os.getpid(), signum)
    return original(*args, **kwargs)
setattr(owner, name, hooked)
'''


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    for index in range(FILES):
        Image.fromarray(texture(20, 24, 3, index)).save(folder / f'photo_{index}.png')
    return folder


@pytest.fixture
def run_cli(tmp_path):
    """``run_cli(*args, hook=None)``: inference.py with the tiny net in a subprocess; returns the process."""
    checkpoint = tmp_path / 'tiny.pth'
    torch.save({'params_ema': tiny_ddr_net().state_dict()}, checkpoint)

    def driver(hook):
        text = DRIVER.format(root=ROOT, tests=os.path.join(ROOT, 'tests'), script=os.path.join(ROOT, 'inference.py'),
                             entry={'file': str(checkpoint), 'scale': 4, 'arch': ARCH})
        if hook:
            where, at, signal_name = hook
            text = HOOK.format(root=ROOT, where=where, at=at, signal=signal_name) + text
        path = tmp_path / f'driver_{"_".join(map(str, hook or ("plain",)))}.py'
        path.write_text(text)
        return path

    def run(*args, hook=None, wait=True):
        env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONIOENCODING='utf-8')
        command = [sys.executable, str(driver(hook)), '-n', 'tiny_ddr', '--backend', 'torch', *map(str, args)]
        if not wait:
            return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                    cwd=str(tmp_path))
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=str(tmp_path))

    return run


def _outputs(folder):
    """Output names, after checking that each is a complete image of the expected size and nothing else is there."""
    names = sorted(os.listdir(folder))
    assert not [n for n in names if n.startswith('.') or n.endswith('.tmp')], names  # no temporary files
    for name in names:
        with Image.open(folder / name) as image:
            image.load()  # decodes every byte: a partial file fails here
            assert image.size in ((96, 80), (48, 40)), (name, image.size)
    return names


@pytest.mark.parametrize('signal_name, where, at, done, status, rerun', [
    ('SIGTERM', 'compute', 3, 2, 143, True),  # files 1-2 written, the third abandoned mid-computation
    ('SIGINT', 'write', 2, 2, 130, False),    # the signal arrives while the second output is encoded: finish it
])
def test_interrupted_run_stops_cleanly_and_the_rerun_does_the_rest(photos, run_cli, tmp_path, signal_name, where,
                                                                   at, done, status, rerun):
    out = tmp_path / 'out'
    proc = run_cli('-i', photos, '-o', out, hook=(where, at, signal_name))
    assert proc.returncode == status, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert (f'ddrsr: interrupted by {signal_name} after {done} of {FILES} file(s) ({done} written, 0 skipped, '
            '0 failed)') in proc.stderr, proc.stderr[-2000:]
    first = _outputs(out)
    assert first == [f'photo_{i}_out.png' for i in range(done)]
    if not rerun:
        return  # one rerun (below) is enough: the skipping does not depend on how the run was stopped
    kept = {name: (out / name).read_bytes() for name in first}
    again = run_cli('-i', photos, '-o', out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count('ddrsr: skip ') == done
    assert _outputs(out) == [f'photo_{i}_out.png' for i in range(FILES)]
    assert all((out / name).read_bytes() == data for name, data in kept.items())  # finished ones not redone


def test_two_processes_share_an_output_folder_without_a_corrupt_file(photos, run_cli, tmp_path):
    """Both write every output (--overwrite), at different scales, while a reader decodes whatever it sees."""
    for index in range(FILES, 40):  # more files, so that the two runs overlap for a while
        Image.fromarray(texture(20, 24, 3, index)).save(photos / f'photo_{index}.png')
    out = tmp_path / 'out'
    out.mkdir()
    seen, problems, running = set(), [], threading.Event()
    running.set()

    def reader():
        while running.is_set():
            for name in os.listdir(out):
                if name.startswith('.'):
                    continue  # a temporary file being written: never under an output's name
                try:
                    with Image.open(out / name) as image:
                        image.load()
                    seen.add(name)
                except FileNotFoundError:
                    pass
                except Exception as error:  # a reader saw a partial or mixed file
                    problems.append((name, repr(error)))
            time.sleep(0.005)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        procs = [run_cli('-i', photos, '-o', out, '--overwrite', '-s', scale, wait=False) for scale in (4, 2)]
        results = [proc.communicate(timeout=TIMEOUT) for proc in procs]
    finally:
        running.clear()
        thread.join()
    for proc, (_, stderr) in zip(procs, results):
        assert proc.returncode == 0, stderr[-2000:]
    assert not problems, problems[:5]
    assert _outputs(out) == sorted(f'photo_{i}_out.png' for i in range(40))
    assert seen  # the reader did look at outputs while they were being written


def test_a_signal_inside_a_protected_block_waits_for_its_end():
    import signal

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught:
        with StopOnSignal() as stop:
            with protected():
                os.kill(os.getpid(), signal.SIGTERM)
                finished = True  # reached: the signal was held
            assert finished and stop.requested == signal.SIGTERM
            stop.raise_if_requested()
    assert caught.value.exit_status == 143
    assert signal.getsignal(signal.SIGTERM) == previous  # the previous handler is back
