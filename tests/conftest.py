import os

import pytest
import torch

import ddrsr  # noqa: F401  (installs the basicsr alias and fills the registries)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data')

TINY_ENCODER = {'generator': {'type': 'SRResNet', 'num_feat': 8, 'num_block': 2, 'upscale': 4, 'with_gr': True},
                'layer': 'body.1', 'embed_dim': 8}


def make_tiny_ddr(seed=0, randomize_style=True):
    """A tiny RRDBNetDDR in eval mode; StyleMods are randomised so that the embedding matters."""
    from ddrsr.archs import RRDBNetDDR

    torch.manual_seed(seed)
    model = RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, scale=4, encoder=TINY_ENCODER)
    if randomize_style:
        for mod in model.style_mods:
            torch.nn.init.normal_(mod.to_gamma.weight, std=0.1)
            torch.nn.init.normal_(mod.to_beta.weight, std=0.1)
    model.scale = 4
    return model.eval()


@pytest.fixture
def tiny_ddr():
    return make_tiny_ddr()
