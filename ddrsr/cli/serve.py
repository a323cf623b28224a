"""``ddrsr serve``: its arguments and the command; the page is ddrsr/serve/app.py, the work engine.py."""
import importlib.util

from ddrsr.cli._common import add_device, parser_with_example
from ddrsr.errors import DDRSRError

EXAMPLE = ('ddrsr serve                  # then open http://127.0.0.1:7860 in a browser\n'
           '  ddrsr serve --port 8080 --max_pixels 4e6 -n rrdb_ddr_real_x4_lite\n'
           '  ddrsr serve --host 0.0.0.0    # let other machines on the network use it (no password)')
INSTALL_HINT = 'pip install -e ".[web]" (from a ddrsr checkout), or pip install "gradio>=5"'


def cmd_serve(args):
    """Load the model once, then serve the page until Ctrl+C."""
    if importlib.util.find_spec('gradio') is None:  # before the model loads: say what is missing at once
        raise DDRSRError(f'ddrsr serve needs Gradio, from the optional web extra; install it with: {INSTALL_HINT}')
    if not 0 <= args.max_pixels < float('inf'):  # also refuses nan
        raise DDRSRError(f'--max_pixels must be a pixel count >= 0 (0: no limit), such as 4e6; got {args.max_pixels}')
    if args.tile < 0:
        raise DDRSRError(f'--tile must be >= 0 (0: whole photos); got {args.tile}')
    from ddrsr.serve.engine import ServeEngine
    from ddrsr.serve.server import serve_forever

    engine = ServeEngine(args.model, weights=args.weights, device=args.device, tile=args.tile, detail=args.detail,
                         max_pixels=int(args.max_pixels), regressors=args.regressors, precision=args.precision)
    try:
        serve_forever(engine, args.host, args.port)
    finally:
        engine.close()
    return None


def add_subcommands(subparsers):
    from ddrsr.defaults import DEFAULT_REGRESSORS, PRECISIONS, SERVE_MAX_PIXELS, SERVE_TILE
    from ddrsr.zoo import DEFAULT_MODEL

    serve = parser_with_example(
        subparsers, 'serve', 'A local web page: drop photos, read the inspect report of each, set the strength on a '
        'live preview, compare before/after and download the full-size result. Needs the web extra: '
        + INSTALL_HINT + '.', EXAMPLE)
    serve.add_argument('--host', default='127.0.0.1',
                       help='address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every network)')
    serve.add_argument('--port', type=int, default=7860, help='port (default: 7860)')
    serve.add_argument('-n', '--model', default=DEFAULT_MODEL,
                       help=f'DDR model with a clean embedding (default: {DEFAULT_MODEL})')
    serve.add_argument('--weights', help='checkpoint to use instead of the shipped weights')
    serve.add_argument('--detail', type=float, default=None,
                       help='for rrdb_ddr_real_x4: 0 (fidelity) to 1 (Real-ESRGAN x4plus\'s look); default: the model\'s')
    serve.add_argument('--max_pixels', type=float, default=SERVE_MAX_PIXELS,
                       help='refuse uploads with more pixels, checked before decoding (default: '
                       f'{SERVE_MAX_PIXELS}, {SERVE_MAX_PIXELS / 1e6:g} MP; 0: no limit)')
    serve.add_argument('-t', '--tile', type=int, default=SERVE_TILE,
                       help=f'tile size in input pixels; progress and cancel act per tile (default: {SERVE_TILE})')
    serve.add_argument('--regressors', default=DEFAULT_REGRESSORS, help='inspect regressor file (default: the shipped one)')
    serve.add_argument('--precision', choices=PRECISIONS, default='fp32',
                       help='precision of the full-size upscale (default: fp32, which the preview also uses, so the '
                       'download matches it; int8 or bf16: faster, the preview stays fp32)')
    add_device(serve)
    serve.set_defaults(func=cmd_serve)
