#!/usr/bin/env python
"""Turn a training checkpoint into a shipped weights file: ``{'params_ema': state_dict}`` only.

    python scripts/ship_weights.py experiments/NAME/models/net_g_latest.pth weights/NAME.pth [--fp16]

Optimizer state, the raw ``params`` and the discriminator are left behind. ``--fp16`` halves the file
for full-scale networks (``ddrsr.zoo`` casts back to fp32 on load). Prints JSON with the sha256 and
size to record in weights/README.md.
"""
import argparse
import hashlib
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ddrsr.checkpoint import load_state_dict_file  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint')
    parser.add_argument('output')
    parser.add_argument('--fp16', action='store_true')
    args = parser.parse_args()
    state = load_state_dict_file(args.checkpoint, 'params_ema')
    if args.fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    temp = args.output + '.tmp'
    torch.save({'params_ema': state}, temp)
    os.replace(temp, args.output)
    digest = hashlib.sha256(open(args.output, 'rb').read()).hexdigest()
    print(json.dumps({'file': args.output, 'sha256': digest, 'bytes': os.path.getsize(args.output),
                      'parameters': sum(v.numel() for v in state.values())}, indent=1))


if __name__ == '__main__':
    main()
