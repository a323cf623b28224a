"""The EMA of the generator's weights: ``ema_decay: auto`` and the horizon check.

BasicSR keeps ``net_g_ema`` with ``decay``; the horizon, ``decay / (1 - decay)`` iterations, is the mean age of what
it averages. One longer than the run leaves the random initial weights in the saved ``params_ema`` (0.999 over a
2k-iteration run kept ~10% of them), so option files are checked against the run length, and ``auto`` derives the
decay from it. The option checks (``ddrsr.training.options``) and the training models (``ddrsr.models.fast_step``)
both use these.
"""
from ddrsr.errors import DDRSRError


#: The longest EMA horizon allowed, as a share of ``total_iter``. The horizon is the mean age of what the EMA
#: averages, ``decay / (1 - decay)`` iterations (~``1 / (1 - decay)`` for the usual decays near 1).
MAX_EMA_HORIZON_SHARE = 0.1
#: ``ema_decay: auto`` sets the horizon to this share of ``total_iter``: the initial weights' share in
#: ``params_ema`` at the end is then ``decay ** total_iter ~ exp(-20)``.
AUTO_EMA_HORIZON_SHARE = 0.05


def auto_ema_decay(total_iter):
    """The EMA decay ``ema_decay: auto`` derives from ``total_iter``: a horizon of 5% of the run, at most 0.999.

    >>> auto_ema_decay(2000), auto_ema_decay(400000)
    (0.990099, 0.999)
    """
    horizon = AUTO_EMA_HORIZON_SHARE * int(total_iter)
    return round(min(0.999, horizon / (1 + horizon)), 6)


def resolve_ema_decay(train_opt):
    """Replace ``ema_decay: auto`` in a ``train`` section by its number (in place); returns the decay."""
    if train_opt.get('ema_decay') == 'auto':
        train_opt['ema_decay'] = auto_ema_decay(train_opt['total_iter'])
    return float(train_opt.get('ema_decay') or 0)


def check_ema_horizon(opt, source='<options>'):
    """Refuse an EMA horizon, ``decay / (1 - decay)`` iterations, longer than 10% of ``total_iter``.

    A longer one leaves the initial weights in the saved ``params_ema`` (0.999 over 2,250 iterations: ~10%,
    and a network without a global residual then validates at ~23 dB on clean photos).
    """
    train = opt.get('train') or {}
    decay = train.get('ema_decay')
    if decay in (None, 'auto') or not isinstance(decay, (int, float)) or isinstance(decay, bool):
        if decay not in (None, 'auto'):
            raise DDRSRError(f'{source}: train.ema_decay must be a number in [0, 1) or `auto`, got {decay!r}')
        return
    if not 0 <= decay < 1:
        raise DDRSRError(f'{source}: train.ema_decay must lie in [0, 1), got {decay}')
    total = int(train.get('total_iter') or 0)
    horizon = decay / (1 - decay)
    max_decay = MAX_EMA_HORIZON_SHARE * total / (1 + MAX_EMA_HORIZON_SHARE * total)
    if total and decay > max_decay:
        raise DDRSRError(f'{source}: train.ema_decay {decay} averages over ~{horizon:.0f} iterations, more than '
                         f'10% of total_iter {total}, so params_ema would still hold {decay ** total:.1%} of the '
                         f'initial weights; set train.ema_decay: auto (here {auto_ema_decay(total)}) or at most '
                         f'{max_decay:.4g}')


def ema_leftover(opt):
    """Share of the initial weights still in the EMA network at ``total_iter`` (``decay ** total_iter``)."""
    train = dict(opt.get('train') or {})
    decay = resolve_ema_decay(train) if train.get('total_iter') else 0.0
    return decay ** int(train.get('total_iter', 0)) if decay > 0 else 0.0
