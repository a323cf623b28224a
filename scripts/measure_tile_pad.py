"""Measure how far tiled inference is from whole-image inference, per tile_pad (to choose the default).

Example:
    python scripts/measure_tile_pad.py -n rrdb_ddr_real_x4_lite -i inputs/seeding_small.png -t 64 --pads 0 4 8 16 24 32

Prints JSON to stdout: for each pad, the max and mean absolute difference (in [0, 1] units; one 8-bit
grey level is 1/255 = 0.0039) between the tiled and the whole-image output of the same photo.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402
from ddrsr.inference import Upsampler, read_image  # noqa: E402
from ddrsr.zoo import DEFAULT_MODEL  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog='example: python scripts/measure_tile_pad.py -i photo.png -t 64')
    parser.add_argument('-i', '--input', required=True, help='a photo (kept small: the whole image runs at once)')
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL)
    parser.add_argument('--weights', default=None)
    parser.add_argument('-t', '--tile', type=int, default=64)
    parser.add_argument('--pads', type=int, nargs='+', default=[0, 4, 8, 12, 16, 24, 32])
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    args = add_hidden_aliases(parser).parse_args(argv)
    try:
        rgb = read_image(args.input).rgb
        upsampler = Upsampler(args.model, weights=args.weights, device=args.device, half=False)
    except DDRSRError as error:
        print(f'ddrsr: error: {error}', file=sys.stderr)
        return 2
    whole = upsampler.enhance(rgb)
    report = {'model': args.model, 'tile': args.tile, 'size': list(rgb.shape[:2]), 'pads': {}}
    for pad in args.pads:
        upsampler.tile, upsampler.tile_pad = args.tile, pad
        diff = np.abs(upsampler.enhance(rgb) - whole)
        report['pads'][pad] = {'max_abs': float(diff.max()), 'mean_abs': float(diff.mean())}
        print(f'tile_pad {pad}: max {diff.max():.2e}, mean {diff.mean():.2e}', file=sys.stderr)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
