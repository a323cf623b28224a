"""The package's layers, enforced: every import inside ddrsr (module-level or inside a function) goes to its own
layer or a lower one, and no set of modules imports itself in a loop. docs/DESIGN.md draws the same order."""
import ast
import os

from conftest import ROOT

#: ddrsr's top-level modules and subpackages, lowest first. A module may import from its own layer and the ones
#: below it, never from a higher one.
LAYERS = [
    {'errors', 'defaults', 'compat', 'utils'},               # no ddrsr imports but errors
    {'archs', 'data', 'evaluation', 'zoo'},                 # networks, photos and degradations, metrics, the model list
    {'weights'},                                            # files: formats, manifest, companions, deltas, importers
    {'loader', 'integrations'},                             # name/file/options -> a built, verified network
    {'export', 'inspection', 'faig', 'results_report'},    # ONNX export, degradation inspection, FAIG, report tables
    {'inference', 'analysis'},                              # the Upsampler and its backends; DDR analysis
    {'models'},                                             # BasicSR training models (register on import)
    {'ddrsr'},                                              # the package itself: ddrsr.register() fills the registries
    {'training', 'serve'},                                  # option files and training runs; the web page
    {'release', 'cli'},                                     # the release family; the command line
    {'train'},                                              # ddrsr/train.py, the thin BasicSR-style entry
]

#: Imports that run upward on purpose, each with its reason: ``(importer, imported)`` module names.
ALLOWED_UPWARD = {
    # the deprecated alias zoo.load_model (kept for code written before loader.load) calls the loader
    ('ddrsr.zoo', 'ddrsr.loader'),
}

PACKAGE = os.path.join(ROOT, 'ddrsr')


def _modules():
    modules = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path[:-3], ROOT).replace(os.sep, '.')
                modules[dotted[:-len('.__init__')] if dotted.endswith('.__init__') else dotted] = path
    return modules


def import_graph():
    """``{module: {imported ddrsr modules}}`` from every import statement, function-level ones included."""
    modules, graph = _modules(), {}
    for module, path in modules.items():
        package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parts = package.split('.')
                    base = '.'.join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                names = [base] + [f'{base}.{alias.name}' for alias in node.names]
            else:
                continue
            targets.update(name for name in names if name in modules and name != module)
        graph[module] = targets
    return graph


def layer_of(module):
    room = module.split('.')[1] if module.count('.') else 'ddrsr'
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError(f'{module}: its room {room!r} is in no layer of LAYERS; add it where it belongs')


def test_every_room_has_a_layer_and_imports_only_downward():
    graph = import_graph()
    upward = sorted((module, target) for module, targets in graph.items() for target in targets
                    if layer_of(target) > layer_of(module) and (module, target) not in ALLOWED_UPWARD)
    assert not upward, 'imports that run up the layers (move the code, or the shared piece down):\n' + '\n'.join(
        f'  {module} (layer {layer_of(module)}) -> {target} (layer {layer_of(target)})' for module, target in upward)
    graph_edges = {(module, target) for module, targets in graph.items() for target in targets}
    assert ALLOWED_UPWARD <= graph_edges, 'an allowed upward import is gone: remove it from ALLOWED_UPWARD'


def _cycles(graph):
    """Strongly connected sets of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_loop():
    graph = import_graph()
    graph = {module: {t for t in targets if (module, t) not in ALLOWED_UPWARD} for module, targets in graph.items()}
    assert _cycles(graph) == []


def test_the_checks_catch_a_loop_and_an_upward_import():
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert layer_of('ddrsr.errors') < layer_of('ddrsr.loader') < layer_of('ddrsr.inference.upsampler')
    assert layer_of('ddrsr') < layer_of('ddrsr.cli.upscale')


def maintainer_packages():
    """setup.py's MAINTAINER_PACKAGES (read from its source: importing setup.py would run setup())."""
    with open(os.path.join(ROOT, 'setup.py'), encoding='utf-8') as f:
        for node in ast.parse(f.read()).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'MAINTAINER_PACKAGES':
                return ast.literal_eval(node.value)
    raise AssertionError('setup.py has no MAINTAINER_PACKAGES')


def test_the_wheel_leaves_maintainer_tooling_out_and_needs_none_of_it():
    from setuptools import find_packages

    tooling = maintainer_packages()
    excluded = [name + tail for name in tooling for tail in ('', '.*')]
    shipped = set(find_packages(ROOT, include=['ddrsr', 'ddrsr.*'], exclude=excluded))
    assert 'ddrsr.inference' in shipped and not shipped & set(tooling)

    def is_tooling(module):
        return any(module == name or module.startswith(name + '.') for name in tooling)

    needs = sorted((module, target) for module, targets in import_graph().items() if not is_tooling(module)
                   for target in targets if is_tooling(target))
    assert not needs, f'installed modules that import maintainer tooling (absent from the wheel): {needs}'
