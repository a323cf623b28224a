"""Shared by ddrsr's SR models: an extra loss towards a teacher's output, where the batch carries one.

Option key (in ``train:``)::

    train:
      distill_opt: {type: L1Loss, loss_weight: 1.0}   # any BasicSR loss

The batches come from :class:`~ddrsr.data.distill_pool.DistillPoolDataset`: ``teacher`` (the teacher's output)
and ``distill_weight`` (1 where the teacher is a target for that sample, 0 where only the HR is). The loss is
taken over the samples whose weight is positive, and is zero for a batch without any, so the log keeps one
``l_distill`` line. Validation batches have no teacher and are not touched.
"""
import torch


class DistillationMixin:
    """Adds ``train.distill_opt``; place it before :class:`~ddrsr.models.fast_step.FastStepMixin`."""

    def init_training_settings(self):
        super().init_training_settings()
        from basicsr.losses import build_loss

        loss_opt = self.opt['train'].get('distill_opt')
        self.cri_distill = build_loss(loss_opt).to(self.device) if loss_opt else None

    def feed_data(self, data):
        super().feed_data(data)
        self.teacher = data['teacher'].to(self.device) if 'teacher' in data else None
        self.distill_weight = data['distill_weight'].to(self.device) if 'distill_weight' in data else None

    def extra_losses(self, output):
        losses = super().extra_losses(output)
        if getattr(self, 'cri_distill', None) is None or self.teacher is None:
            return losses
        chosen = self.distill_weight > 0 if self.distill_weight is not None else None
        if chosen is None:
            losses['l_distill'] = self.cri_distill(output.float(), self.teacher)
        elif bool(chosen.any()):
            losses['l_distill'] = self.cri_distill(output[chosen].float(), self.teacher[chosen])
        else:
            losses['l_distill'] = torch.zeros((), device=output.device)
        return losses
