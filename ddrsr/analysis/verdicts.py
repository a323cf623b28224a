"""Does this run reproduce Liu et al.'s DDR findings? Verdicts from cached CHI numbers.

:mod:`ddrsr.analysis.reproduction` (behind ``scripts/reproduce_ddr.py``) runs the trainings and analyses, caches
their results, and words what these functions decide. ``layers`` maps a network key to the cached output of
``ddrsr analyze``, ``{'result': {'layers': [row, ...]}, ...}``; a row has ``layer`` and ``chi`` (``{'mean', 'std'}``).

>>> spearman([1, 2, 3, 4], [1, 3, 2, 5])
0.8
>>> table = [{'model': m, 'chi': {'mean': v, 'std': 0}} for m, v in (('clean', 90.0), ('bn', 9.0), ('ddr', 3.0))]
>>> generalization_order(table, ('clean', 'bn', 'ddr'))
('clean (90) > bn (9) > ddr (3)', True)
"""
import collections


def chi(row):
    """The mean DDR-CHI of an analysis row."""
    return row['chi']['mean']


def chi_text(value):
    """One CHI value in a verdict's words: three significant digits, or 'not measured' for None.

    >>> chi_text(0.0053312), chi_text(12.0), chi_text(None)
    ('0.00533', '12', 'not measured')
    """
    return 'not measured' if value is None else f'{value:.3g}'


def layer_chi(layers, key, layer):
    """CHI mean of ``layer`` in the cached analysis of model ``key``, or None when not measured."""
    entry = layers.get(key)
    if not entry:
        return None
    rows = {row['layer']: row for row in entry['result']['layers']}
    return chi(rows[layer]) if layer in rows else None


Expectation = collections.namedtuple('Expectation', 'text measured met models')


def paper_expectations(layers, last, hundreds=100, no_clustering=20, separable=1.0):
    """``[Expectation(text, measured, met, models)]`` for the SRResNet/SRGAN findings, from the CHI numbers only.

    ``last`` is the name of the last residual block; ``met`` is None when not measured yet; ``models``
    are the keys of the networks the expectation is about. SRResNet expectations are judged on every
    training length measured (the "more" runs included); "clusters more" needs CHI >= ``separable``, since
    below it t-SNE does not separate the sets at all and a ratio of two such values means nothing.
    """
    def value(key):
        return layer_chi(layers, key, last)

    def lengths(key):
        """``[(label, key, CHI)]`` for the network and its "more" continuation, where measured."""
        found = [(label, k, value(k)) for label, k in (('', key), (' (more L1 it.)', f'{key}_more'))]
        return [item for item in found if item[2] is not None]

    def listing(items):
        return ', '.join(f'{chi_text(v)}{label}' for label, _, v in items) or 'not measured'

    rows = []
    nogr, gr = lengths('srresnet_nogr'), lengths('srresnet_gr')
    rows.append(Expectation('SRResNet without GR: no clustering (CHI < 20) at the last block',
                            f'CHI {listing(nogr)}', all(v < no_clustering for *_, v in nogr) if nogr else None,
                            ['srresnet_nogr']))
    rows.append(Expectation('SRResNet with GR: strong clustering (CHI in the hundreds) at the last block',
                            f'CHI {listing(gr)}', any(v >= hundreds for *_, v in gr) if gr else None,
                            ['srresnet_gr']))
    pairs = [(label, g, n) for (label, _, g), (label_n, _, n) in zip(gr, nogr) if label == label_n]
    label, g, n = pairs[-1] if pairs else ('', None, None)  # the longest training both have
    rows.append(Expectation('SRResNet: GR clusters (CHI ≥ 1) and far more (over 2×) than no GR',
                            f'CHI {chi_text(g)} with GR vs {chi_text(n)} without{label}',
                            None if g is None else g >= separable and g > 2 * n, ['srresnet_gr', 'srresnet_nogr']))
    gan = [(label.replace('L1', 'GAN'), k, a) for label, k, a in lengths('srgan_nogr')]
    rows.append(Expectation('SRGAN without GR clusters (CHI ≥ 20 at the last block)', f'CHI {listing(gan)}',
                            any(a >= no_clustering for *_, a in gan) if gan else None, ['srgan_nogr']))
    label, _, a = gan[-1] if gan else ('', None, None)  # the longest GAN training measured
    v = value('srresnet_nogr')
    rows.append(Expectation('SRGAN without GR clusters (CHI ≥ 1) and more than SRResNet without GR',
                            f'CHI {chi_text(a)}{label} vs {chi_text(v)}',
                            None if a is None or v is None else a >= separable and a > v,
                            ['srgan_nogr', 'srresnet_nogr']))
    return rows


def spearman(x, y):
    """Spearman's rank correlation of ``x`` and ``y`` (``scipy.stats.spearmanr``); None for fewer than 3 points."""
    from scipy.stats import spearmanr

    if len(x) < 3:
        return None
    return round(float(spearmanr(x, y).statistic), 12)


def generalization_order(table, models, label=str):
    """``(ordering text, met)`` for the expectation ``models[0] > models[1] > models[2]`` in DDR-CHI.

    ``models`` are (clean, b+n, DDR) model names: higher CHI = generalizes worse. ``label`` names a model in
    the text. ``met`` is None (and the text 'not measured') while one of them has no row in ``table``.
    """
    values = {row['model']: chi(row) for row in table}
    clean, bn, ddr = (values.get(name) for name in models)
    if None in (clean, bn, ddr):
        return 'not measured', None
    order = ' > '.join(f'{label(name)} ({chi_text(values[name])})'
                       for name in sorted(models, key=lambda name: -values[name]))
    return order, clean > bn > ddr


def generalization_notes(table, models, separable=1.0):
    """Why the ordering may fail, read from the numbers: ``{'ddr_highest': bool, 'plain_unseparable': bool}``."""
    values = {row['model']: chi(row) for row in table}
    clean, bn, ddr = (values.get(name) for name in models)
    if None in (clean, bn, ddr):
        return {'ddr_highest': False, 'plain_unseparable': False}
    return {'ddr_highest': ddr > max(clean, bn), 'plain_unseparable': max(clean, bn) < separable}


def identification_verdict(results):
    """Do DDR features identify distortions best? ``results``: ``{layer: {method: {'accuracy': float}}}``.

    Returns ``{'best': (accuracy, method, layer), 'best_ddr': the best ``ddr*`` method's triple or None, 'met'}``;
    met when a DDR method is the most accurate of all, at any layer tried.

    >>> identification_verdict({'body.7': {'ddr': {'accuracy': 0.5}, 'brisque': {'accuracy': 0.7}}})['met']
    False
    """
    ranked = sorted(((entry['accuracy'], method, layer) for layer, methods in results.items()
                     for method, entry in methods.items()), reverse=True)
    best = ranked[0]
    ddr = [r for r in ranked if r[1].startswith('ddr')]
    return {'best': best, 'best_ddr': ddr[0] if ddr else None, 'met': bool(ddr) and ddr[0] == best}


def clusters_more_by(row):
    """``'content'`` or ``'degradation'``: which labelling of a classification-vs-sr row has the higher CHI."""
    return 'content' if row['chi_content']['mean'] > row['chi_degradation']['mean'] else 'degradation'
