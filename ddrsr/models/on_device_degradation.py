"""Shared by ddrsr's models: synthesize the LQ batch on the training device inside ``feed_data``."""
import torch

from ddrsr.data.random_degradation import RandomDegradation


class OnDeviceDegradationMixin:
    """Turns HR-only training batches into (LQ, GT) pairs on ``self.device``.

    The option file's ``degradation:`` block configures :class:`RandomDegradation`; without it the LQ
    is clean bicubic. Batch ``n`` is degraded with a generator seeded from ``manual_seed``, the rank
    and ``n``, so a resumed run continues the same random stream instead of replaying its start.
    Batches that already carry an ``lq`` (validation) pass through unchanged.
    """

    def init_degradation(self):
        self.degradation = RandomDegradation.from_options(self.opt.get('degradation'))
        self.degradation_generator = torch.Generator(device=self.device)
        self.degradation_step = 0

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        self.degradation_step = int(resume_state['iter'])

    @torch.no_grad()
    def synthesize_lq(self, gt):
        """``gt (B, 3, H, W)`` on the device -> ``lq (B, 3, H/scale, W/scale)``."""
        seed = int(self.opt.get('manual_seed') or 0) * 1_000_003 + self.opt.get('rank', 0) * 7919
        self.degradation_generator.manual_seed(seed + self.degradation_step)
        self.degradation_step += 1
        return self.degradation(gt, int(self.opt['scale']), self.degradation_generator)

    def feed_data(self, data):
        if 'lq' in data:
            super().feed_data(data)
            return
        self.gt = data['gt'].to(self.device, non_blocking=True)
        self.lq = self.synthesize_lq(self.gt).contiguous()
