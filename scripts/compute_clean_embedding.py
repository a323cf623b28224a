#!/usr/bin/env python
"""Compute a DDR model's clean embedding (the point ``--strength 0`` moves to) and write a checkpoint holding it.

    python scripts/compute_clean_embedding.py -o results/rrdb_ddr_real_x4_lite_clean.pth
    python scripts/compute_clean_embedding.py -n rrdb_ddr_real_x4_lite --weights NEW.pth -o NEW_with_clean.pth

``e_clean`` is the mean of the model's embeddings ``e = MLP(pooled encoder features)`` of clean LR patches: HR
crops from the TRAINING set (``datasets/debian_photos/train_sub``), downsampled by the named spec ``clean``
(bicubic, 8-bit). The validation photos (scripts/debian_photos_val.txt) are deliberately not used: the
strength and inspect measurements in docs/CONTROL.md and docs/INSPECT.md run on them, so they stay unseen.

The output is ``{'params_ema': state_dict}`` with the ``clean_embedding`` buffer filled, in the dtype of the
input checkpoint (fp16 stays fp16). The input is never modified. Ship the output with scripts/ship_weights.py.
Prints JSON: the file, the number of patches, the norm of e_clean and the mean distance of a patch's
embedding from it. The computation is ``ddrsr.analysis.clean_embedding.write_clean_embedding``.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import ddrsr  # noqa: E402

ddrsr.register()  # basicsr's registries
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402
from ddrsr.analysis.clean_embedding import write_clean_embedding  # noqa: E402
from ddrsr.zoo import DEFAULT_MODEL  # noqa: E402

TRAIN_HR = os.path.join(ROOT, 'datasets', 'debian_photos', 'train_sub')
TRAIN_META = os.path.join(ROOT, 'datasets', 'debian_photos', 'meta_info_train_sub.txt')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL, help=f'zoo model (default: {DEFAULT_MODEL})')
    parser.add_argument('--weights', help='checkpoint of that model (default: the shipped file)')
    parser.add_argument('-o', '--output', required=True, help='checkpoint to write (must differ from --weights)')
    parser.add_argument('--hr', default=TRAIN_HR, help='HR training crops (default: datasets/debian_photos/train_sub)')
    parser.add_argument('--meta_info', default=TRAIN_META, help='meta-info file of --hr (default: the training list)')
    parser.add_argument('--patches', type=int, default=512, help='number of training crops used (default: 512)')
    parser.add_argument('--hr_size', type=int, default=256, help='HR crop size; LR is hr_size/scale (default: 256)')
    parser.add_argument('--seed', type=int, default=0)
    args = add_hidden_aliases(parser).parse_args(argv)
    meta_info = args.meta_info if args.hr == TRAIN_HR or args.meta_info != TRAIN_META else None
    try:
        summary = write_clean_embedding(args.model, args.output, args.hr, meta_info, args.patches, args.hr_size,
                                        args.seed, weights=args.weights)
    except DDRSRError as error:
        print(f'compute_clean_embedding: error: {error}', file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
