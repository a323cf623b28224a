"""Blind-SR training of RRDBNetDDR (or plain RRDBNet) on LQ synthesized on the device."""
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ddrsr.weights.checkpoint import load_into, load_state_dict_file
from ddrsr.errors import DDRSRError
from .crash_safe import CrashSafeMixin
from .ddr_chi_validation import DDRChiValidationMixin
from .distillation import DistillationMixin
from .fast_step import FastStepMixin
from .on_device_degradation import OnDeviceDegradationMixin
from .param_groups import ParamGroupsMixin
from .process_group import ProcessGroupMixin
from .safe_loading import SafeLoadingMixin
from .srgan_encoder_model import use_local_vgg_weights


@MODEL_REGISTRY.register()
class DDRSRModel(CrashSafeMixin, SafeLoadingMixin, DDRChiValidationMixin, DistillationMixin, FastStepMixin,
                 OnDeviceDegradationMixin, ParamGroupsMixin, ProcessGroupMixin, SRModel):  # ParamGroups freezes before the DDP wrap
    """SRModel for blind SR with optional DDR guidance.

    * ``network_g`` is ``RRDBNetDDR`` (``use_ddr: true``, guided) or ``RRDBNetDDR`` with
      ``use_ddr: false`` / ``RRDBNet`` (the baseline).
    * With DDR, ``path.pretrain_network_encoder`` names the trained SRGAN generator; it is loaded into the
      frozen encoder of ``net_g`` (and of ``net_g_ema``) after any ``pretrain_network_g``, so a plain
      RRDBNet checkpoint can initialise the rest.
    * ``degradation:`` configures the on-device random degradation.
    * ``train.distill_opt`` adds a loss towards a teacher's output (``DistillPoolDataset`` batches), and
      ``train.anchor_opt`` one towards the starting network's output on the other samples (``distillation``).
    * ``train.frozen`` / ``train.lr_scale`` freeze or slow down parts of the generator (``param_groups``).
    """

    def __init__(self, opt):
        super().__init__(opt)
        if getattr(self.get_bare_model(self.net_g), 'use_ddr', False):
            self.load_encoder_weights()

    def init_training_settings(self):
        use_local_vgg_weights(self.opt['train'])
        self.init_degradation()
        super().init_training_settings()

    def load_encoder_weights(self):
        path = self.opt['path'].get('pretrain_network_encoder')
        if not path:
            if self.opt['path'].get('pretrain_network_g'):
                return  # a full RRDBNetDDR checkpoint already holds its encoder
            raise DDRSRError('RRDBNetDDR needs path.pretrain_network_encoder: the trained SRGAN encoder checkpoint '
                             '(train one with options/train_srgan_encoder_x4_lite.yml)')
        state = load_state_dict_file(path)
        nets = [self.net_g] + ([self.net_g_ema] if hasattr(self, 'net_g_ema') else [])
        for net in nets:
            load_into(self.get_bare_model(net).encoder.generator, path,
                      'network_g.encoder.generator must match the SRGAN encoder that was trained', state=state)
        get_root_logger().info(f'Loaded frozen DDR encoder from {path}')
