"""One spelling per flag (ddrsr.utils.cli_flags): underscores, -n/--model, --weights, -o/--output; old ones hidden."""
import argparse
import glob
import os

import pytest

from conftest import ROOT
from test_doc_truth import script_flags
from ddrsr.utils.cli_flags import RENAMED, add_hidden_aliases, is_house_spelling


def parsers():
    from ddrsr.cli import build_parser
    from ddrsr.cli.upscale import build_parser as upscale_parser

    top = build_parser()
    subparsers = next(action for action in top._actions if isinstance(action, argparse._SubParsersAction))
    return {'inference.py': upscale_parser(), **{f'ddrsr {name}': sub for name, sub in subparsers.choices.items()}}


def declared_flags(path):
    """The long flags a source file declares with add_argument, read without importing it."""
    return sorted(flag for flag in script_flags(path, follow=False) if flag.startswith('--'))


def test_every_shown_flag_has_the_house_spelling():
    bad = [f'{name}: {option}' for name, parser in parsers().items() for action in parser._actions
           for option in action.option_strings if option.startswith('--') and not is_house_spelling(option)]
    sources = glob.glob(os.path.join(ROOT, 'scripts', '*.py')) + glob.glob(os.path.join(ROOT, 'benchmarks', '*.py'))
    sources += glob.glob(os.path.join(ROOT, 'ddrsr', '**', '*.py'), recursive=True)
    bad += [f'{os.path.relpath(path, ROOT)}: {flag}' for path in sources for flag in declared_flags(path)
            if not is_house_spelling(flag) and not path.endswith('cli_flags.py')]
    assert not bad, bad


def test_model_weights_and_output_flags_are_the_same_everywhere():
    for name, parser in parsers().items():
        options = {option for action in parser._actions for option in action.option_strings}
        assert '--model_name' not in options and '--model_path' not in options, name
        if '--model' in options and name != 'ddrsr generalization':  # generalization takes --model repeatedly only
            model = next(action for action in parser._actions if '--model' in action.option_strings)
            assert '-n' in model.option_strings or name in ('ddrsr analyze', 'ddrsr identify',
                                                             'ddrsr classification-vs-sr'), name


@pytest.mark.parametrize('argv,dest,value', [
    (['--model_name', 'm'], 'model', 'm'),        # Real-ESRGAN's spelling
    (['--model_path', 'w.pth'], 'weights', 'w.pth'),
    (['--tile-pad', '7'], 'tile_pad', 7),         # hyphens for underscores
    (['--max-pixels', '10'], 'max_pixels', 10),
])
def test_old_spellings_still_parse_in_inference_py(argv, dest, value):
    from ddrsr.cli.upscale import build_parser

    parser = build_parser()
    assert getattr(parser.parse_args(argv), dest) == value
    help_text = parser.format_help()
    assert argv[0] not in help_text.replace('--model ', '').split()  # hidden from --help


def test_old_spellings_still_parse_in_subcommands():
    from ddrsr.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(['faig-predict', '--target', 't', '--ranking', 'r.json', '--hr', 'H', '--fit-hr', 'F',
                              '--fit-images', '3', '--out', 'O'])
    assert (args.fit_hr, args.fit_images, args.output) == ('F', 3, 'O')
    assert parser.parse_args(['evaluate', '--hr', 'H', '--markdown', 'T.md']).output == 'T.md'
    assert parser.parse_args(['export', '--model_path', 'w.pth', '-o', 'x.onnx']).weights == 'w.pth'
    args = parser.parse_args(['evolution', '--checkpoints', 'a.pth', '--arch-from-model', 'z', '--layer', 'L',
                              '--hr', 'H', '--val-hr', 'V'])
    assert (args.arch_from_model, args.val_hr) == ('z', 'V')


def test_an_alias_never_shadows_a_real_flag():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', help='a folder')
    parser.add_argument('--output', help='a file')
    add_hidden_aliases(parser)
    args = parser.parse_args(['--out', 'A', '--output', 'B'])
    assert (args.out, args.output) == ('A', 'B')


def test_every_script_with_flags_accepts_the_old_spellings():
    missing = []
    for path in glob.glob(os.path.join(ROOT, 'scripts', '*.py')):
        text = open(path, encoding='utf-8').read()
        renamed = [flag for flag in declared_flags(path) if flag in RENAMED.values() or '_' in flag]
        uses_ddrsr = 'from ddrsr' in text  # fetch_photos.py runs before the package is installed
        if renamed and uses_ddrsr and 'parse_args(' in text and 'add_hidden_aliases' not in text:
            missing.append(os.path.relpath(path, ROOT))
    assert not missing, missing
