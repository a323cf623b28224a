import os
import sys

import pytest
import torch

import ddrsr

ddrsr.register()  # basicsr's registries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data')
if ROOT not in sys.path:  # benchmarks/ (the benchmark sections) is beside scripts/, not installed
    sys.path.append(ROOT)


@pytest.fixture(scope='session', autouse=True)
def onnx_cache(tmp_path_factory):
    """The ONNX export cache (the default backend's) in a temporary folder, shared by the session and its
    subprocesses, never the user's ~/.cache. Tiny nets built with the same seed share one export."""
    folder = str(tmp_path_factory.mktemp('ddrsr_cache'))
    previous = os.environ.get('DDRSR_CACHE')
    os.environ['DDRSR_CACHE'] = folder
    yield folder
    if previous is None:
        os.environ.pop('DDRSR_CACHE', None)
    else:
        os.environ['DDRSR_CACHE'] = previous


@pytest.fixture(scope='session', autouse=True)
def one_thread():
    """One torch thread: on a loaded 2-core machine, two OpenMP threads are ~50x slower for these tiny nets."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    """Register the tiny DDR network as zoo model 'tiny_ddr' with a checkpoint in tmp_path."""
    from ddrsr import zoo
    from tiny_models import TINY_ENCODER, tiny_ddr_net

    checkpoint = tmp_path / 'tiny.pth'
    torch.save({'params_ema': tiny_ddr_net().state_dict()}, checkpoint)
    arch = {'type': 'RRDBNetDDR', 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4, 'scale': 4, 'use_ddr': True,
            'encoder': TINY_ENCODER}
    monkeypatch.setitem(zoo.MODELS, 'tiny_ddr', {'file': str(checkpoint), 'scale': 4, 'arch': arch})
    return str(checkpoint)
