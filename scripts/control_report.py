#!/usr/bin/env python
"""Measure ``--strength`` and write docs/CONTROL.md with its figure (docs/control/strength_crops.png).

    python scripts/control_report.py --weights results/rrdb_ddr_real_x4_lite_clean.pth
    python scripts/control_report.py            # the shipped default, once it holds its clean embedding

On the validation photos (scripts/debian_photos_val.txt, unseen by training and by the clean embedding), with
the same centre crops and named specs as ``ddrsr evaluate`` (docs/RESULTS.md), for each strength:

* PSNR (Y, border 4) per named spec;
* on noise20: the residual noise std of the output: the std (0-255, Y, border 4 cut) of
  ``SR(noisy LR, e(s)) - SR(noise-free LR, e(s))``, the part of the output that the input noise causes (both runs
  use the noisy photo's steered embedding, so only the pixels differ). Also the std of the high-frequency part of
  SR - HR (which counts detail lost to smoothing as well) and the blind wavelet-MAD noise estimate of the output;
* on clean: strength 0 against the plain clean-trained RRDB (``rrdb_clean_x4_lite``, target: within 0.2 dB).

The verdicts (monotonic fall, 0.2 dB) are computed from the numbers, not written by hand: the measurements and
targets are ``ddrsr.analysis.strength``; this script draws the figure and words docs/CONTROL.md.
"""
import argparse
import datetime
import os
import shlex
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import ddrsr  # noqa: E402

ddrsr.register()  # basicsr's registries
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.utils.markdown import markdown_table, write_text  # noqa: E402
from ddrsr.analysis.strength import STRENGTHS, measure, spec_pairs, targets  # noqa: E402
from ddrsr.data.degradations import NAMED_SPECS  # noqa: E402
from ddrsr.results_report import draw_image_row  # noqa: E402
from ddrsr.utils.figures import save_figure  # noqa: E402
from ddrsr.weights.manifest import sha256_file  # noqa: E402
from ddrsr.loader import load  # noqa: E402
from ddrsr.zoo import DEFAULT_MODEL, weights_path  # noqa: E402

FIGURE_STRENGTHS = (0.0, 0.5, 1.0, 1.5)
FIGURE_SPECS = ('noise20', 'blur2_noise20', 'jpeg30', 'clean')


