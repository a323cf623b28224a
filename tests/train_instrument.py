"""Records, for tests, what a training process does: its weights after every step and the files it writes.

``instrument(folder, rank)`` patches :class:`DDRSRModel` so that after each optimizer step the bare
generator's state dict goes to ``folder/rank<R>_iter<I>.pt``, and every checkpoint write appends its
path to ``folder/writes_rank<R>.txt``. Pass pytest's ``monkeypatch.setattr`` as ``setattr`` in-process.
"""
import os

import torch

from ddrsr.models import crash_safe
from ddrsr.models.ddrsr_model import DDRSRModel


def instrument(folder, rank, setattr=setattr):
    os.makedirs(folder, exist_ok=True)
    step, save = DDRSRModel.optimize_parameters, crash_safe.atomic_save

    def optimize_parameters(self, current_iter):
        step(self, current_iter)
        state = {k: v.detach().clone() for k, v in self.get_bare_model(self.net_g).state_dict().items()}
        torch.save(state, os.path.join(folder, f'rank{rank}_iter{current_iter}.pt'))

    def atomic_save(obj, path):
        with open(os.path.join(folder, f'writes_rank{rank}.txt'), 'a') as f:
            f.write(f'{path}\n')
        return save(obj, path)

    setattr(DDRSRModel, 'optimize_parameters', optimize_parameters)
    setattr(crash_safe, 'atomic_save', atomic_save)
