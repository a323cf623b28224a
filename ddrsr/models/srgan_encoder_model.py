"""SRGAN training of the degradation encoder's generator, on clean bicubic LR synthesized on device."""
import os

from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.registry import MODEL_REGISTRY

from ddrsr.errors import DDRSRError
from .crash_safe import CrashSafeMixin
from .ddr_chi_validation import DDRChiValidationMixin
from .fast_step import FastStepMixin
from .on_device_degradation import OnDeviceDegradationMixin
from .process_group import ProcessGroupMixin
from .safe_loading import SafeLoadingMixin


def use_local_vgg_weights(train_opt):
    """Point basicsr's perceptual loss at a local VGG19 file instead of a download.

    ``perceptual_opt.vgg_weights`` must name a torchvision ``vgg19`` state dict. basicsr reads the
    module-level ``VGG_PRETRAIN_PATH`` and would otherwise download from the internet, which fails
    offline.
    """
    perceptual = train_opt.get('perceptual_opt')
    if not perceptual:
        return
    path = perceptual.pop('vgg_weights', None)
    if not path or not os.path.isfile(os.path.expanduser(path)):
        raise DDRSRError(f'perceptual_opt needs a local VGG19 weights file in perceptual_opt.vgg_weights (got {path!r}); '
                         'downloads are not possible offline. Put torchvision\'s vgg19 state dict there, or remove '
                         'perceptual_opt to train with pixel + GAN loss only')
    from basicsr.archs import vgg_arch
    vgg_arch.VGG_PRETRAIN_PATH = os.path.expanduser(path)


@MODEL_REGISTRY.register()
class SRGANEncoderModel(CrashSafeMixin, SafeLoadingMixin, DDRChiValidationMixin, FastStepMixin,
                        OnDeviceDegradationMixin, ProcessGroupMixin, SRGANModel):
    """BasicSR's SRGANModel with two changes.

    * The LQ is made on the device from HR patches (clean bicubic unless ``degradation:`` says
      otherwise; the DDR encoder must never see blur or noise).
    * ``train.gan_start_iter``: before it, only the generator trains, with the pixel loss (the usual
      "PSNR first, then GAN" schedule, in one run).
    """

    def init_training_settings(self):
        use_local_vgg_weights(self.opt['train'])
        self.gan_start_iter = int(self.opt['train'].get('gan_start_iter', 0))
        self.init_degradation()
        super().init_training_settings()

    full_fast_step = False  # a GAN step: FastStepMixin adds bf16 autocast, channels-last and the foreach EMA

    def optimize_parameters(self, current_iter):
        with self.autocast():
            if current_iter <= self.gan_start_iter:
                FastStepMixin.optimize_parameters(self, current_iter)  # the pixel-loss step
            else:
                SRGANModel.optimize_parameters(self, current_iter)
