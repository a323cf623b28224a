#!/usr/bin/env python
"""Benchmarks that write their figures down (not tests). Prints JSON to stdout.

    python scripts/benchmark.py inference [-n rrdb_ddr_bn_x4_lite] [--size 256] [--runs 5] [--threads 2]

``inference``: one ``size`` x ``size`` photo through the shipped model on the CPU, torch eager against
onnxruntime (the same Upsampler, ``backend='torch'|'onnx'``), median of ``runs`` timed runs after one
warm-up run, plus the max/mean absolute difference between the two outputs.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ddrsr.inference import Upsampler  # noqa: E402
from ddrsr.zoo import DEFAULT_MODEL  # noqa: E402


def timed(function, runs):
    """Median and all of ``runs`` wall times of ``function()`` after one warm-up call."""
    function()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_inference(model, size, runs):
    rng = np.random.default_rng(0)
    # A smooth random "photo": noise at 1/8 resolution, upsampled (pure noise would be atypical input).
    small = rng.random((size // 8, size // 8, 3)).astype(np.float32)
    photo = np.kron(small, np.ones((8, 8, 1), np.float32))
    result, outputs = {'model': model, 'input': f'{size}x{size}', 'runs': runs, 'threads': torch.get_num_threads()}, {}
    for backend in ('torch', 'onnx'):
        upsampler = Upsampler(model, device='cpu', backend=backend)
        median, times = timed(lambda: outputs.__setitem__(backend, upsampler.enhance(photo)), runs)
        result[f'{backend}_s'] = round(median, 4)
        result[f'{backend}_all_s'] = [round(t, 4) for t in times]
    diff = np.abs(outputs['torch'] - outputs['onnx'])
    result['onnx_speedup'] = round(result['torch_s'] / result['onnx_s'], 3)
    result['onnx_vs_torch_max_abs'] = float(diff.max())
    result['onnx_vs_torch_mean_abs'] = float(diff.mean())
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('what', choices=['inference'])
    parser.add_argument('-n', '--model', default=DEFAULT_MODEL)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(bench_inference(args.model, args.size, args.runs), indent=2))


if __name__ == '__main__':
    main()
