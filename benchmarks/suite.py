"""The whole benchmark run as a Python API: every section, the targets and ``docs/BENCHMARKS.md``.

    python scripts/benchmark.py --threads 2                 # full run (about 15 min on 2 idle cores)
    python scripts/benchmark.py --quick --output /tmp/B.md     # tiny sizes, seconds: checks that it runs

>>> results = run_benchmarks(quick=True, threads=1, sections=['synthesis'], output='/tmp/B.md')  # doctest: +SKIP
>>> results['synthesis']['speedup']  # doctest: +SKIP

Sections (``sections``, default all): ``inference`` (torch eager / onnxruntime / torch.compile, GFLOP/s
against the measured matmul rate), ``synthesis`` (kornia pipeline against BasicSR per image, and on CUDA
when a GPU is there), ``tiling`` (tile sizes against none, peak RSS each, and the 8K-output RSS check),
``training`` (s/iter of each lite option file), ``train_step`` (BasicSR's step against ddrsr's: ms/iter and
host syncs per iteration, ``device='cuda'`` on a GPU) and ``analysis`` (``ddrsr analyze`` wall time).
Each figure is the median of ``repeats`` runs after ``warmup`` warm-up runs. :func:`run_benchmarks` returns
the results dict and writes the Markdown to ``out`` (and the dict to ``json``); ``scripts/benchmark.py`` is
its command line (the same settings as flags) and prints the dict as JSON.
"""
import argparse
import glob
import json
import os
import shlex
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECTIONS = ('inference', 'synthesis', 'tiling', 'training', 'train_step', 'analysis')
#: Sections run only when asked for (``--sections precision``): they evaluate every model in every precision on
#: the validation photos, and write their own doc (``--output docs/BENCHMARKS_PRECISION.md``).
EXTRA_SECTIONS = ('precision',)


def _size(text):
    """``'640x480'`` -> ``(height, width)`` = ``(480, 640)``."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT such as 1920x1080, got {text!r}') from None
    return height, width


def _default_synthesis_options():
    for name in ('train_rrdb_ddr_real_x4_lite.yml', 'train_rrdb_ddr_x4_lite.yml'):  # the one with JPEG first
        if os.path.isfile(os.path.join(ROOT, 'options', name)):
            return os.path.join(ROOT, 'options', name)
    return None


def build_parser(description=None):
    """The settings as flags (``scripts/benchmark.py``); their defaults are :func:`settings`' defaults."""
    parser = argparse.ArgumentParser(prog='scripts/benchmark.py', description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='tiny models/sizes, one run per figure, for the test suite (figures are not benchmarks)')
    parser.add_argument('-o', '--output', default=os.path.join(ROOT, 'docs', 'BENCHMARKS.md'), help='Markdown to write')
    parser.add_argument('--json', help='also write the results as JSON here')
    parser.add_argument('--sections', nargs='+', choices=SECTIONS + EXTRA_SECTIONS, default=list(SECTIONS),
                        help='default: all but precision (model x backend x precision: speed, PSNR loss, RSS)')
    usable = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    parser.add_argument('--threads', type=int, default=usable,
                        help='torch/OpenCV/onnxruntime threads (default: the usable CPUs)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per figure (default: 5)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed runs first (default: 1)')
    parser.add_argument('-n', '--model', help='zoo model for inference and tiling (default: the shipped default)')
    parser.add_argument('--weights', help='checkpoint for that architecture instead of the shipped file')
    parser.add_argument('--size', type=int, default=256, help='inference input side (default: 256 -> 1024)')
    parser.add_argument('--matmul_size', type=int, default=2048)
    parser.add_argument('--no_compile', dest='compile', action='store_false', help='skip torch.compile')
    parser.add_argument('--synthesis_options', default=_default_synthesis_options(),
                        help='option file whose degradation block is benchmarked (default: the real-photo lite file)')
    parser.add_argument('--synthesis_size', type=int, default=256)
    parser.add_argument('--synthesis_batch', type=int, default=32)
    parser.add_argument('--tile_input', type=_size, default=(480, 640), help='WxH photo for tiling (default 640x480)')
    parser.add_argument('--tiles', type=int, nargs='+', default=[0, 128, 256, 512], help='0 = no tiling')
    parser.add_argument('--tile_pad', type=int, help='tile padding (default: the Upsampler default)')
    parser.add_argument('--big_input', type=_size, default=(1080, 1920),
                        help='WxH of the peak-RSS check (default 1920x1080: 8K output at x4)')
    parser.add_argument('--big_tile', type=int, default=256)
    parser.add_argument('--train_options', nargs='+', help='option files (default: options/*_lite.yml)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'),
                        help='device of the train_step section (default: cpu)')
    parser.add_argument('--analysis_hr', default=os.path.join(ROOT, 'datasets', 'debian_photos', 'hr'))
    parser.add_argument('--analysis_meta', default=os.path.join(ROOT, 'scripts', 'debian_photos_val.txt'),
                        help='meta-info file of --analysis_hr images to use ("" for all)')
    parser.add_argument('--analysis_model', default='srgan_encoder_x4_lite')
    parser.add_argument('--analysis_layer', default='body.7')
    parser.add_argument('--analysis_weights', help='checkpoint for --analysis_model instead of the shipped file')
    parser.add_argument('--analysis_patches', type=int, default=100,
                        help='patches per set (default: 100, x 3 specs = 300 patches, as `ddrsr analyze` does)')
    parser.add_argument('--analysis_runs', type=int, default=5)
    parser.add_argument('--analysis_patch', type=int, default=32)
    from ddrsr.zoo import DEFAULT_MODEL
    parser.add_argument('--precision_models', nargs='+', default=[DEFAULT_MODEL, 'rrdb_ddr_real_x4'],
                        help='models of the precision section (NAME@DETAIL for a detail knob)')
    parser.add_argument('--precision_size', type=int, default=128,
                        help='side of its timed LR photo (default: 128; smaller photos weigh onnxruntime\'s '
                             'fixed cost per run more)')
    parser.add_argument('--precision_crop', type=int, default=192,
                        help='HR crop of its quality columns, on the --analysis_hr validation photos (default: 192)')
    parser.add_argument('--precision_memory_models', nargs='*', default=[DEFAULT_MODEL],
                        help='models whose 8K tiled check runs in every precision (default: the lite default; a '
                        'full-size model takes ~15 min per photo on 2 cores)')
    return parser


