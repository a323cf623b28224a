"""Which generator parameters train, and how fast: ``train.frozen`` and ``train.lr_scale``.

Fine-tuning a trained trunk (Real-ESRGAN's x4plus inside an RRDBNet-DDR) needs three speeds at once: the new
StyleMods and embedding head at the normal learning rate, the upsampling head slower, the trunk frozen or very
slow. Option keys (both in ``train:``, both optional)::

    train:
      frozen: [conv_first, body, conv_body]      # parameter-name prefixes that do not train at all
      lr_scale: {conv_up1: 0.5, conv_hr: 0.5}     # prefix -> factor on optim_g.lr (first matching prefix wins)

A frozen parameter gets ``requires_grad = False``: no weight gradient is computed for it (the backward pass still
flows through it to what trains before it), the optimizer never sees it and the EMA skips it. A prefix whose
``lr_scale`` is 0 is frozen the same way. Freezing happens before the generator is wrapped for distributed training,
so DDP never waits for gradients of frozen parameters. Names are matched
as whole dotted components: ``body`` covers ``body.0.rdb1.conv1.weight`` but not ``conv_body.weight``.
"""
from typing import Dict, Iterable, List, Sequence

from torch import nn

from ddrsr.utils.prefixes import under, under_any


def freeze(network: nn.Module, prefixes: Iterable[str]) -> int:
    """Set ``requires_grad = False`` on ``network``'s parameters under any of ``prefixes``; returns how many."""
    prefixes = tuple(prefixes)
    count = 0
    for name, param in network.named_parameters():
        if under_any(name, prefixes):
            param.requires_grad_(False)
            count += param.numel()
    return count


def frozen_prefixes(train_opt: dict) -> List[str]:
    """``train.frozen`` plus every ``train.lr_scale`` prefix whose factor is 0 or less."""
    scales = train_opt.get('lr_scale') or {}
    return list(train_opt.get('frozen') or []) + [prefix for prefix, factor in scales.items() if float(factor) <= 0]


def parameter_groups(network: nn.Module, lr: float, lr_scale: Dict[str, float]) -> List[dict]:
    """Optimizer groups of ``network``'s trainable parameters: one per distinct learning rate.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    >>> [(g['lr'], len(g['params'])) for g in parameter_groups(net, 1.0, {'1': 0.1})]
    [(1.0, 2), (0.1, 2)]
    """
    groups: Dict[float, list] = {}
    for name, param in network.named_parameters():
        if not param.requires_grad:
            continue
        factor = next((f for prefix, f in lr_scale.items() if under(name, prefix)), 1.0)
        groups.setdefault(lr * float(factor), []).append(param)
    return [{'params': params, 'lr': group_lr} for group_lr, params in groups.items() if group_lr > 0]


def check_prefixes(network: nn.Module, prefixes: Sequence[str], key: str):
    """DDRSRError naming ``train.<key>`` entries that match no parameter (a typo would silently train everything)."""
    from ddrsr.errors import DDRSRError

    names = [name for name, _ in network.named_parameters()]
    unknown = [p for p in prefixes if not any(under(n, p) for n in names)]
    if unknown:
        raise DDRSRError(f'train.{key}: {unknown} match no parameter of {type(network).__name__} '
                         f'(top-level names: {sorted({n.split(".")[0] for n in names})})')


class ParamGroupsMixin:
    """``train.frozen`` and ``train.lr_scale`` (see the module docstring) for a BasicSR SR model.

    Place it before :class:`~ddrsr.models.process_group.ProcessGroupMixin`: the generator is frozen in
    ``model_to_device``, before the DDP wrap. Without either key ``setup_optimizers`` builds the same single-group
    Adam as BasicSR's SRModel, minus one warning per frozen tensor (the frozen DDR encoder alone would print hundreds).
    """

    def model_to_device(self, net):
        train_opt = self.opt.get('train') or {}
        if self.opt.get('is_train') and net is getattr(self, 'net_g', None):  # SRModel: net_g = model_to_device(net_g)
            check_prefixes(net, list(train_opt.get('frozen') or []), 'frozen')
            check_prefixes(net, list(train_opt.get('lr_scale') or {}), 'lr_scale')
            self._frozen_count = freeze(net, frozen_prefixes(train_opt))
        return super().model_to_device(net)

    def setup_optimizers(self):
        from basicsr.utils import get_root_logger

        train_opt = self.opt['train']
        net = self.get_bare_model(self.net_g)
        optim_opt = dict(train_opt['optim_g'])
        optim_type = optim_opt.pop('type')
        lr = optim_opt.pop('lr')
        groups = parameter_groups(net, lr, dict(train_opt.get('lr_scale') or {}))
        trainable = sum(p.numel() for g in groups for p in g['params'])
        rates = ', '.join(f"{group['lr']:.2e}" for group in groups)
        get_root_logger().info(f'Training {trainable:,} parameters in {len(groups)} group(s) (lr {rates}); '
                               f'{getattr(self, "_frozen_count", 0):,} frozen by train.frozen')
        train_opt['optim_g'].pop('type', None)  # BasicSR's convention: the type is consumed here
        self.optimizer_g = self.get_optimizer(optim_type, groups, lr, **optim_opt)
        self.optimizers.append(self.optimizer_g)
