"""``ddrsr export``: ONNX export of a model (ddrsr.export), optionally verified against torch."""
from ddrsr.cli._common import add_device, parser_with_example


def cmd_export(args):
    """Export a model to ONNX (one graph lq -> sr) and optionally verify it against torch."""
    from ddrsr.export import export_onnx, verify_onnx
    from ddrsr.utils.device import resolve_device
    from ddrsr.loader import load

    device = resolve_device(args.device)
    loaded = load(args.model, weights=args.weights, device='cpu')
    export_onnx(loaded, args.output, opset=args.opset, fp16=args.fp16)
    result = {'model': args.model, 'output': args.output, 'opset': args.opset, 'fp16': args.fp16}
    if args.verify:
        result['verify'] = verify_onnx(loaded.network.to(device), args.output, device=str(device))
    return result


def add_subcommands(subparsers):
    from ddrsr.zoo import DEFAULT_MODEL

    export = parser_with_example(subparsers, 'export', 'Export a model to ONNX: one graph, lq -> sr.',
                                 'ddrsr export -n rrdb_ddr_real_x4_lite -o model.onnx --verify')
    export.add_argument('-n', '--model', default=DEFAULT_MODEL, help=f'model name (default: {DEFAULT_MODEL})')
    export.add_argument('--weights', help='checkpoint to use instead of the shipped weights')
    export.add_argument('-o', '--output', required=True, help='ONNX file to write')
    export.add_argument('--opset', type=int, default=17, help='ONNX opset (>= 17, default: 17)')
    export.add_argument('--fp16', action='store_true', help='store weights and compute in float16')
    export.add_argument('--verify', action='store_true', help='compare onnxruntime with torch on two input sizes')
    add_device(export)
    export.set_defaults(func=cmd_export)
