#!/usr/bin/env python
"""Make a distillation pool: degraded LR crops, their HR and a teacher's output, for DistillPoolDataset.

    python scripts/make_distill_pool.py -opt options/train_rrdb_ddr_real_x4_lite_v6.yml

The option file gives the HR crops (its ``datasets.train`` block names an ``HRPatchDataset`` source: by default the
``--source`` option file's) and the damage (its ``degradation:`` block); the teacher is ``--teacher`` at
``--detail``. Resumable: run the same command again after an interruption. See ``ddrsr.data.distill_pool``.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.data.distill_pool import build_distill_pool  # noqa: E402
from ddrsr.data.hr_patch_dataset import HRPatchDataset  # noqa: E402
from ddrsr.data.random_degradation import RandomDegradation  # noqa: E402
from ddrsr.errors import DDRSRError  # noqa: E402
from ddrsr.loader import load  # noqa: E402
from ddrsr.utils.option_file import load_yaml  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', '--options', required=True,
                        help='the student option file: its train dataset is the pool, its `distill_pool:` block '
                             'says how to make it')
    parser.add_argument('--threads', type=int, help='torch threads (default: torch\'s)')
    args = add_hidden_aliases(parser).parse_args(argv)
    try:
        opt = load_yaml(args.options)
        recipe = opt.get('distill_pool')
        if not recipe:
            raise DDRSRError(f'{args.options} has no `distill_pool:` block (source, teacher, detail, num_samples)')
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        source = recipe['source']  # an HRPatchDataset block: dataroot_gt, meta_info, gt_size
        hr_dataset = HRPatchDataset({**source, 'use_hflip': False, 'use_rot': False, 'scale': opt['scale']})
        degradation = RandomDegradation.from_options(opt.get('degradation'))
        teacher = load(recipe['teacher'], detail=recipe.get('detail'))
        folder = opt['datasets']['train']['dataroot']
        build_distill_pool(hr_dataset, degradation, teacher.network, folder, int(recipe['num_samples']),
                           scale=int(opt['scale']), batch_size=int(recipe.get('batch_size', 16)),
                           seed=int(recipe.get('seed', 0)),
                           teacher_precision=recipe.get('teacher_precision', 'bf16'),
                           description={'model': recipe['teacher'], 'detail': teacher.detail,
                                        'source': source})
    except DDRSRError as error:
        print(f'make_distill_pool: error: {error}', file=sys.stderr)
        return 2
    print(f'make_distill_pool: {folder} is complete')
    return 0


if __name__ == '__main__':
    sys.exit(main())
