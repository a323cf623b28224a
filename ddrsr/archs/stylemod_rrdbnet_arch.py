"""RRDBNet whose every RRDB block is modulated by a DDR embedding (StyleMod)."""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.archs.arch_util import pixel_unshuffle
from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.utils.registry import ARCH_REGISTRY

from ddrsr.errors import DDRSRError, check_image_batch

from .ddr_encoder_arch import DDREncoder
from .module_utils import is_tracing

GLOBAL_RESIDUALS = (None, 'bicubic')


def steer_embedding(embedding, clean, strength):
    """``clean + strength * (embedding - clean)``: the embedding at restoration strength ``strength``.

    ``embedding`` is ``(B, D)``, a tensor or (from the ONNX encoder) a numpy array; ``clean`` is the ``(D,)``
    clean embedding, a tensor. The result has the type of ``embedding``.

    >>> steer_embedding(torch.full((1, 2), 3.0), torch.ones(2), 0.5)
    tensor([[2., 2.]])
    """
    if strength == 1:
        return embedding
    clean = clean.to(embedding) if torch.is_tensor(embedding) else clean.detach().float().cpu().numpy()
    return clean + strength * (embedding - clean)


@ARCH_REGISTRY.register()
class StyleMod(nn.Module):
    """Per-channel affine modulation from an embedding: ``y = x * (1 + gamma(e)) + beta(e)``.

    gamma and beta are linear maps initialised to zero, so a fresh StyleMod is the identity.

    Shapes: ``x (B, C, H, W)``, ``e (B, D) -> (B, C, H, W)``.
    """

    def __init__(self, embed_dim, num_feat):
        super().__init__()
        self.to_gamma = nn.Linear(embed_dim, num_feat)
        self.to_beta = nn.Linear(embed_dim, num_feat)
        for linear in (self.to_gamma, self.to_beta):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(self, x, embedding):
        gamma = self.to_gamma(embedding)[:, :, None, None]
        beta = self.to_beta(embedding)[:, :, None, None]
        return x * (1 + gamma) + beta


