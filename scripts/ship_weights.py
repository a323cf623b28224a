#!/usr/bin/env python
"""Turn a training checkpoint into a shipped weights file: ``{'params_ema': state_dict}`` only.

    python scripts/ship_weights.py experiments/NAME/models/net_g_latest.pth weights/NAME.pth [--fp16] \
        [--options options/train_NAME.yml] [--iterations N]
    python scripts/ship_weights.py --manifest_only [--weights_dir weights]
    python scripts/ship_weights.py CHECKPOINT weights/rrdb_ddr_real_x4.safetensors --delta rrdb_ddr_real_x4

``--delta NAME`` ships a zoo model that has a detail knob as a ``.safetensors`` holding only what differs from its
base model (realesrgan_x4plus for rrdb_ddr_real_x4), with its card (``ddrsr.weights.companions.ship_delta``).

Optimizer state, the raw ``params`` and the discriminator are left behind. ``--fp16`` halves the file
for full-scale networks (``ddrsr.zoo`` casts back to fp32 on load). Then ``SHA256SUMS`` beside the
output is rewritten from every weights file in that folder: ``ddrsr.zoo`` refuses a shipped file whose
sha256 differs from it. A zoo model's file also gets its companions regenerated: ``NAME.safetensors`` (what
ddrsr and spandrel load) and the ``NAME.json`` model card, recording ``--options`` and ``--iterations`` (default:
the zoo entry's option file and its ``total_iter``). ``--manifest_only`` regenerates every zoo file's
companions and the manifest (after copying files in by hand).
Prints JSON with the sha256 and size to record in weights/README.md.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ddrsr.utils.cli_flags import add_hidden_aliases  # noqa: E402
from ddrsr.weights.companions import ship_all_companions, ship_checkpoint  # noqa: E402
from ddrsr.weights.manifest import MANIFEST_NAME  # noqa: E402

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'weights')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('output', nargs='?')
    parser.add_argument('--fp16', action='store_true')
    parser.add_argument('--options', default=None, help='option file that trained it (default: the zoo entry\'s)')
    parser.add_argument('--iterations', type=int, default=None,
                        help='iterations it trained for (default: the option file\'s total_iter)')
    parser.add_argument('--delta', metavar='NAME', default=None,
                        help='ship zoo model NAME as a delta over its base model (a .safetensors output)')
    parser.add_argument('--manifest_only', action='store_true',
                        help=f'only regenerate the zoo files\' companions and {MANIFEST_NAME}')
    parser.add_argument('--weights_dir', default=WEIGHTS_DIR, help='folder of --manifest_only (default: weights/)')
    args = add_hidden_aliases(parser).parse_args(argv)
    if args.manifest_only:
        manifest = ship_all_companions(args.weights_dir)
        print(json.dumps({'manifest': os.path.join(args.weights_dir, MANIFEST_NAME), 'files': manifest}, indent=1))
        return
    if not args.checkpoint or not args.output:
        parser.error('give CHECKPOINT and OUTPUT, or --manifest_only')
    if args.delta:
        from ddrsr.weights.companions import ship_delta

        print(json.dumps(ship_delta(args.checkpoint, args.output, args.delta, options=args.options,
                                    iterations=args.iterations), indent=1))
        return
    print(json.dumps(ship_checkpoint(args.checkpoint, args.output, fp16=args.fp16, options=args.options,
                                     iterations=args.iterations), indent=1))

if __name__ == '__main__':
    main()
