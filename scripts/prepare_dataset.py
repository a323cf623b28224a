#!/usr/bin/env python
"""Cut any HR folder (DIV2K, your own photos, the Debian set) into sub-image crops for training.

Writes ``<output>/<photo>_s<NNN>.png`` crops and a BasicSR meta-info file (one crop name a line).
Near-flat crops (sky, bokeh) are skipped: a crop is kept only if the mean local standard deviation of
its luminance, over 7x7 windows in 0-255 units, reaches ``--min_detail``. Photos listed in
``--exclude`` (e.g. the fixed validation split) are left out.

    python scripts/prepare_dataset.py -i datasets/debian_photos/hr -o datasets/debian_photos/train_sub \\
        --exclude scripts/debian_photos_val.txt
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.data.prepare import prepare, read_exclusions  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-i', '--input', required=True, help='folder of HR images')
    parser.add_argument('-o', '--output', required=True, help='folder for the crops')
    parser.add_argument('--crop_size', type=int, default=256)
    parser.add_argument('--step', type=int, default=256)
    parser.add_argument('--min_detail', type=float, default=4.0,
                        help='minimum mean 7x7 local std of luminance (0-255) for a crop to be kept')
    parser.add_argument('--exclude', help='text file of photo names to leave out (e.g. the validation split)')
    parser.add_argument('--meta_info', help='meta-info file to write (default: beside the output folder)')
    args = add_hidden_aliases(parser).parse_args()
    try:
        kept, skipped, meta = prepare(args.input, args.output, args.crop_size, args.step, args.min_detail,
                                      read_exclusions(args.exclude), args.meta_info)
    except DDRSRError as error:
        sys.exit(f'prepare_dataset: error: {error}')
    print(f'{kept} crops written to {args.output} ({skipped} near-flat crops skipped); meta info: {meta}',
          file=sys.stderr)


if __name__ == '__main__':
    main()
