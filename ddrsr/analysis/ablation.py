"""The DDR ablation's verdict: does DDR guidance beat the same network without it, seed by seed?

Each seed trains a plain network and a DDR-guided one from the same initialisation, on the same data, for
the same number of iterations. The comparison is paired: DDR's gain is its mean PSNR over the degraded specs
minus the plain network's, per seed, and the ablation passes only when every seed gains at least ``margin``.
"""
from dataclasses import dataclass

from ddrsr.results_report import DEGRADED_SPECS, mean_psnr as report_mean_psnr


def mean_psnr(result, specs=DEGRADED_SPECS):
    """Mean PSNR over ``specs`` of one ``ddrsr.evaluation.evaluate`` result; KeyError naming missing specs.

    >>> mean_psnr({'blur2': {'psnr': 30.0}, 'noise20': {'psnr': 28.0}, 'blur2_noise20': {'psnr': 26.0}})
    28.0
    """
    mean = report_mean_psnr(result, specs)
    if mean is None:
        raise KeyError(f'the result lacks specs {[s for s in specs if s not in result]}; evaluate them too')
    return mean


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
    gains = {seed: mean_psnr(ddr[seed], specs) - mean_psnr(plain[seed], specs) for seed in sorted(plain)}
    return AblationVerdict(gains=gains, margin=margin)