def fresh_checkpoint(name, folder):
    """A freshly initialised checkpoint of zoo model ``name``'s architecture (speed does not depend on the weights)."""
    import torch

    from ddrsr.loader import build_generator
    from ddrsr.zoo import model_entry

    torch.manual_seed(0)
    path = os.path.join(folder, f'{name}_fresh.pth')
    torch.save({'params_ema': build_generator(model_entry(name)['arch']).state_dict()}, path)
    return path


def apply_quick(args, folder):
    """Tiny settings that exercise every code path in seconds, with fresh weights (no shipped file needed).

    Settings given on the command line are kept; only those left at their defaults are made tiny.
    """
    from ddrsr.zoo import DEFAULT_MODEL

    data = os.path.join(ROOT, 'tests', 'data')
    defaults = build_parser()
    quick = dict(repeats=1, warmup=0, size=32, matmul_size=256, compile=False,
                 synthesis_options=os.path.join(data, 'train_rrdb_ddr_smoke.yml'), synthesis_size=64,
                 synthesis_batch=4, tile_input=(48, 64), tiles=[0, 16], tile_pad=4, big_input=(64, 96),
                 big_tile=32, train_options=[os.path.join(data, 'train_srgan_encoder_smoke.yml'),
                                             os.path.join(data, 'train_rrdb_ddr_smoke.yml')],
                 analysis_hr=os.path.join(data, 'hr'), analysis_meta='', analysis_patches=8, analysis_runs=2,
                 analysis_patch=16, precision_size=16, precision_crop=32)
    for key, value in quick.items():
        if getattr(args, key) == defaults.get_default(key):
            setattr(args, key, value)
    args.model = args.model or DEFAULT_MODEL
    args.weights = args.weights or fresh_checkpoint(args.model, folder)
    args.analysis_weights = args.analysis_weights or fresh_checkpoint(args.analysis_model, folder)
    if args.precision_models == defaults.get_default('precision_models'):
        args.precision_models = [args.model]  # with the fresh weights above
    if args.precision_memory_models == defaults.get_default('precision_memory_models'):
        args.precision_memory_models = [args.model]


