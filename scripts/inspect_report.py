#!/usr/bin/env python
"""Measure ``ddrsr inspect`` and write docs/INSPECT.md.

    python scripts/inspect_report.py --weights results/rrdb_ddr_real_x4_lite_clean.pth
    python scripts/inspect_report.py --debs none        # without downloading the Debian packages

1. **Synthetic.** Centre-left and centre-right crops of the validation photos (scripts/debian_photos_val.txt, never
   used for fitting), degraded by the named pipeline with known parameters: blur sigma 0.5-4, noise sigma 5-30 and
   JPEG q 30-95 alone, the clean spec, and random combinations of all three. MAE of each estimate for each
   estimator: the DDR regressors, skimage's estimate_sigma and the wavelet MAD.
2. **Nearest named spec** accuracy on the same crops degraded with each named spec.
3. **Quantization tables.** The crops saved as JPEG by Pillow and by OpenCV at q 30-95: how often the read q is exact.
4. **Real files.** The sample photos in inputs/ and the training JPEGs of the Debian packages (``--debs``,
   downloaded with ``apt-get download`` into results/debs, as scripts/fetch_photos.py does): the exact q from
   their tables against the DDR regressor's q.

Items 1-3 are measured by ``ddrsr.inspection.accuracy``; this script fetches the real files and words docs/INSPECT.md.
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tarfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import ddrsr  # noqa: E402

ddrsr.register()  # basicsr's registries
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.utils.markdown import markdown_table, write_text  # noqa: E402
from ddrsr.data.degradations import NAMED_SPECS  # noqa: E402
from ddrsr.inspection import ESTIMATORS, NOISE_ESTIMATOR, Inspector  # noqa: E402
from ddrsr.inspection.accuracy import (BLUR_LEVELS, COMBINED, GROUPS, JPEG_LEVELS, NOISE_LEVELS, mae, meets,  # noqa: E402
                                    settings, spec_accuracy, synthetic, table_reading, validation_crops)
from ddrsr.inspection.inspector import DEFAULT_REGRESSORS  # noqa: E402
from ddrsr.weights.manifest import sha256_file  # noqa: E402
from ddrsr.loader import load  # noqa: E402
from ddrsr.zoo import DEFAULT_MODEL, weights_path  # noqa: E402

DEBS = ('palapeli-data', 'lomiri-wallpapers-16.04')


def debian_jpegs(packages, cache, val_names):
    """Paths of the training JPEGs of ``packages`` (downloaded with apt-get into ``cache``), or ``(None, why)``."""
    manifest = json.load(open(os.path.join(ROOT, 'datasets', 'debian_photos', 'manifest.json')))
    wanted = {(e['package'], './' + e['member'].lstrip('./')): e['file'] for e in manifest
              if e['member'].lower().endswith('.jpg') and e['file'] not in val_names and e['package'] in packages}
    os.makedirs(cache, exist_ok=True)
    found = []
    for package in packages:
        debs = [f for f in os.listdir(cache) if f.startswith(package + '_') and f.endswith('.deb')]
        if not debs:
            result = subprocess.run(['apt-get', 'download', package], cwd=cache, capture_output=True, text=True)
            debs = [f for f in os.listdir(cache) if f.startswith(package + '_') and f.endswith('.deb')]
            if not debs:
                return None, f'`apt-get download {package}` failed ({result.stderr.strip()[:120]})'
        tar_proc = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', os.path.join(cache, debs[0])], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=tar_proc.stdout, mode='r|') as tar:
            for member in tar:
                name = member.name if member.name.startswith('./') else './' + member.name
                if member.isfile() and (package, name) in wanted:
                    target = os.path.join(cache, 'jpegs', wanted[(package, name)].replace('.png', '.jpg'))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target, 'wb') as f:
                        f.write(tar.extractfile(member).read())
                    found.append(target)
        tar_proc.wait()
    return sorted(found), None


def verdict(value, target):
    return f'{value:.2f} (target <= {target:g}: {"met" if meets(value, target) else "MISSED"})'


def markdown(args, rows, confusion, tables, real, debs_note, command):
    weights = args.weights or weights_path(args.model)
    groups = list(GROUPS)
    noise_estimators = ['ddr'] + list(ESTIMATORS)
    lines = ['# `ddrsr inspect`: accuracy', '',
             f'Written by `{command}` on {datetime.date.today().isoformat()}; rerun it to regenerate this file. '
             '`python scripts/regenerate_control_inspect.py` reruns the regressor fit, docs/CONTROL.md and '
             'docs/INSPECT.md together.', '',
             f'Model `{args.model}` (weights `{os.path.relpath(weights, ROOT)}`, sha256 `{sha256_file(weights)[:16]}...`), '
             f'regressors `{os.path.relpath(args.regressors, ROOT)}` (sha256 `{sha256_file(args.regressors)[:16]}...`), '
             'fitted by `scripts/train_inspect_regressors.py` on the training crops only.', '',
             f'Synthetic data: {len(rows) // len(settings(args.seed))} crops ({args.crop} px HR, {args.crop // 4} px LR: '
             'two per validation photo, photos never used for fitting), each degraded by the named pipeline '
             '(bicubic x1/4, Gaussian blur on the LR, Gaussian colour noise, JPEG) with: '
             f'blur sigma {", ".join(f"{b:g}" for b in BLUR_LEVELS)} alone; noise sigma '
             f'{", ".join(f"{n:g}" for n in NOISE_LEVELS)} alone; JPEG q {", ".join(map(str, JPEG_LEVELS))} alone; '
             f'clean; and {COMBINED} random combinations (blur U(0, 4), noise U(0, 30), q U{{30..95}}).', '',
             '## Mean absolute error', '']
    error_rows = []

    def row(label, estimator, estimate, truth, keep=lambda r: True):
        cells = []
        for group in groups + [None]:
            value, count = mae(rows, estimate, truth, lambda r: keep(r) and (group is None or r['group'] == group))
            cells.append(f'{value:.2f}' if count else '-')
        error_rows.append([label, estimator, *cells])

    row('blur sigma (px)', 'DDR regressor', 'ddr_blur', 'blur')
    for name in noise_estimators:
        row('noise sigma (0-255)', {'ddr': 'DDR regressor', 'skimage': 'skimage estimate_sigma',
                                    'wavelet_mad': 'wavelet MAD (flat blocks)'}[name], f'{name}_noise', 'noise')
    row('JPEG q (JPEG samples)', 'DDR regressor', 'ddr_jpeg', 'jpeg', lambda r: r['jpeg'] > 0)
    lines += markdown_table(['estimate', 'estimator', *groups, 'all'], error_rows, align='ll' + 'r' * (len(groups) + 1))
    detection = np.mean([(r['ddr_jpeg_p'] >= 0.5) == (r['jpeg'] > 0) for r in rows])
    blur_mae = mae(rows, 'ddr_blur', 'blur')[0]
    noise_mae = {name: mae(rows, f'{name}_noise', 'noise')[0] for name in noise_estimators}
    jpeg_mae = mae(rows, 'ddr_jpeg', 'jpeg', lambda r: r['jpeg'] > 0)[0]
    pixel_best = min(ESTIMATORS, key=lambda n: noise_mae[n])
    lines += ['', f'JPEG present or not, from the DDR classifier (P >= 0.5): {100 * detection:.1f} % correct.', '',
              '**Targets (DDR regressor, all synthetic samples):** '
              f'noise sigma MAE {verdict(noise_mae["ddr"], 3)}; blur sigma MAE {verdict(blur_mae, 0.5)}; '
              f'JPEG q MAE {verdict(jpeg_mae, 8)}.', '',
              f'Pixel-statistics noise estimators: {pixel_best} measures better here '
              f'({noise_mae[pixel_best]:.2f} against {max(noise_mae[n] for n in ESTIMATORS):.2f}); '
              f'`ddrsr inspect` reports `{NOISE_ESTIMATOR}` as `noise_sigma`'
              + ('' if pixel_best == NOISE_ESTIMATOR else ' (**the measurement prefers the other one: change '
                 'NOISE_ESTIMATOR in ddrsr/inspection/inspector.py**)') + ', and all of them in `noise_sigma_by_estimator`.',
              '', '### By level (degradation alone)', '']
    levels = [['blur sigma', f'{level:g}', f'{mae(rows, "ddr_blur", "blur", lambda r: r["spec"] == f"blur{level:g}")[0]:.2f}',
               '-', '-'] for level in BLUR_LEVELS]
    for level in (0.0,) + NOISE_LEVELS:
        name = 'clean' if level == 0 else f'noise{level:g}'
        levels.append(['noise sigma', f'{level:g}', *(f'{mae(rows, f"{e}_noise", "noise", lambda r: r["spec"] == name)[0]:.2f}'
                                                      for e in noise_estimators)])
    levels += [['JPEG q', level, f'{mae(rows, "ddr_jpeg", "jpeg", lambda r: r["spec"] == f"jpeg{level}")[0]:.2f}', '-', '-']
               for level in JPEG_LEVELS]
    lines += markdown_table(['degradation', 'level', 'DDR', 'skimage', 'wavelet MAD'], levels, align='lrrrr')
    correct = sum(confusion[s][s] for s in NAMED_SPECS)
    total = sum(sum(v.values()) for v in confusion.values())
    lines += ['', '## Nearest named spec', '', f'Accuracy {100 * correct / total:.1f} % ({correct} of {total} crops). '
              'Rows: the true spec; columns: the spec `inspect` named.', '']
    lines += markdown_table(['true \\ named', *NAMED_SPECS], [[spec, *(confusion[spec][o] for o in NAMED_SPECS)]
                                                              for spec in NAMED_SPECS], align='l' + 'r' * len(NAMED_SPECS))
    exact, count = tables
    lines += ['', '## JPEG quality from the quantization tables', '',
              f'The crops saved at q 30, 35, ..., 95: Pillow {exact["Pillow"]} of {count} exact, OpenCV '
              f'{exact["OpenCV"]} of {count} exact (both use the IJG tables, so the reading is exact by construction; '
              'a file written with other tables is reported as "q ~N, non-IJG tables").', '',
              '## Real files', '', debs_note, '']
    lines += markdown_table(
        ['file', 'q (tables)', 'DDR q', 'P(JPEG)', 'DDR noise', f'noise ({NOISE_ESTIMATOR})', 'DDR blur', 'nearest spec'],
        [[os.path.basename(result['file']), result['jpeg']['text'], f'{result["ddr"]["jpeg_quality_if_jpeg"]:.0f}',
          f'{result["ddr"]["jpeg_probability"]:.2f}', f'{result["ddr"]["noise_sigma"]:.1f}', f'{result["noise_sigma"]:.1f}',
          f'{result["ddr"]["blur_sigma"]:.2f}',
          f'{result["nearest_spec"]["name"]} ({result["nearest_spec"]["confidence"]:.2f})'] for result in real],
        align='llrrrrrl')
    jpegs = [r for r in real if r['jpeg']['quality'] is not None]
    if jpegs:
        real_mae = np.mean([abs(r['ddr']['jpeg_quality_if_jpeg'] - r['jpeg']['quality']) for r in jpegs])
        lines += ['', f'DDR q against the exact q of the {len(jpegs)} real JPEGs: MAE {real_mae:.1f}. The regressors were '
                  'fitted on q 30-95, so a file above 95 is read as at most 95.']
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL)
    parser.add_argument('--weights', help='checkpoint of the model (default: the shipped file)')
    parser.add_argument('--regressors', default=DEFAULT_REGRESSORS)
    parser.add_argument('--hr', default=os.path.join(ROOT, 'datasets', 'debian_photos', 'hr'))
    parser.add_argument('--meta_info', default=os.path.join(ROOT, 'scripts', 'debian_photos_val.txt'))
    parser.add_argument('--crop', type=int, default=1024, help='HR crop size (default: 1024, i.e. 256 px LR)')
    parser.add_argument('--debs', nargs='+', default=list(DEBS), help='Debian packages whose training JPEGs are read '
                        f'(default: {" ".join(DEBS)}; "none" to skip)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('-o', '--output', default=os.path.join(ROOT, 'docs', 'INSPECT.md'))
    args = add_hidden_aliases(parser).parse_args(argv)
    command = ('python scripts/inspect_report.py ' + shlex.join(argv if argv is not None else sys.argv[1:])).strip()
    torch.set_grad_enabled(False)
    inspector = Inspector(load(args.model, weights=args.weights).network, args.regressors)
    crops = validation_crops(args.hr, args.meta_info, args.crop)
    rows = synthetic(inspector, crops, args.seed)
    confusion = spec_accuracy(inspector, crops, args.seed)
    tables = table_reading(crops)
    real_paths = [os.path.join(ROOT, 'inputs', n) for n in sorted(os.listdir(os.path.join(ROOT, 'inputs')))]
    note = 'The sample photos in `inputs/`'
    if args.debs != ['none']:
        val_names = {line.split()[0] for line in open(args.meta_info) if line.strip()}
        found, why = debian_jpegs(args.debs, os.path.join(ROOT, 'results', 'debs'), val_names)
        if found is None:
            note += f', without the Debian training JPEGs: {why}.'
        else:
            real_paths += found
            note += (f' and the {len(found)} training JPEGs of the Debian packages {", ".join(args.debs)} (originals from '
                     '`apt-get download`, as scripts/fetch_photos.py fetches them; whole photos, not downscaled).')
    else:
        note += ' (the Debian JPEGs were skipped: `--debs none`).'
    real = [inspector.inspect_file(path) for path in real_paths]
    write_text(args.output, markdown(args, rows, confusion, tables, real, note, command))
    print(f'inspect_report: wrote {args.output}', file=sys.stderr)


if __name__ == '__main__':
    main()
