"""Tiny networks for inference/export tests, tuned so that tiling and embedding mistakes show.

The encoder MLP is amplified and the output spread around 0.5 (see
``tiny_ddr_net``): with a near-constant embedding, per-tile embeddings would pass unnoticed.
"""
import torch

from ddrsr.archs import RRDBNetDDR

TINY_ENCODER = {'generator': {'type': 'SRResNet', 'num_feat': 8, 'num_block': 2, 'upscale': 4, 'with_gr': True},
                'layer': 'body.1', 'embed_dim': 8}


def tiny_ddr_net(seed=0, style_std=0.5):
    """RRDBNet-DDR (2 blocks, 8 features) whose embedding matters and whose output looks like an image.

    StyleMods start at zero (identity), so they are randomised; the encoder MLP is amplified so that
    tiles with different noise get clearly different embeddings; the last conv is scaled and biased so
    that outputs spread around 0.5 instead of sitting near 0 (differences are then not hidden by clipping).
    """
    torch.manual_seed(seed)
    model = RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, scale=4, use_ddr=True, encoder=TINY_ENCODER)
    for style_mod in model.style_mods:
        torch.nn.init.normal_(style_mod.to_gamma.weight, std=style_std)
        torch.nn.init.normal_(style_mod.to_beta.weight, std=style_std)
    with torch.no_grad():
        model.encoder.mlp[0].weight.mul_(30)
        model.conv_last.weight.mul_(10)
        model.conv_last.bias.fill_(0.5)
    return model.eval()  # its scale (4) is the architecture's own attribute: nothing is patched on


def tiny_plain_net(seed=0):
    """The same RRDBNet without DDR (no encoder, forward takes only lq)."""
    torch.manual_seed(seed)
    model = RRDBNetDDR(num_feat=8, num_block=2, num_grow_ch=4, scale=4, use_ddr=False)
    return model.eval()