def crops_figure(model, pairs_by_spec, path, image_index=0):
    """Rows: FIGURE_SPECS; columns: input (bicubic), each FIGURE_STRENGTHS output, ground truth."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    specs = [s for s in FIGURE_SPECS if s in pairs_by_spec]
    columns = ['input (bicubic)'] + [f'strength {s:g}' for s in FIGURE_STRENGTHS] + ['ground truth']
    figure, axes = plt.subplots(len(specs), len(columns), figsize=(2.2 * len(columns), 2.3 * len(specs)),
                                squeeze=False)
    with torch.no_grad():
        for row, spec in enumerate(specs):
            lq, gt = pairs_by_spec[spec][image_index]
            embedding = model.encode(lq)
            images = [F.interpolate(lq, scale_factor=4, mode='bicubic', align_corners=False)]
            images += [model(lq, embedding=model.steer(embedding, s)) for s in FIGURE_STRENGTHS] + [gt]
            draw_image_row(axes[row], images, spec, columns if row == 0 else None)
    return save_figure(figure, path, dpi=80, tight_layout=True, bbox_inches=None)


def markdown(args, table, noise, base, bicubic, figure, command):
    weights = args.weights or weights_path(args.model)
    lines = ['# Restoration strength (`--strength`)', '',
             f'Written by `{command}` on {datetime.date.today().isoformat()}; rerun it to regenerate this file and '
             'its figure. `python scripts/regenerate_control_inspect.py` reruns the regressor fit, '
             'docs/CONTROL.md and docs/INSPECT.md together.', '',
             f'Model `{args.model}`, weights `{os.path.relpath(weights, ROOT)}` (sha256 '
             f'`{sha256_file(weights)[:16]}...`). Inputs: the {args.count} validation photos of '
             '`scripts/debian_photos_val.txt`, centre crops of '
             f'{args.crop_size} px HR, degraded with the named specs exactly as `ddrsr evaluate` does; PSNR on Y, '
             'border 4 (as docs/RESULTS.md).', '',
             'The embedding is moved along `e(s) = e_clean + s (e_photo - e_clean)`. `e_clean` is the mean embedding '
             'of clean (bicubic-downsampled) training crops, stored in the model as the buffer `clean_embedding` '
             'by `scripts/compute_clean_embedding.py`. s = 0 treats the photo as clean, 1 is the photo\'s own '
             'embedding (the default, unchanged behaviour), 1.5 restores harder. Tiles share the one `e(s)`.', '',
             '## PSNR (dB) against strength, per named spec', '']
    rows = []
    for spec, row in table.items():
        best = max(row, key=row.get)
        rows.append([spec, f'{bicubic[spec]:.2f}', *(f'**{v:.2f}**' if s == best else f'{v:.2f}' for s, v in row.items()),
                     f'{best:g}'])
    lines += markdown_table(['spec', 'bicubic', *(f's = {s:g}' for s in STRENGTHS), 'best s'], rows,
                            align='lr' + 'r' * len(STRENGTHS) + 'r')
    verdict = targets(table, noise, base)
    residual, falls, gap = verdict['residual'], verdict['noise_falls'], verdict['clean_gap']
    lines += ['', '## Residual noise on noise20 inputs', '',
              'Residual noise std: the std (0-255, Y, border 4 cut) of `SR(noisy LR, e(s)) - SR(noise-free LR, e(s))`, '
              'the part of the output that the input noise causes; both runs use the noisy photo\'s steered embedding, '
              'so only the pixels differ. For comparison: the std of the high-frequency part of SR - HR (the residual '
              'minus its Gaussian blur of sigma 2 HR px), which also counts detail lost to smoothing, and the blind '
              'wavelet-MAD noise estimate of the output alone (small, as x4 upscaling spreads noise over several '
              'pixels).', '']
    measures = ('**residual noise std**', 'high-frequency std of SR - HR', 'blind noise estimate of the output')
    lines += markdown_table(['strength', *(f'{s:g}' for s in STRENGTHS)],
                            [[name, *(f'{noise[s][index]:.2f}' for s in STRENGTHS)] for index, name in enumerate(measures)],
                            align='l' + 'r' * len(STRENGTHS))
    lines += ['', f'**Target: falls monotonically as strength rises: {"met" if falls else "MISSED"}** '
              f'({residual[0]:.2f} at s = 0 to {residual[-1]:.2f} at s = 1.5'
              + ('' if falls else '; it rises between some neighbouring strengths') + ').']
    lines += ['', '## Clean inputs: strength 0 against the clean-trained RRDB', '']
    lines += markdown_table(['', 'PSNR on clean (dB)'], [
        ['bicubic', f'{bicubic["clean"]:.2f}'], [f'`{args.baseline}` (plain RRDB, clean-trained)', f'{base["clean"]:.2f}'],
        [f'`{args.model}`, s = 0', f'{table["clean"][0.0]:.2f}'], [f'`{args.model}`, s = 1', f'{table["clean"][1.0]:.2f}']],
        align='lr')
    lines += ['',
              f'**Target: s = 0 within 0.2 dB of `{args.baseline}`: {"met" if verdict["clean_met"] else "MISSED"}** '
              f'(difference {gap:+.2f} dB{"; above it counts as met" if gap > 0.2 else ""}).', '',
              'The plain RRDB on every spec, for reference: '
              + ', '.join(f'{spec} {value:.2f}' for spec, value in base.items()) + ' dB.', '',
              '## Crops', '', f'Validation photo {args.image_index}, each row one spec; columns: the input (bicubic), '
              'strengths 0, 0.5, 1 and 1.5, and the ground truth.', '',
              f'![crops at strengths 0, 0.5, 1, 1.5]({os.path.relpath(figure, os.path.dirname(os.path.abspath(args.output)))})',
              '', '## Use', '', '```bash', 'python inference.py -i photo.jpg --strength 0.5      # keep more grain',
              'ddrsr inspect photo.jpg                                # recommends a strength', '```', '',
              'From Python: `Upsampler(strength=0.5)`, or set `upsampler.strength` between photos. The ONNX backend '
              'steers the embedding between its encoder and generator graphs, so `--backend onnx` takes the same '
              'flag (the one-graph export of `ddrsr export`, lq -> sr, computes e inside and runs at strength 1). A model whose weights lack `clean_embedding` (NaN) runs at strength 1 as before and refuses '
              'any other strength with a message naming `scripts/compute_clean_embedding.py`.', '']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL)
    parser.add_argument('--weights', help='checkpoint with a clean embedding (default: the shipped file)')
    parser.add_argument('--baseline', default='rrdb_clean_x4_lite', help='plain clean-trained RRDB to compare with')
    parser.add_argument('--hr', default=os.path.join(ROOT, 'datasets', 'debian_photos', 'hr'))
    parser.add_argument('--meta_info', default=os.path.join(ROOT, 'scripts', 'debian_photos_val.txt'))
    parser.add_argument('--specs', nargs='+', default=list(NAMED_SPECS))
    parser.add_argument('--crop_size', type=int, default=192)
    parser.add_argument('--image_index', type=int, default=0, help='validation photo shown in the figure')
    parser.add_argument('-o', '--output', default=os.path.join(ROOT, 'docs', 'CONTROL.md'))
    parser.add_argument('--figure', default=os.path.join(ROOT, 'docs', 'control', 'strength_crops.png'))
    args = add_hidden_aliases(parser).parse_args(argv)
    command = 'python scripts/control_report.py ' + shlex.join(argv if argv is not None else sys.argv[1:])
    torch.set_grad_enabled(False)
    model = load(args.model, weights=args.weights).network
    if not model.has_clean_embedding:
        sys.exit('control_report: the model has no clean embedding; run scripts/compute_clean_embedding.py and '
                 'pass its output with --weights')
    baseline = load(args.baseline).network
    specs = list(dict.fromkeys(['clean', 'noise20'] + args.specs))
    pairs = {spec: spec_pairs(args.hr, args.meta_info, spec, args.crop_size) for spec in specs}
    args.count = len(pairs['clean'])
    table, noise, base, bicubic = measure(model, baseline, pairs)
    figure = crops_figure(model, pairs, args.figure, args.image_index)
    write_text(args.output, markdown(args, table, noise, base, bicubic, figure, command.strip()))
    print(f'control_report: wrote {args.output} and {args.figure}', file=sys.stderr)


if __name__ == '__main__':
    main()
