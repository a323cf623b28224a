"""The DDR ablation's verdict: does DDR guidance beat the same network without it, seed by seed?

Each seed trains a plain network and a DDR-guided one from the same initialisation, on the same data, for
the same number of iterations. The comparison is paired: DDR's gain is its mean PSNR over the degraded specs
minus the plain network's, per seed, and the ablation passes only when every seed gains at least ``margin``.
"""
import re
from dataclasses import dataclass

from ddrsr.results_report import DEGRADED_SPECS, mean_psnr  # noqa: F401  (scripts/ddr_ablation.py imports both here)


@dataclass(frozen=True)
class AblationVerdict:
    """Per-seed DDR gains (dB) over the plain network, and whether each reaches ``margin``."""
    gains: dict
    margin: float

    @property
    def passed(self):
        return bool(self.gains) and all(gain >= self.margin for gain in self.gains.values())

    @property
    def mean_gain(self):
        return sum(self.gains.values()) / len(self.gains)


def ablation_verdict(plain, ddr, margin=0.2, specs=DEGRADED_SPECS):
    """Paired DDR-minus-plain gains from ``{seed: evaluate-result}`` for each arm.

    >>> plain = {0: {'noise20': {'psnr': 30.0}}, 1: {'noise20': {'psnr': 30.1}}}
    >>> ddr = {0: {'noise20': {'psnr': 30.5}}, 1: {'noise20': {'psnr': 30.2}}}
    >>> verdict = ablation_verdict(plain, ddr, margin=0.2, specs=('noise20',))
    >>> {seed: round(gain, 2) for seed, gain in verdict.gains.items()}, verdict.passed
    ({0: 0.5, 1: 0.1}, False)
    """
    if set(plain) != set(ddr):
        raise ValueError(f'the arms were trained with different seeds: plain {sorted(plain)}, ddr {sorted(ddr)}')
    gains = {seed: mean_psnr(ddr[seed], specs, strict=True) - mean_psnr(plain[seed], specs, strict=True)
             for seed in sorted(plain)}
    return AblationVerdict(gains=gains, margin=margin)


_LOGGED_LR = re.compile(r'iter:\s*([\d,]+), lr:\(([^,)]+)')


def logged_schedule(logs):
    """The learning rates a BasicSR run logged, as text: what each run really trained with.

    ``logs``: the texts of the run's ``train_*.log`` files, oldest first (a resumed run has one per start;
    a later log's value wins for an iteration logged twice). A resumed run keeps the scheduler state it saved,
    so its milestones can differ from the option file's; this reads what happened. Returns e.g.
    ``'1e-04 up to iteration 300, 5e-05 from 400 to 1000'`` (iterations as logged, every ``print_freq``),
    or ``'not logged'``.

    >>> logged_schedule(['[epoch: 1, iter: 100, lr:(1.000e-04,)] ... iter: 200, lr:(1.000e-04,)]',
    ...                  'iter: 300, lr:(5.000e-05,)] iter: 1,000, lr:(5.000e-05,)]'])
    '1e-04 up to iteration 200, 5e-05 from 300 to 1000'
    """
    rates = {}
    for text in logs:
        for iteration, rate in _LOGGED_LR.findall(text):
            rates[int(iteration.replace(',', ''))] = float(rate)
    if not rates:
        return 'not logged'
    phases = []  # [first iteration, last iteration, rate]
    for iteration in sorted(rates):
        if phases and rates[iteration] == phases[-1][2]:
            phases[-1][1] = iteration
        else:
            phases.append([iteration, iteration, rates[iteration]])
    if len(phases) == 1:
        return f'{phases[0][2]:.0e} throughout (logged {phases[0][0]} to {phases[0][1]})'
    parts = [f'{phases[0][2]:.0e} up to iteration {phases[0][1]}']
    parts += [f'{rate:.0e} from {first} to {last}' for first, last, rate in phases[1:]]
    return ', '.join(parts)
