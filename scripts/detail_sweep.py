#!/usr/bin/env python
"""Sweep the detail knob of a model that has one: gain over bicubic per spec and JPEG blockiness at each detail.

    python scripts/detail_sweep.py                                  # rrdb_ddr_real_x4, 192 px validation crops
    python scripts/detail_sweep.py --weights experiments/X/models/net_g_2000.pth --styles fade keep

Each point is ``ddrsr.loader.load(model, detail=D, detail_style=STYLE)`` scored by ``ddrsr.evaluation.evaluate`` on
the validation crops, beside bicubic and the ``--anchors``. Prints JSON: the rows and ``default_detail``, the lowest
fade detail whose jpeg30 output is deblocked (``ddrsr.results_report.default_detail``); ``--output`` writes the
table (``sweep_markdown``).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402
from ddrsr.evaluation import bicubic_upscaler, evaluate  # noqa: E402
from ddrsr.loader import load  # noqa: E402
from ddrsr.results_report import default_detail, sweep_markdown  # noqa: E402
from ddrsr.utils.markdown import write_text  # noqa: E402

SPECS = ['clean', 'blur2', 'noise20', 'blur2_noise20', 'jpeg30']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--model', default='rrdb_ddr_real_x4')
    parser.add_argument('--weights', help='checkpoint of that model (default: the shipped file)')
    parser.add_argument('--details', type=float, nargs='+', default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument('--styles', nargs='+', default=['fade'], choices=['fade', 'keep'])
    parser.add_argument('--anchors', nargs='*', default=['rrdb_ddr_real_x4_lite', 'realesrgan_x4plus'])
    parser.add_argument('--hr', default=os.path.join(ROOT, 'datasets', 'debian_photos', 'hr'))
    parser.add_argument('--meta_info', default=os.path.join(ROOT, 'scripts', 'debian_photos_val.txt'))
    parser.add_argument('--crop_size', type=int, default=192)
    parser.add_argument('-o', '--output', help='write the table here')
    args = add_hidden_aliases(parser).parse_args(argv)
    rows, fade = {}, {}
    try:
        def score(upscale):
            return evaluate(upscale, args.hr, SPECS, meta_info=args.meta_info, crop_size=args.crop_size, progress=False)

        rows['bicubic'] = score(bicubic_upscaler(4))
        for anchor in args.anchors:
            rows[anchor] = score(load(anchor).network)
        for style in args.styles:
            for detail in args.details:
                loaded = load(args.model, weights=args.weights, detail=detail, detail_style=style)
                rows[f'{args.model}@{detail:g} ({style})'] = score(loaded.network)
                if style == 'fade':
                    fade[detail] = rows[f'{args.model}@{detail:g} ({style})']
                print(f'detail_sweep: {args.model}@{detail:g} ({style}) done', file=sys.stderr)
    except DDRSRError as error:
        print(f'detail_sweep: error: {error}', file=sys.stderr)
        return 2
    if args.output:
        write_text(args.output, sweep_markdown(rows, SPECS))
    print(json.dumps({'crop_size': args.crop_size, 'weights': args.weights, 'default_detail': default_detail(fade),
                      'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
