"""DDREncoder: a trained SR generator read at one layer, pooled, and mapped to an embedding."""
import torch
from torch import nn

from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from ddrsr.errors import check_image_batch

from .module_utils import get_layer, is_tracing, run_until


@ARCH_REGISTRY.register()
class DDREncoder(nn.Module):
    """Deep degradation representation of a low-quality image.

    ``lq (B, 3, H, W) -> generator features at `layer` (B, C, h, w) -> [mean, std] over space (B, 2C) -> MLP
    -> e (B, D)``

    The generator is any SR network (by default an SRResNet trained as an SRGAN on clean data). When
    ``frozen`` it never trains and always runs in ``eval()`` mode; only the small MLP learns.

    Args:
        generator (dict | nn.Module): the SR network, or a BasicSR network option dict
            (``{'type': 'SRResNet', ...}``).
        layer (str): module name in ``generator.named_modules()``. Default: ``body.15``.
        embed_dim (int): D, the size of the embedding. Default: 64.
        hidden_dim (int): width of the MLP's hidden layer. Default: 128.
        frozen (bool): freeze the generator. Default: True.
    """

    def __init__(self, generator, layer='body.15', embed_dim=64, hidden_dim=128, frozen=True):
        super().__init__()
        self.generator = build_network(dict(generator)) if isinstance(generator, dict) else generator
        self.layer = layer
        self.frozen = frozen
        get_layer(self.generator, layer)  # fail early on a bad layer name
        channels = self._feature_channels()
        self.mlp = nn.Sequential(nn.Linear(2 * channels, hidden_dim), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Linear(hidden_dim, embed_dim))
        self.embed_dim = embed_dim
        if frozen:
            self.generator.requires_grad_(False)
            self.generator.eval()

    def _feature_channels(self):
        first_conv = next(m for m in self.generator.modules() if isinstance(m, nn.Conv2d))
        self.in_channels = first_conv.in_channels
        probe = torch.zeros(1, first_conv.in_channels, 16, 16)
        with torch.no_grad():
            return run_until(self.generator, self.layer, probe).shape[1]

    def train(self, mode=True):
        super().train(mode)
        if self.frozen:
            self.generator.eval()  # a frozen encoder stays in eval mode while the rest trains
        return self

    def features(self, lq):
        """Generator features at ``layer``: ``(B, 3, H, W) -> (B, C, h, w)``."""
        if self.frozen:
            with torch.no_grad():
                return run_until(self.generator, self.layer, lq)
        return run_until(self.generator, self.layer, lq)

    def pooled(self, lq):
        """Spatial mean and standard deviation of the features: ``(B, 3, H, W) -> (B, 2C)``."""
        feat = self.features(lq).flatten(2)
        return torch.cat([feat.mean(dim=2), feat.std(dim=2, unbiased=False)], dim=1)

    def forward(self, lq):
        """The embedding e: float ``(B, 3, H, W) -> (B, D)``. DDRSRError for another shape (checked eagerly only)."""
        if not is_tracing():
            check_image_batch(lq, 'DDREncoder: lq', self.in_channels)
        return self.mlp(self.pooled(lq))
