"""The docs agree with the repository: links resolve, cited paths exist, quoted hashes are the files', and every
command and flag quoted in the README and the guides exists (issue 24)."""
import ast
import glob
import hashlib
import os
import re
import shlex

import pytest

from conftest import ROOT

DOCS = sorted(['README.md', 'weights/README.md'] + [os.path.relpath(p, ROOT) for p in
                                                    glob.glob(f'{ROOT}/docs/**/*.md', recursive=True)])
GUIDES = ['README.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(f'{ROOT}/docs/guides/*.md'))
# A path the docs or docstrings cite: under one of the repository's folders, with a file extension.
CITED_PATH = re.compile(r'(?<![\w./-])((?:ddrsr|scripts|docs|weights|options|tests|benchmarks|inputs)/[\w./-]*\w\.'
                        r'(?:md|py|yml|png|npz|pth|safetensors|txt|json|jpg))\b')
# Placeholders stand for a file the reader supplies or a run writes, not a file of the repository.
PLACEHOLDER = re.compile(r'NAME|MY_|/X\.|FILE|\*|_latest|net_g_\d|experiments/')
SHA256 = re.compile(r'(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])')


def read(path):
    with open(os.path.join(ROOT, path), encoding='utf-8') as handle:
        return handle.read()


def docstring_sources():
    for path in sorted(glob.glob(f'{ROOT}/ddrsr/**/*.py', recursive=True)) + [f'{ROOT}/inference.py']:
        yield os.path.relpath(path, ROOT), read(os.path.relpath(path, ROOT))


@pytest.mark.parametrize('doc', DOCS)
def test_relative_links_resolve(doc):
    text = read(doc)
    missing = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z]+://|mailto:|#', target):
            continue
        path = os.path.normpath(os.path.join(ROOT, os.path.dirname(doc), target.split('#')[0]))
        if not os.path.exists(path):
            missing.append(target)
    assert not missing, f'{doc} links to missing files: {missing}'


def test_cited_paths_exist():
    sources = [(doc, read(doc)) for doc in DOCS] + list(docstring_sources())
    missing = sorted({(source, path) for source, text in sources for path in CITED_PATH.findall(text)
                      if not PLACEHOLDER.search(path) and not os.path.exists(os.path.join(ROOT, path))})
    assert not missing, f'cited but missing: {missing}'


def shipped_hashes():
    with open(f'{ROOT}/weights/SHA256SUMS') as handle:
        return {line.split()[0]: line.split()[1] for line in handle if line.strip()}


def test_quoted_sha256_are_the_files():
    """A full sha256 in a doc is a shipped file's (SHA256SUMS, itself checked against the files by
    test_shipped_weights) or one of the pinned external files; a line that names a shipped file and quotes a hash
    quotes that file's."""
    from ddrsr.weights import realesrgan

    shipped = shipped_hashes()
    pinned = {value for name, value in vars(realesrgan).items() if isinstance(value, str) and SHA256.fullmatch(value)}
    problems = []
    for doc in DOCS:
        for number, line in enumerate(read(doc).splitlines(), 1):
            for digest in SHA256.findall(line):
                if digest not in shipped and digest not in pinned:
                    problems.append(f'{doc}:{number}: {digest[:16]}... is no shipped or pinned file')
                    continue
                named = [name for name in shipped.values() if re.search(rf'(?<![\w-]){re.escape(name)}', line)]
                if digest in shipped and named and shipped[digest] not in named:
                    problems.append(f'{doc}:{number}: {digest[:16]}... is {shipped[digest]}, not {named}')
    assert not problems, '\n'.join(problems)


def test_shipped_files_hash_as_listed():
    wrong = []
    for digest, name in shipped_hashes().items():
        with open(f'{ROOT}/weights/{name}', 'rb') as handle:
            if hashlib.sha256(handle.read()).hexdigest() != digest:
                wrong.append(name)
    assert not wrong


def quoted_commands(doc):
    """``(line, argv)`` of each command in the doc's ```bash blocks (continuations joined, comments dropped)."""
    for block in re.findall(r'```bash\n(.*?)```', read(doc), re.S):
        for line in block.replace('\\\n', ' ').splitlines():
            line = line.split(' #')[0].strip()
            if not line or line.startswith('#'):
                continue
            for command in re.split(r'\s*(?:&&|\|\||;)\s*', line):
                try:
                    yield command, shlex.split(command)
                except ValueError:
                    yield command, command.split()


def script_flags(path, follow=True):
    """The option strings a script's argparse declares, read from its source without importing it; a script that
    declares none is read through the repository modules it imports from (its parser lives in the library)."""
    flags, modules = set(), []
    for node in ast.walk(ast.parse(read(path))):
        if isinstance(node, ast.Call) and getattr(node.func, 'attr', '') == 'add_argument':
            flags.update(arg.value for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith('-'))
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module.replace('.', '/') + '.py')
    if not flags and follow:
        for module in modules:
            if os.path.exists(os.path.join(ROOT, module)):
                flags |= script_flags(module, follow=False)
    return flags


def cli_flags():
    import argparse

    from ddrsr.cli import build_parser
    from ddrsr.cli.upscale import build_parser as upscale_parser

    parser = build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    def visible(parser):  # the spellings --help shows: the hidden old ones (ddrsr.utils.cli_flags) do not count
        return {option for action in parser._actions for option in action.option_strings}

    flags = {name: visible(sub) for name, sub in subparsers.choices.items()}
    flags['inference.py'] = visible(upscale_parser())
    return flags


@pytest.mark.parametrize('doc', GUIDES)
def test_quoted_commands_and_flags_exist(doc):
    known = cli_flags()
    problems = []
    for command, argv in quoted_commands(doc):
        if argv[:2] == ['python', 'inference.py']:
            flags = known['inference.py']
        elif argv[:2] == ['python', 'ddrsr/train.py'] or argv[:1] == ['torchrun']:
            flags = known['train'] | {'--nproc_per_node', '--nnodes', '--rdzv_backend', '--rdzv_endpoint', '--rdzv_id'}
        elif argv[:1] == ['ddrsr']:
            if len(argv) < 2 or argv[1] not in known:
                problems.append(f'unknown subcommand: {command}')
                continue
            flags = known[argv[1]]
        elif argv[:1] == ['python'] and len(argv) > 1 and argv[1].startswith('scripts/'):
            if not os.path.exists(os.path.join(ROOT, argv[1])):
                problems.append(f'no such script: {command}')
                continue
            flags = script_flags(argv[1]) | {'-h', '--help'}
        else:
            continue
        for token in argv[2:]:
            flag = token.split('=')[0]
            if re.fullmatch(r'--[a-z][\w-]*', flag) and flag not in flags:
                problems.append(f'{flag} is not a flag of: {command}')
    assert not problems, f'{doc}:\n' + '\n'.join(problems)
