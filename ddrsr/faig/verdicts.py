"""Does FAIG find degradation-specific filters, and does it beat IG, |θ−θ̄| and random? Numbers, not prose.

The inputs are the rows of :func:`ddrsr.faig.masking.masking_table`: for each method, percent p and the spec
whose filters were masked, the PSNR drop on each spec's inputs. ``scripts/faig_report.py`` words the result.

>>> rows = [{'method': m, 'filters_for': f, 'percent': 1, 'drop': {'blur2': b, 'noise20': n}}
...         for m, f, b, n in [('faig', 'blur2', 3.0, 0.5), ('faig', 'noise20', 0.2, 2.0),
...                            ('random', 'blur2', 1.0, 1.0), ('random', 'noise20', 1.0, 1.0)]]
>>> sel = selectivity({'rows': rows}, 'blur2', 'noise20')
>>> sel['faig'][1], sel['random'][1]
([2.5, 1.8], [0.0, 0.0])
>>> faig_verdict(sel, [1])['faig_beats_all']
True
"""


def selectivity(table, deg, vs):
    """``{method: {p: [sel_deg, sel_vs]}}``: how much more masking a method's deg filters hurts deg inputs than
    vs inputs (drop_deg - drop_vs), and the reverse for its vs filters."""
    out = {}
    for row in table['rows']:
        drops = row['drop']
        entry = out.setdefault(row['method'], {}).setdefault(row['percent'], [None, None])
        if row['filters_for'] == deg:
            entry[0] = drops[deg] - drops[vs]
        elif row['filters_for'] == vs:
            entry[1] = drops[vs] - drops[deg]
    return out


def faig_verdict(sel, percents):
    """What the selectivity numbers say about FAIG, at the smallest p and per p; None when FAIG was not run.

    Returns:
        dict: ``p`` (the smallest percent), ``mean`` (``{method: {p: mean of the two directions}}``),
        ``faig`` (``[sel_deg, sel_vs]`` at p), ``pattern`` (both positive: the paper's pattern), ``best``
        (per direction, the most selective method at p), ``wins`` (``{p: method with the best mean}``),
        ``beaten`` / ``not_beaten`` (the other methods whose mean at p FAIG beats / does not beat) and
        ``faig_beats_all``.
    """
    if 'faig' not in sel:
        return None
    first = sorted(percents)[0]
    others = [m for m in sel if m != 'faig']
    mean = {m: {p: (v[0] + v[1]) / 2 for p, v in by_p.items()} for m, by_p in sel.items()}
    beaten = [m for m in others if mean['faig'][first] > mean[m][first]]
    faig_deg, faig_vs = sel['faig'][first]
    return {'p': first, 'mean': mean, 'faig': [faig_deg, faig_vs], 'pattern': faig_deg > 0 and faig_vs > 0,
            'best': [max(sel, key=lambda m: sel[m][first][k]) for k in (0, 1)],
            'wins': {p: max(mean, key=lambda m: mean[m][p]) for p in percents},
            'beaten': beaten, 'not_beaten': [m for m in others if m not in beaten],
            'faig_beats_all': len(beaten) == len(others)}
