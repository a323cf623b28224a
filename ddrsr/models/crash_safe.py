"""Crash-safe training for ddrsr's models: atomic checkpoints, and a stop on NaN/Inf losses."""
import math
import os

from ddrsr.weights.checkpoint import atomic_save
from ddrsr.errors import DDRSRError


class CrashSafeMixin:
    """Replaces BasicSR's checkpoint writers and watches every loss it logs.

    * basicsr 1.4.2 ``torch.save``s straight to ``net_g_<iter>.pth`` and ``<iter>.state``: a run killed
      mid-write leaves a truncated file that ``--auto_resume`` then picks and fails on. Here each file is
      written under a temporary name and renamed (:func:`ddrsr.weights.checkpoint.atomic_save`). BasicSR also
      swallows write errors after three tries ("Just ignore it"); here a failed write stops the run, so
      nobody trains for days without checkpoints. BasicSR saves the networks before the state, so a
      ``<iter>.state`` on disk always has its ``net_*_<iter>.pth``.
    * A NaN or Inf loss raises :class:`DDRSRError` at the next log step or save, whichever comes first,
      naming the iteration that produced it. The check is a device-side flag, so the training step never
      waits for the device; it is read before every checkpoint, so the damaged weights are never written,
      and ``--auto_resume`` restarts from the last good checkpoint.
    """

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        # BasicSR calls this first in every iteration; it is the only place a model learns the iteration.
        self.current_iter = current_iter
        super().update_learning_rate(current_iter, warmup_iter)

    def reduce_loss_dict(self, loss_dict):
        """BasicSR's reduction (averaged over processes when distributed), kept on the device.

        BasicSR reads every loss with ``.item()`` in every iteration: a host sync per loss and step. Here
        the losses stay device tensors until :meth:`get_current_log` (BasicSR calls it every
        ``print_freq`` iterations), and a device-side flag remembers the first iteration with a NaN or Inf
        loss; it is read at each log and before anything is saved.
        """
        import torch

        with torch.no_grad():
            names = list(loss_dict)
            losses = torch.stack([loss_dict[name].detach().float().mean() for name in names]) if names else None
            if losses is not None and self.opt.get('dist'):
                torch.distributed.reduce(losses, dst=0)
                if self.opt.get('rank', 0) == 0:
                    losses /= self.opt['world_size']
            if losses is not None:
                if getattr(self, '_loss_names', names) != names:
                    # The set of losses changed (e.g. the GAN phase began): settle the old flag first, once.
                    self.check_finite_losses()
                    self._first_bad_iter = self._first_bad_losses = None
                iteration = torch.tensor(float(getattr(self, 'current_iter', 0) or 0), device=losses.device)
                bad = ~torch.isfinite(losses).all()
                first = getattr(self, '_first_bad_iter', None)
                if first is None or first.device != losses.device:
                    first = torch.full((), -1.0, device=losses.device)
                # Remember the first bad iteration (and its losses) without reading anything on the host.
                is_first = bad & (first < 0)
                self._first_bad_iter = torch.where(is_first, iteration, first)
                previous = getattr(self, '_first_bad_losses', None)
                self._first_bad_losses = losses.clone() if previous is None else torch.where(is_first, losses, previous)
        self._loss_names = names
        return {name: losses[index] for index, name in enumerate(names)}

    def check_finite_losses(self):
        """Raise DDRSRError if any loss since the start was NaN or Inf (one host read)."""
        first = getattr(self, '_first_bad_iter', None)
        if first is None:
            return
        first = float(first)
        if first < 0:
            return
        values = self._first_bad_losses.tolist()
        losses = ', '.join(f'{name} = {value}' for name, value in zip(self._loss_names, values) if not math.isfinite(value))
        where = f' at iteration {int(first)}' if first > 0 else ''
        raise DDRSRError(f'training diverged{where}: {losses}. Stopped before saving anything from this '
                         'iteration, so the checkpoints on disk are the last good ones. Lower '
                         'train.optim_g.lr (or add a warmup_iter), check the data for broken images, then '
                         'resume with --auto_resume')

    def get_current_log(self):
        """The losses as floats, read from the device (BasicSR calls this only every ``print_freq`` steps)."""
        self.check_finite_losses()
        return {name: float(value) if hasattr(value, 'item') else value for name, value in self.log_dict.items()}

    def _writes_files(self):
        """Only rank 0 writes checkpoints (BasicSR's ``@master_only``, which these overrides replace)."""
        return self.opt.get('rank', 0) == 0

    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's ``save_network`` (same file name and content), written atomically, by rank 0 only."""
        if not self._writes_files():
            return
        self.check_finite_losses()  # never write weights that a NaN/Inf loss has damaged
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
        """BasicSR's ``save_training_state`` (epoch, iteration, optimizers, schedulers), atomically, by rank 0."""
        if current_iter == -1 or not self._writes_files():
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
