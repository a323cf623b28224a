"""SRResNet generator with or without global residual (the SRGAN used as the DDR encoder)."""
import torch.nn.functional as F
from basicsr.archs.srresnet_arch import MSRResNet
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class SRResNet(MSRResNet):
    """BasicSR's MSRResNet (residual blocks without BN) with the global residual made optional.

    Liu et al. find that the global residual (GR: adding the bilinear-upsampled input to the output)
    is what lets an MSE-trained SRResNet learn degradation-aware deep features. Layer and parameter
    names equal ``MSRResNet``'s, so BasicSR MSRResNet checkpoints load as ``with_gr: true``.

    Args:
        num_in_ch, num_out_ch (int): image channels. Default: 3.
        num_feat (int): feature channels. Default: 64.
        num_block (int): residual blocks; the last one is ``body.{num_block - 1}``. Default: 16.
        upscale (int): 2, 3 or 4. Default: 4.
        with_gr (bool): add the bilinear-upsampled input to the output. Default: True.

    Shapes: ``(B, C, H, W) -> (B, C, H * upscale, W * upscale)``.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4, with_gr=True):
        super().__init__(num_in_ch, num_out_ch, num_feat, num_block, upscale)
        self.with_gr = with_gr

    def forward(self, x):
        feat = self.lrelu(self.conv_first(x))
        out = self.body(feat)
        if self.upscale == 4:
            out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))
        else:
            out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))
        out = self.conv_last(self.lrelu(self.conv_hr(out)))
        if self.with_gr:
            out = out + F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)
        return out
