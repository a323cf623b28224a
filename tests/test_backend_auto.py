"""The default backend: onnxruntime on the CPU from a shared, atomically written export cache, torch as fallback."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ddrsr.cli import upscale
from ddrsr.errors import DDRSRError
from ddrsr.inference import Upsampler
from ddrsr.inference import onnx_backend
from ddrsr.inference.upsampler import BackendFallbackWarning, choose_backend

from conftest import ROOT
from tiny_models import tiny_ddr_net


@pytest.fixture(scope='module')
def photo():
    return np.random.default_rng(3).random((30, 41, 3)).astype(np.float32)


def test_auto_is_onnxruntime_on_the_cpu_and_torch_on_cuda():
    assert choose_backend('auto', 'cpu') == 'onnx' and choose_backend('auto', 'cuda') == 'torch'
    with pytest.raises(DDRSRError, match='unknown backend'):
        choose_backend('tensorrt', 'cpu')


def test_default_upsampler_runs_onnxruntime_and_equals_torch(photo, onnx_cache):
    auto = Upsampler(model=tiny_ddr_net(), device='cpu', tile=16)
    assert auto.backend_name == 'onnx'
    assert os.path.commonpath([auto.backend.sessions['generator']._model_path, onnx_cache]) == onnx_cache
    # tiles come in several shapes: onnxruntime's memory pattern would keep a block per shape (peak RSS)
    assert not any(session.get_session_options().enable_mem_pattern for session in auto.backend.sessions.values())
    expected = Upsampler(model=tiny_ddr_net(), device='cpu', tile=16, backend='torch').enhance(photo)
    assert np.abs(auto.enhance(photo) - expected).max() < 1e-5


def test_failed_export_falls_back_to_torch_with_one_warning(photo, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('exporter exploded\nsecond line')

    monkeypatch.setattr(onnx_backend, 'cached_split_pair', broken)
    with pytest.warns(BackendFallbackWarning) as caught:
        upsampler = Upsampler(model=tiny_ddr_net(), device='cpu')
    assert len(caught) == 1 and 'exporter exploded' in str(caught[0].message) and '\n' not in str(caught[0].message)
    assert upsampler.backend_name == 'torch' and upsampler.enhance(photo).shape == (120, 164, 3)
    with pytest.raises(RuntimeError, match='exploded'):  # asked for explicitly: no silent substitute
        Upsampler(model=tiny_ddr_net(), device='cpu', backend='onnx')


def test_cli_prints_the_fallback_as_one_line(tiny_zoo, tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.setattr(onnx_backend, 'cached_split_pair', lambda *a, **k: (_ for _ in ()).throw(OSError('disk full')))
    (tmp_path / 'in').mkdir()
    Image.fromarray(np.zeros((9, 11, 3), np.uint8)).save(tmp_path / 'in' / 'a.png')
    status = upscale.main(['-i', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '-n', 'tiny_ddr'])
    warnings = [line for line in capsys.readouterr().err.splitlines() if 'warning' in line.lower()]
    assert status == 0 and warnings == ['ddrsr: warning: the onnxruntime backend is unavailable (disk full); using torch']


_EXPORT = '''
import sys
sys.path.insert(0, {tests!r})
import ddrsr
from ddrsr.inference.onnx_backend import OnnxBackend, cached_split_pair
from tiny_models import tiny_ddr_net
OnnxBackend(*cached_split_pair(tiny_ddr_net(), sys.argv[1]))
'''


def test_two_processes_share_one_cache_folder(tmp_path):
    """Both export into the same folder at once; each write is atomic, so both end with a valid pair."""
    folder = tmp_path / 'shared'
    script = _EXPORT.format(tests=os.path.join(ROOT, 'tests'))
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    runs = [subprocess.Popen([sys.executable, '-c', script, str(folder)], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    assert all(code == 0 for code, _ in results), results
    assert sorted(os.listdir(folder)) == ['encoder.onnx', 'generator.onnx', 'meta.json']  # no temporary files left
    backend = onnx_backend.OnnxBackend(*onnx_backend.cached_split_pair(tiny_ddr_net(), str(folder)))
    lq = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        expected = tiny_ddr_net()(lq)
    assert (backend(lq, backend.encode(lq)) - expected).abs().max() < 1e-5