def _gpu(args, cpu_synthesis):
    import torch

    from benchmarks.synthesis_bench import bench_synthesis, device_parity

    if not torch.cuda.is_available():
        return {'measured': False, 'reason': 'no GPU lent (torch.cuda.is_available() is False)'}
    synthesis = bench_synthesis(args.synthesis_options, args.synthesis_size, args.synthesis_batch,
                                repeats=args.repeats, warmup=args.warmup, device='cuda', compile=args.compile)
    return {'measured': True, 'device': torch.cuda.get_device_name(0), 'synthesis': synthesis,
            'cpu_images_per_s': cpu_synthesis['ddrsr']['images_per_s'] if cpu_synthesis else None,
            'parity': device_parity(args.synthesis_options, 'cuda')}


def settings(**overrides):
    """The run's settings: the command line's defaults with ``overrides`` (names as the flags', ``_`` for ``-``).

    >>> settings(quick=True, threads=1).sections
    ['inference', 'synthesis', 'tiling', 'training', 'train_step', 'analysis']
    """
    args = build_parser().parse_args([])
    unknown = sorted(set(overrides) - set(vars(args)))
    if unknown:
        from ddrsr.errors import unknown_names_error
        raise unknown_names_error('benchmark setting', unknown, sorted(vars(args)))
    for key, value in overrides.items():
        setattr(args, key, value)
    args.given = dict(overrides)
    return args


def _command(args):
    """How the doc says the run was made: the script's command line, or the API call."""
    if getattr(args, 'argv', None) is not None:
        return 'python scripts/benchmark.py ' + shlex.join(args.argv)
    given = ', '.join(f'{key}={value!r}' for key, value in getattr(args, 'given', {}).items())
    return f'benchmarks.suite.run_benchmarks({given})'


def run_benchmarks(**overrides):
    """Run the benchmark with :func:`settings` ``(**overrides)``; returns the results dict.

    Keys: ``settings``, ``machine``, one entry per section run (``matmul`` and ``inference``; ``synthesis``
    and ``gpu``; ``tiling`` and ``big_image``; ``training``; ``train_step``; ``analysis``), then
    ``load_average_end``, ``targets`` (one row per target: ``target``, ``figure``, ``met``, ``why``) and
    ``optimisations`` (the doc's bullets). The Markdown goes to ``out``, the dict also to ``json``.

    Raises:
        DDRSRError: a bad setting (an unknown name, a missing folder, repeats < 1, ...).
    """
    return run(settings(**overrides))


