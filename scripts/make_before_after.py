#!/usr/bin/env python
"""The README's before/after figure: 4× crops of a real photo, input, bicubic and ddrsr's models.

    python scripts/make_before_after.py            # inputs/seeding_detail.jpg -> docs/before_after.png

Each ``-n`` model runs on the whole photo as ``python inference.py`` runs it (``Upsampler``, its default detail and
strength, fp32 torch); the figure is ``ddrsr.results_report.save_before_after``.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.cli._common import script_main  # noqa: E402
from ddrsr.inference import Upsampler  # noqa: E402
from ddrsr.results_report import save_before_after  # noqa: E402


@script_main('make_before_after')
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-i', '--input', default=os.path.join(ROOT, 'inputs', 'seeding_detail.jpg'))
    parser.add_argument('-o', '--output', default=os.path.join(ROOT, 'docs', 'before_after.png'))
    parser.add_argument('-n', '--model', action='append', help='zoo model, repeatable '
                        '(default: rrdb_ddr_real_x4_lite and rrdb_ddr_real_x4)')
    parser.add_argument('--box', type=int, nargs=3, metavar=('LEFT', 'TOP', 'SIZE'),
                        help='crop in input pixels (default: 80 70 64, the seed head against the dark background '
                        'in the default photo; the centre 64 px square in any other)')
    args = add_hidden_aliases(parser).parse_args(argv)
    if args.box is None and os.path.samefile(args.input, parser.get_default('input')):
        args.box = (80, 70, 64)
    models = args.model or ['rrdb_ddr_real_x4_lite', 'rrdb_ddr_real_x4']
    upsamplers = []
    for name in models:
        upsampler = Upsampler(name, device='cpu', backend='torch', precision='fp32')
        detail = upsampler.loaded.detail
        upsamplers.append((name if detail is None else f'{name} @ detail {detail:g}', upsampler))
    print(save_before_after(args.input, upsamplers, args.output, box=args.box))
    return 0


if __name__ == '__main__':
    sys.exit(main())
