#!/usr/bin/env python
"""Write weights/int8_calibration.npz: the LR crops that calibrate int8 inference (``--precision int8``).

    python scripts/make_int8_calibration.py       # 32 crops of the training photos, the default model's degradations

The crops come from the training crops only (``datasets/debian_photos/train_sub``, made by
scripts/prepare_dataset.py with the validation photos excluded), degraded by the ``degradation:`` block of the
default model's option file; the work is ``ddrsr.inference.quantize.make_calibration``. Then run
``python scripts/ship_weights.py --manifest_only`` so that SHA256SUMS lists the new file.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.cli._common import script_main  # noqa: E402
from ddrsr.inference.quantize import CALIBRATION_FILE, make_calibration  # noqa: E402


@script_main('make_int8_calibration')
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = os.path.join(ROOT, 'datasets', 'debian_photos')
    parser.add_argument('--hr', default=os.path.join(data, 'train_sub'))
    parser.add_argument('--meta_info', default=os.path.join(data, 'meta_info_train_sub.txt'))
    parser.add_argument('--opt', default=os.path.join(ROOT, 'options', 'train_rrdb_ddr_real_x4_lite_v3.yml'))
    parser.add_argument('-o', '--output', default=CALIBRATION_FILE)
    parser.add_argument('--count', type=int, default=32)
    parser.add_argument('--lr_size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    args = add_hidden_aliases(parser).parse_args(argv)
    print(make_calibration(args.hr, args.meta_info, args.opt, args.output, args.count, args.lr_size, seed=args.seed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