def run(args):
    """All sections asked for in ``args`` (a :func:`settings` namespace); returns the results dict."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    # OpenMP/BLAS pools outside torch (scikit-learn's t-SNE, NumPy) get the same thread count as torch,
    # whatever OMP_NUM_THREADS the shell had.
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        with tempfile.TemporaryDirectory(prefix='ddrsr_bench_') as scratch, threadpool_limits(limits=args.threads):
            return _run(args, scratch)
    finally:  # in-process callers (the test suite) get their thread settings back
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)


def _run(args, scratch):
    import cv2
    import torch

    from benchmarks import report, timing
    from ddrsr.errors import DDRSRError

    if args.quick:
        apply_quick(args, scratch)
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        raise DDRSRError('--repeats and --threads must be >= 1 and --warmup >= 0')
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    results = {'settings': {'quick': args.quick, 'repeats': args.repeats, 'warmup': args.warmup,
                            'threads': args.threads, 'compile': args.compile, 'sections': args.sections,
                            'command': _command(args)},
               'machine': timing.machine_info()}

    if 'tiling' in args.sections:
        from benchmarks.memory_bench import start_server
        start_server()  # its children measure memory; it imports ddrsr while the other sections run

    def section(name, function):
        print(f'[benchmark] {name} ...', file=sys.stderr, flush=True)
        start = time.perf_counter()
        value = function()
        print(f'[benchmark] {name}: {time.perf_counter() - start:.1f} s', file=sys.stderr, flush=True)
        return value

    onnx_dir = os.path.join(scratch, 'onnx')  # one export of the ONNX pair, for inference and every tiling child
    if 'inference' in args.sections:
        from benchmarks.inference_bench import bench_inference
        results['matmul'] = section('matmul', lambda: timing.matmul_gflops(args.matmul_size, args.repeats,
                                                                           args.warmup))
        results['inference'] = section('inference', lambda: bench_inference(
            args.model, args.size, args.repeats, args.warmup, args.threads, onnx_dir,
            args.compile, results['matmul'], weights=args.weights))
    if 'synthesis' in args.sections:
        from benchmarks.synthesis_bench import bench_synthesis
        if not args.synthesis_options:
            raise DDRSRError('no option file with a degradation block found; pass --synthesis_options FILE')
        results['synthesis'] = section('synthesis', lambda: bench_synthesis(
            args.synthesis_options, args.synthesis_size, args.synthesis_batch, repeats=args.repeats,
            warmup=args.warmup, compile=args.compile))
        results['gpu'] = section('gpu', lambda: _gpu(args, results['synthesis']))
    if 'tiling' in args.sections:
        from benchmarks.memory_bench import bench_big_image, bench_tiling
        from ddrsr.zoo import DEFAULT_MODEL
        model = args.model or DEFAULT_MODEL
        results['tiling'] = section('tiling', lambda: bench_tiling(
            model, *args.tile_input, tiles=args.tiles, tile_pad=args.tile_pad, repeats=args.repeats,
            warmup=args.warmup, threads=args.threads, weights=args.weights, onnx_dir=onnx_dir))
        results['big_image'] = section('8K memory check', lambda: bench_big_image(
            model, *args.big_input, tile=args.big_tile, tile_pad=args.tile_pad, threads=args.threads,
            weights=args.weights, onnx_dir=onnx_dir))
    if 'training' in args.sections:
        from benchmarks.training_bench import bench_training
        files = args.train_options or sorted(glob.glob(os.path.join(ROOT, 'options', '*_lite.yml')))
        results['training'] = [section(f'training {os.path.basename(f)}', lambda f=f: bench_training(
            f, args.repeats, args.warmup)) for f in files]
    if 'train_step' in args.sections:
        from benchmarks.training_bench import bench_train_step
        files = args.train_options or sorted(glob.glob(os.path.join(ROOT, 'options', '*_lite.yml')))
        results['train_step'] = [section(f'train step {step} {os.path.basename(f)}', lambda f=f, step=step: (
            bench_train_step(f, args.repeats, args.warmup, step=step, device=args.device)))
            for f in files for step in ('basicsr', 'ddrsr')]
    if 'analysis' in args.sections:
        from benchmarks.analysis_bench import bench_analyze
        if not os.path.isdir(args.analysis_hr):
            raise DDRSRError(f'--analysis_hr {args.analysis_hr!r} is not a folder; fetch the photos with '
                             'scripts/fetch_photos.py or pass another HR folder')
        results['analysis'] = section('analysis', lambda: bench_analyze(
            args.analysis_hr, args.analysis_model, args.analysis_layer, patches=args.analysis_patches,
            runs=args.analysis_runs, patch=args.analysis_patch, repeats=args.repeats, warmup=args.warmup,
            startup=not args.quick, weights=args.analysis_weights, meta_info=args.analysis_meta or None))
    if 'precision' in args.sections:
        from benchmarks.precision_bench import bench_precision, bench_precision_memory
        weights = {args.model: args.weights} if args.model and args.weights else {}
        results['precision'] = section('precision', lambda: bench_precision(
            args.precision_models, size=args.precision_size, repeats=args.repeats, warmup=args.warmup,
            onnx_dir=onnx_dir, hr=args.analysis_hr, meta_info=args.analysis_meta or None,
            crop_size=args.precision_crop, weights=weights,
            # OpenVINO's runtime, once loaded, crashed a later test in the same pytest process (a segfault, order-
            # dependent), so the --quick run of the test suite leaves it out; a real run is a process of its own.
            compare_openvino=not args.quick))
        results['precision']['memory'] = section('precision 8K memory', lambda: bench_precision_memory(
            args.precision_memory_models, *args.big_input, tile=args.big_tile, threads=args.threads,
            onnx_dir=onnx_dir, weights=weights))
        from ddrsr.inference.torch_backend import cpu_abilities
        results['precision']['cpu'] = cpu_abilities()
    results['load_average_end'] = round(os.getloadavg()[0], 2)
    results['targets'] = report.targets(results)
    results['optimisations'] = report.optimisations(results)
    from ddrsr.utils.markdown import write_text

    write_text(args.output, report.markdown(results))
    if args.json:
        write_text(args.json, json.dumps(results, indent=2))
    return results
