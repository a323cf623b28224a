"""The shipped weights load, and the default model (what `python inference.py` uses) works."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddrsr.inference import Upsampler, read_image
from ddrsr.loader import load
from ddrsr.zoo import DEFAULT_MODEL, MODELS, weights_path
from conftest import ROOT


@pytest.mark.parametrize('name', sorted(MODELS))
def test_shipped_weights_load(name):
    loaded = load(name)
    model = loaded.network
    assert loaded.scale == 4 and not model.training
    state = model.state_dict()
    assert all(torch.isfinite(v).all() for k, v in state.items() if k != 'clean_embedding')
    if 'clean_embedding' in state:  # NaN means "unknown" (scripts/compute_clean_embedding.py), never half-known
        assert torch.isfinite(state['clean_embedding']).all() or torch.isnan(state['clean_embedding']).all()


def test_default_model_is_a_trained_super_resolver():
    """On a real photo crop the output is close to bicubic; random weights are not."""
    image = read_image(f'{ROOT}/inputs/seeding_small.png').rgb[40:72, 60:100]
    sr = Upsampler(DEFAULT_MODEL, device='cpu').enhance(image)
    assert sr.shape == (128, 160, 3)
    lq = torch.from_numpy(image.transpose(2, 0, 1))[None]
    bicubic = F.interpolate(lq, scale_factor=4, mode='bicubic', align_corners=False)[0].permute(1, 2, 0).numpy()
    psnr = 10 * np.log10(1 / np.mean((sr - bicubic.clip(0, 1)) ** 2))
    assert psnr > 28, psnr


def test_weights_readme_lists_each_sha256():
    import hashlib

    readme = open(f'{ROOT}/weights/README.md').read()
    for name in MODELS:
        digest = hashlib.sha256(open(weights_path(name), 'rb').read()).hexdigest()
        assert digest in readme, name