@ARCH_REGISTRY.register()
class RRDBNetDDR(RRDBNet):
    """ESRGAN's RRDBNet with a DDR encoder and a StyleMod after every RRDB block.

    Parameter names of the RRDBNet part are unchanged (StyleMods live in ``style_mods``, the encoder
    in ``encoder``), so plain RRDBNet / Real-ESRGAN checkpoints load with ``strict_load_g: false``.
    Because StyleMod starts as the identity, a fresh RRDBNetDDR computes exactly what its RRDBNet
    weights compute. With ``use_ddr: false`` it *is* an RRDBNet (the baseline), with the same keys.

    Args:
        num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch: as in ``RRDBNet``.
        use_ddr (bool): build the encoder and StyleMods. Default: True.
        encoder (dict): ``DDREncoder`` arguments (``generator``, ``layer``, ``embed_dim``, ...).

        global_residual (str | None): ``'bicubic'`` makes the output ``bicubic(x) + residual``. The last conv
            is then called ``conv_residual`` and starts at zero, so a fresh network *is* bicubic and only has to
            learn the difference; an under-trained RRDBNet without it can be worse than bicubic. The renamed key
            also keeps tools that detect ESRGAN by ``conv_last`` (spandrel) from running such a file without
            its bicubic path. Loading a checkpoint without it (``strict_load_g: false``) keeps the trained trunk
            and starts the residual at zero. Default: None (ESRGAN's key layout).

    With ``use_ddr`` the network also holds a persistent buffer ``clean_embedding`` ``(D,)``: the mean embedding
    of clean (bicubic-downsampled) patches, the point that ``--strength 0`` moves the embedding to (see
    :meth:`steer`). It starts as NaN, meaning "unknown"; ``scripts/compute_clean_embedding.py`` fills it in.

    Shapes: ``(B, 3, H, W) -> (B, 3, H * scale, W * scale)``; ``encode``: ``(B, 3, H, W) -> (B, D)``.

    >>> net = RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, use_ddr=False, global_residual='bicubic')
    >>> tuple(net(torch.rand(1, 3, 8, 8)).shape)
    (1, 3, 32, 32)
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32, use_ddr=True,
                 encoder=None, global_residual=None):
        super().__init__(num_in_ch, num_out_ch, scale=scale, num_feat=num_feat, num_block=num_block,
                         num_grow_ch=num_grow_ch)
        if global_residual not in GLOBAL_RESIDUALS:
            raise ValueError(f'RRDBNetDDR global_residual must be one of {GLOBAL_RESIDUALS}, got {global_residual!r}')
        self.global_residual = global_residual
        self.num_in_ch = num_in_ch
        if global_residual:
            del self.conv_last
            self.conv_residual = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
            nn.init.zeros_(self.conv_residual.weight)
            nn.init.zeros_(self.conv_residual.bias)
        self.use_ddr = use_ddr
        if use_ddr:
            if not encoder:
                raise ValueError('RRDBNetDDR with use_ddr: true needs an `encoder` option '
                                 '(generator, layer, embed_dim)')
            self.encoder = DDREncoder(**encoder)
            self.style_mods = nn.ModuleList(
                StyleMod(self.encoder.embed_dim, num_feat) for _ in range(num_block))
            self.register_buffer('clean_embedding', torch.full((self.encoder.embed_dim,), float('nan')))

    @property
    def has_clean_embedding(self):
        """Whether ``clean_embedding`` is known (computed by scripts/compute_clean_embedding.py), not NaN."""
        return self.use_ddr and bool(torch.isfinite(self.clean_embedding).all())

    def steer(self, embedding, strength=1.0):
        """Move ``embedding`` ``(B, D)`` along the line from the clean embedding: ``e_clean + s (e - e_clean)``.

        ``strength`` 0 treats the photo as clean, 1 returns ``embedding`` unchanged, above 1 restores harder.

        Raises:
            DDRSRError: ``strength != 1`` while ``clean_embedding`` is unknown (NaN).

        >>> net = RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, encoder={'generator': {'type': 'SRResNet',
        ...     'num_feat': 8, 'num_block': 1}, 'layer': 'body.0', 'embed_dim': 4})
        >>> net.clean_embedding.fill_(1.0).shape
        torch.Size([4])
        >>> net.steer(torch.full((1, 4), 3.0), strength=0.5)
        tensor([[2., 2., 2., 2.]])
        """
        if strength == 1:
            return embedding
        if not self.has_clean_embedding:
            raise DDRSRError(f'strength {strength:g} needs the model\'s clean embedding, which these weights lack; '
                             'compute it with python scripts/compute_clean_embedding.py (or use strength 1)')
        return steer_embedding(embedding, self.clean_embedding, strength)

    def encode(self, lq):
        """DDR embedding of a whole image: float ``(B, 3, H, W) -> (B, D)`` (DDRSRError for another shape)."""
        if not self.use_ddr:
            raise DDRSRError('this RRDBNetDDR was built with use_ddr: false and has no encoder to encode with')
        return self.encoder(lq)

    def _check_inputs(self, x, embedding):
        multiple = 4 // self.scale if self.scale in (1, 2) else None  # pixel_unshuffle needs whole blocks
        check_image_batch(x, 'RRDBNetDDR: x', self.num_in_ch, multiple_of=multiple)
        if embedding is None:
            return
        dim = self.encoder.embed_dim if self.use_ddr else None
        shape = tuple(getattr(embedding, 'shape', ()))
        if len(shape) != 2 or shape[0] not in (1, x.shape[0]) or (dim is not None and shape[1] != dim):
            raise DDRSRError(f'RRDBNetDDR: embedding must have shape (B, {dim or "D"}) with B = {x.shape[0]} '
                             f'(or 1, shared), got {shape}; compute it with encode(x)')

    def forward(self, x, embedding=None):
        """SR of ``x``: float ``(B, 3, H, W) -> (B, 3, H * scale, W * scale)``.

        ``embedding`` ``(B, D)`` (or ``(1, D)``, shared by the batch) defaults to ``encode(x)``. Pass a
        precomputed one when ``x`` is a tile of a larger photo: the degradation belongs to the photo, so
        every tile must share one embedding. Wrong shapes raise a DDRSRError naming the argument (checked
        eagerly only: not while tracing, exporting or compiling).
        """
        if not is_tracing():
            self._check_inputs(x, embedding)
        if self.use_ddr and embedding is None:
            embedding = self.encode(x)
        feat = pixel_unshuffle(x, scale=4 // self.scale) if self.scale in (1, 2) else x
        feat = self.conv_first(feat)
        body = feat
        for index, block in enumerate(self.body):
            body = block(body)
            if self.use_ddr:
                body = self.style_mods[index](body, embedding)
        feat = feat + self.conv_body(body)
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode='nearest')))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode='nearest')))
        feat = self.lrelu(self.conv_hr(feat))
        if not self.global_residual:
            return self.conv_last(feat)
        upsampled = F.interpolate(x, scale_factor=self.scale, mode='bicubic', align_corners=False)
        return upsampled + self.conv_residual(feat)
