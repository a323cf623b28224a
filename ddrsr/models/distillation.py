"""Shared by ddrsr's SR models: extra losses towards a teacher's output and towards the starting network's own.

Option keys::

    train:
      distill_opt: {type: L1Loss, loss_weight: 1.0}   # any BasicSR loss, towards the pool's teacher
      anchor_opt: {type: L1Loss, loss_weight: 1.0}    # towards a frozen copy of the starting network
    path:
      pretrain_network_anchor: weights/rrdb_ddr_real_x4_lite.pth   # what the anchor loads (required with anchor_opt)
      param_key_anchor: params_ema

The batches come from :class:`~ddrsr.data.distill_pool.DistillPoolDataset`: ``teacher`` (the teacher's output)
and ``distill_weight`` (1 where the teacher is a target for that sample, 0 where only the HR is). The distill loss
is taken over the samples whose weight is positive, and is zero for a batch without any, so the log keeps one
``l_distill`` line. Validation batches have no teacher and are not touched.

Why an anchor: every continuation of the shipped lite model so far (v4-v7 in weights/README.md), on any data mix,
with or without a teacher, lost PSNR on the soft, flat clean photos while it learned something elsewhere: the
network forgets what it did on the samples no new target speaks about. The anchor loss ("learning without
forgetting") keeps the student's outputs near the starting network's on exactly those samples, the ones the teacher
is not a target for (every sample when the batch has no ``distill_weight``). The anchor is loaded from
``path.pretrain_network_anchor`` and not copied from ``net_g``, because on a resumed run ``net_g`` starts from the
last checkpoint, not from where training began.
"""
import copy

import torch

from ddrsr.errors import DDRSRError


class DistillationMixin:
    """Adds ``train.distill_opt`` and ``train.anchor_opt``; place it before
    :class:`~ddrsr.models.fast_step.FastStepMixin`."""

    def init_training_settings(self):
        super().init_training_settings()
        from basicsr.losses import build_loss

        train = self.opt['train']
        self.cri_distill = build_loss(train['distill_opt']).to(self.device) if train.get('distill_opt') else None
        self.cri_anchor, self.net_anchor = None, None
        if train.get('anchor_opt'):
            self.cri_anchor = build_loss(train['anchor_opt']).to(self.device)
            self.net_anchor = self._build_anchor()

    def _build_anchor(self):
        path = self.opt['path'].get('pretrain_network_anchor')
        if not path:
            raise DDRSRError('train.anchor_opt needs path.pretrain_network_anchor: the checkpoint whose outputs the '
                             'student should keep (usually the same file as path.pretrain_network_g)')
        anchor = copy.deepcopy(self.get_bare_model(self.net_g))
        self.load_network(anchor, path, self.opt['path'].get('strict_load_anchor', True),
                          self.opt['path'].get('param_key_anchor', 'params_ema'))
        anchor.eval()
        for parameter in anchor.parameters():
            parameter.requires_grad_(False)
        return anchor

    def feed_data(self, data):
        super().feed_data(data)
        self.teacher = data['teacher'].to(self.device) if 'teacher' in data else None
        self.distill_weight = data['distill_weight'].to(self.device) if 'distill_weight' in data else None

    def _chosen(self, batch_size, device):
        """Which samples the teacher is a target for: none without a teacher, all when the batch does not say."""
        if getattr(self, 'teacher', None) is None:
            return torch.zeros(batch_size, dtype=torch.bool, device=device)
        if getattr(self, 'distill_weight', None) is None:
            return torch.ones(batch_size, dtype=torch.bool, device=device)
        return self.distill_weight > 0

    def extra_losses(self, output):
        losses = super().extra_losses(output)
        chosen = self._chosen(len(output), output.device)
        zero = torch.zeros((), device=output.device)
        if getattr(self, 'cri_distill', None) is not None and getattr(self, 'teacher', None) is not None:
            losses['l_distill'] = self.cri_distill(output[chosen].float(), self.teacher[chosen]) \
                if bool(chosen.any()) else zero
        if getattr(self, 'cri_anchor', None) is not None:
            kept = ~chosen
            if bool(kept.any()):
                with torch.no_grad():
                    target = self.net_anchor(self.lq[kept]).float()
                losses['l_anchor'] = self.cri_anchor(output[kept].float(), target)
            else:
                losses['l_anchor'] = zero
        return losses
