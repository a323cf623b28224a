"""Crash-safe training for ddrsr's models: atomic checkpoints, and a stop on NaN/Inf losses."""
import math
import os

from ddrsr.checkpoint import atomic_save
from ddrsr.errors import DDRSRError


class CrashSafeMixin:
    """Replaces BasicSR's checkpoint writers and watches every loss it logs.

    * basicsr 1.4.2 ``torch.save``s straight to ``net_g_<iter>.pth`` and ``<iter>.state``: a run killed
      mid-write leaves a truncated file that ``--auto_resume`` then picks and fails on. Here each file is
      written under a temporary name and renamed (:func:`ddrsr.checkpoint.atomic_save`). BasicSR also
      swallows write errors after three tries ("Just ignore it"); here a failed write stops the run, so
      nobody trains for days without checkpoints. BasicSR saves the networks before the state, so a
      ``<iter>.state`` on disk always has its ``net_*_<iter>.pth``.
    * A NaN or Inf loss raises :class:`DDRSRError` in the iteration that produced it. BasicSR's loop
      saves only after ``optimize_parameters`` returns, so the damaged weights are never written, and
      ``--auto_resume`` restarts from the last good checkpoint.
    """

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        # BasicSR calls this first in every iteration; it is the only place a model learns the iteration.
        self.current_iter = current_iter
        super().update_learning_rate(current_iter, warmup_iter)

    def reduce_loss_dict(self, loss_dict):
        """BasicSR's reduction (every model's ``optimize_parameters`` calls it), then a finiteness check."""
        log_dict = super().reduce_loss_dict(loss_dict)
        bad = {name: value for name, value in log_dict.items()
               if isinstance(value, (int, float)) and not math.isfinite(value)}
        if bad:
            where = f' at iteration {self.current_iter}' if getattr(self, 'current_iter', None) else ''
            losses = ', '.join(f'{name} = {value}' for name, value in bad.items())
            raise DDRSRError(f'training diverged{where}: {losses}. Stopped before saving anything from this '
                             'iteration, so the checkpoints on disk are the last good ones. Lower '
                             'train.optim_g.lr (or add a warmup_iter), check the data for broken images, then '
                             'resume with --auto_resume')
        return log_dict

    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's ``save_network`` (same file name and content), written atomically."""
        label = 'latest' if current_iter == -1 else current_iter
        path = os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth')
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError('save_network needs one param_key per network')
        checkpoint = {}
        for network, key in zip(nets, keys):
            state = self.get_bare_model(network).state_dict()
            checkpoint[key] = {(k[len('module.'):] if k.startswith('module.') else k): v.cpu()
                               for k, v in state.items()}
        self._atomic_save(checkpoint, path)

    def save_training_state(self, epoch, current_iter):
        """BasicSR's ``save_training_state`` (epoch, iteration, optimizers, schedulers), written atomically."""
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        self._atomic_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    @staticmethod
    def _atomic_save(obj, path):
        try:
            atomic_save(obj, path)
        except OSError as error:
            raise DDRSRError(f'cannot write checkpoint {path!r} ({error.strerror or error}); free disk space or fix '
                             'the folder permissions, then resume with --auto_resume') from None
