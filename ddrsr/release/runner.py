"""``train_release``: calibrate, size, train the release family in dependency order, export, evaluate, ship.

Everything lives in one output folder::

    release_state.json   the plan and each stage's progress (atomic JSON; the same command resumes from it)
    options/*.yml        the derived option files (kept)
    experiments/<name>/  BasicSR runs (``--auto_resume`` continues them from their last checkpoint)
    logs/<stage>.log     each stage's console output; calibration/ holds the calibration runs
    weights/*.pth        fp16 ``params_ema`` of each model, with SHA256SUMS
    manifest.json        per model: sha256, option file, iterations, wall time, device, validation PSNR/SSIM
    validation.md        the validation table, as ``ddrsr evaluate --output`` writes it
"""
import fcntl
import os
import platform
import re
import sys
import time

import torch
from tqdm import tqdm

from ddrsr.errors import DDRSRError
from ddrsr.release import publish, workers
from ddrsr.release.calibrate import calibrate, write_options
from ddrsr.release.data import ensure_training_data
from ddrsr.release.plan import make_plan, plan_table, resize_stages
from ddrsr.release.stages import STAGE_BY_KEY, STAGES, TEMPLATES_DIR, derive_options, load_template, validation_set
from ddrsr.release.state import ReleaseState
from ddrsr.zoo import WEIGHTS_DIR

HEARTBEAT_S = 5.0
ITER_RE = re.compile(r'iter:\s*([\d,]+)')


def say(message):
    print(message, file=sys.stderr, flush=True)


def resolve_device(device):
    """``'cpu'`` or ``'cuda'`` (a string: it goes into the plan) from auto | cpu | cuda; see ddrsr.utils.device."""
    from ddrsr.utils.device import resolve_device as resolve

    if device not in ('auto', 'cpu', 'cuda'):
        raise DDRSRError(f'--device must be auto, cpu or cuda, got {device!r}')
    return resolve(device).type


def device_name(device):
    if device == 'cuda':
        return torch.cuda.get_device_name(0)
    return f'{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores'


def _lock(out):
    handle = open(os.path.join(out, '.release.lock'), 'w')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise DDRSRError(f'another train_release is running on {out}; wait for it or use another --output') from None
    return handle


def _wait_for_orphans(state, timeout=30.0):
    """Children of a killed run die with their fork server; wait until they are gone before resuming."""
    deadline = time.monotonic() + timeout
    for pid in state.get('children', []):
        while os.path.exists(f'/proc/{pid}') and time.monotonic() < deadline:
            try:
                with open(f'/proc/{pid}/stat') as f:
                    if f.read().split(') ')[-1].startswith('Z'):
                        break
            except OSError:
                break
            time.sleep(0.2)
        if os.path.exists(f'/proc/{pid}') and time.monotonic() >= deadline:
            raise DDRSRError(f'process {pid} of an earlier train_release on this folder is still running; stop it '
                             'first (kill it by that id), then rerun the command')


def _threads():
    return int(os.environ.get('OMP_NUM_THREADS') or os.cpu_count() or 1)


class ReleaseRun:
    """One invocation of the release command on ``out`` (see the module docstring)."""

    def __init__(self, out, budget, device='auto', templates_dir=TEMPLATES_DIR, lanes=None, progress=True,
                 started=None, max_iterations=None, calibration_seconds=None):
        self.max_iterations, self.calibration_seconds = max_iterations, calibration_seconds
        self.started = started or time.monotonic()  # the budget counts from the command's start
        self.planned_here = False
        self.out = os.path.abspath(out)
        self.budget, self.lanes, self.progress = float(budget), lanes, progress
        self.device = resolve_device(device)
        os.makedirs(self.out, exist_ok=True)
        self.lock = _lock(self.out)
        self.state = ReleaseState(self.out)
        if not self.finished and 'plan' in self.state and \
                (self.state['budget'], self.state['device']) != (self.budget, self.device):
            raise DDRSRError(f'{self.out} holds a run planned for --budget {self.state["budget"]:g} --device '
                             f'{self.state["device"]}; rerun with those to continue it, or use a new --output')
        self.templates = {stage.key: load_template(stage, templates_dir) for stage in STAGES}
        self.weights = {stage.key: os.path.join(self.out, 'weights', stage.file) for stage in STAGES}

    @property
    def finished(self):
        """Every stage is trained and exported (evaluation and shipping may still be to do, on any device)."""
        return 'plan' in self.state and all(self.state.stage(s.key)['status'] == 'exported' for s in STAGES)

    # ------------------------------------------------------------------------------------------- planning
    def prepare(self):
        """Data, calibration and plan (once; a resumed run reuses them). Returns the plan."""
        if self.finished:
            return self.state['plan']
        made = ensure_training_data(self.templates, self.progress)
        if made:
            say(f'made training crops in {", ".join(made)}')
        if 'plan' in self.state:
            return self.state['plan']
        folder = os.path.join(self.out, 'calibration')
        os.makedirs(folder, exist_ok=True)
        encoder = self.templates['encoder']
        random_encoder = os.path.join(folder, 'random_encoder.pth')
        from ddrsr.loader import build_generator
        torch.save({'params_ema': build_generator(encoder['network_g']).state_dict()}, random_encoder)
        stand_in = {'encoder': random_encoder, 'encoder_blind': random_encoder, 'rrdb_clean': None}
        opts = {}
        for stage in STAGES:
            template = self.templates[stage.key]
            opts[stage.key] = derive_options(template, stage, template['train']['total_iter'], self.device,
                                             stand_in, 10 ** 9, 10 ** 9)
        calibration = self.state.get('calibration')
        if calibration and calibration['device'] == self.device and (self.lanes == 1 or calibration['side_by_side']):
            say(f'reusing the calibration in {self.state.path} from an earlier invocation')
        else:
            seconds = self.calibration_seconds or min(5.0, max(0.3, 0.008 * self.budget))
            say(f'calibrating on {self.device} ({seconds:.1f} s per measurement)')
            calibration = calibrate(opts, int(opts['encoder']['train']['gan_start_iter']), self.device, _threads(),
                                    seconds, folder, self.progress, side_by_side=self.lanes != 1)
            self.state['calibration'] = calibration
            self.state.save()  # kept even if no plan fits the budget: a rerun with a larger one reuses it
        gan_share = 1 - encoder['train'].get('gan_start_iter', 0) / encoder['train']['total_iter']
        spent = time.monotonic() - self.started
        plan = make_plan(calibration, self.budget - spent, gan_share, self.lanes, self.max_iterations)
        plan['spent_before_training_s'] = spent
        self.state['plan'] = plan
        option_files = self._write_options([stage.key for stage in STAGES])
        self.planned_here = True
        self.state.update(budget=self.budget, device=self.device, device_name=device_name(self.device),
                          calibration=calibration, options=option_files)
        self.state.save()
        return plan

    def _write_options(self, keys):
        """Write the derived option files of stages ``keys`` from the plan; returns ``{key: path}``."""
        plan, files = self.state['plan'], {}
        for key in keys:
            stage, planned = STAGE_BY_KEY[key], plan['stages'][key]
            opt = derive_options(self.templates[key], stage, planned['iterations'], self.device, self.weights,
                                 planned['checkpoint_every'], planned['print_every'])
            files[key] = write_options(opt, os.path.join(self.out, 'options', stage.template))
            planned['experiment'] = os.path.join(self.out, 'experiments', opt['name'])
        return files

    def _resize_phase(self, keys, phase_started):
        """Before phase 2 of a run planned in this invocation: fit its stages to the time really left."""
        plan = self.state['plan']
        if not self.planned_here or any(self.state.stage(k)['segments'] for k in keys):
            return
        now = time.monotonic()
        slower = (now - phase_started) / max(plan['phase_s'][0], 1e-9)
        left = self.budget - (now - self.started) - plan['reserve_s']
        factor = min(3.0, max(0.1, left / max(plan['phase_s'][1] * slower, 1e-9)))
        if abs(factor - 1) > 0.05:
            resize_stages(plan, keys, factor)
            self._write_options(keys)
            say(f'phase 1 took {slower:.2f}x its planned time; phase 2 resized by {factor:.2f}x to fit the budget: '
                + ', '.join(f'{k} {plan["stages"][k]["iterations"]} it' for k in keys))
            self.state.save()

    # ------------------------------------------------------------------------------------------- training
    def _start(self, key, running):
        stage_state = self.state.stage(key)
        log = os.path.join(self.out, 'logs', f'{key}.log')
        os.makedirs(os.path.dirname(log), exist_ok=True)
        process = workers.start(workers.train_stage, self.state['options'][key], self.out,
                                self.state['plan']['threads'], log)
        stage_state['segments'] += 1
        stage_state['status'] = 'training'
        self.state['children'] = [p.pid for _, p, _, _ in running.values()] + [process.pid]
        self.state.save()
        return key, process, time.monotonic(), stage_state['wall_s']

    def _finish(self, key):
        planned, stage_state = self.state['plan']['stages'][key], self.state.stage(key)
        checkpoint = os.path.join(planned['experiment'], 'models', 'net_g_latest.pth')
        stage_state.update(publish.export_stage(checkpoint, self.weights[key]))
        stage_state.update(status='exported', iterations=planned['iterations'])
        publish.prune_checkpoints(planned['experiment'])
        self.state.save()
        say(f'{key}: {planned["iterations"]} iterations in {stage_state["wall_s"]:.0f} s -> {self.weights[key]}')

    def _failed(self, key, process, running):
        workers.kill_alive(other for _, other, _, _ in running.values())
        log = os.path.join(self.out, 'logs', f'{key}.log')
        tail = workers.log_tail(log, 2000)
        raise DDRSRError(f'the {key} stage failed (exit code {process.exitcode}); the same command resumes it '
                         f'after a fix. Its log {log} ends with:\n{tail}')

    def _done_iterations(self, key, offsets):
        """Last iteration logged by a running stage (read incrementally from its log)."""
        log = os.path.join(self.out, 'logs', f'{key}.log')
        if not os.path.exists(log):
            return 0
        with open(log, errors='replace') as f:
            f.seek(offsets.get(key, (0, 0))[0])
            text = f.read()
            position = f.tell()
        found = [int(n.replace(',', '')) for n in ITER_RE.findall(text)]
        last = max(found) if found else offsets.get(key, (0, 0))[1]
        offsets[key] = (position, last)
        return last

    def train(self):
        """Run every phase; stages already exported are skipped, interrupted ones resume."""
        plan = self.state['plan']
        _wait_for_orphans(self.state)
        total = sum(s['iterations'] for s in plan['stages'].values())
        done = sum(plan['stages'][k]['iterations'] for k in plan['stages'] if self.state.stage(k)['status'] == 'exported')
        offsets = {}
        with tqdm(total=total, initial=done, desc='train release', unit='it', disable=not self.progress) as bar:
            for number, phase in enumerate(plan['phases']):
                if number == 0:
                    phase_started = time.monotonic()
                else:
                    self._resize_phase([k for lane in phase for k in lane], phase_started)
                    bar.total = total = sum(s['iterations'] for s in plan['stages'].values())
                lanes = [[k for k in lane if self.state.stage(k)['status'] != 'exported'] for lane in phase]
                running, beat = {}, time.monotonic()
                while running or any(lanes):
                    for index, lane in enumerate(lanes):
                        while index not in running and lane:
                            key = lane.pop(0)
                            if os.path.exists(os.path.join(plan['stages'][key]['experiment'], 'models',
                                                           'net_g_latest.pth')):
                                self._finish(key)  # trained before a kill hit its export
                            else:
                                running[index] = self._start(key, running)
                    time.sleep(0.2)
                    now = time.monotonic()
                    for index, (key, process, since, base) in list(running.items()):
                        self.state.stage(key)['wall_s'] = base + now - since
                        if process.is_alive():
                            continue
                        process.join()
                        del running[index]
                        if process.exitcode != 0:
                            self._failed(key, process, running)
                        self._finish(key)
                    progress = done + sum(self._done_iterations(k, offsets) for k, _, _, _ in running.values())
                    bar.n = min(total, max(bar.n, progress))
                    bar.refresh()
                    if now - beat >= HEARTBEAT_S:
                        self.state.save()
                        beat = now
                    done = sum(plan['stages'][k]['iterations'] for k in plan['stages']
                               if self.state.stage(k)['status'] == 'exported')
        self.state['children'] = []
        self.state.save()

    # ------------------------------------------------------------------------------------- publishing
    def validation(self):
        """The largest validation set of the templates: ``(hr, meta_info, crop_size, specs)``."""
        return max((validation_set(t) for t in self.templates.values()), key=lambda v: len(v[3]))

    def evaluate(self):
        val, table = self.validation(), self.state.setdefault('evaluation', {})
        device = self.device
        if 'bicubic' not in table:
            table['bicubic'] = publish.evaluate_network('bicubic', val, val[3], device, self.progress)
        for stage in STAGES:
            if stage.key not in table:
                network = publish.load_network(self.templates[stage.key]['network_g'], self.weights[stage.key], device)
                table[stage.key] = publish.evaluate_network(network, val, val[3], device, self.progress)
                self.state.save()
        self.state.save()
        return table

    def ship(self, weights_dir):
        from ddrsr.weights.manifest import MANIFEST_NAME

        if not os.path.isfile(os.path.join(weights_dir, MANIFEST_NAME)):
            raise DDRSRError(f'{weights_dir} has no {MANIFEST_NAME}, so there are no shipped weights to compare with; '
                             'run --ship in the repository (copy OUT back from the GPU machine and rerun the command '
                             'there with --device auto --ship)')
        val, results = self.validation(), self.state.setdefault('shipped', {})
        for stage in STAGES:
            if stage.key not in results:
                results[stage.key] = publish.ship_stage(stage, self.weights[stage.key], val, weights_dir, self.device,
                                                        self.progress)
                self.state.save()
                say(f'{stage.key}: {"shipped" if results[stage.key]["shipped"] else "kept the shipped file"} '
                    f'({results[stage.key]["reason"]})')
        return results

    def manifest(self, command):
        """Write ``manifest.json`` and ``validation.md``; returns the manifest."""
        import json

        from ddrsr.utils.atomic_file import AtomicFile
        from ddrsr.zoo import model_entry

        table, val = self.state['evaluation'], self.validation()
        labels = {'bicubic': 'bicubic', **{s.key: model_entry(s.zoo_name).get('label', s.key) for s in STAGES}}
        with AtomicFile(os.path.join(self.out, 'validation.md')) as f:
            f.write(publish.validation_markdown(table, labels, val, command).encode())
        models = {}
        for stage in STAGES:
            stage_state, planned = self.state.stage(stage.key), self.state['plan']['stages'][stage.key]
            models[stage.key] = {
                'file': os.path.relpath(self.weights[stage.key], self.out), 'zoo_name': stage.zoo_name,
                'sha256': stage_state['sha256'], 'bytes': stage_state['bytes'],
                'parameters': stage_state['parameters'], 'template': stage.template,
                'option_file': os.path.join('options', stage.template),
                'iterations': stage_state['iterations'], 'wall_s': round(stage_state['wall_s'], 1),
                'segments': stage_state['segments'], 'device': self.state['device_name'],
                'calibrated_it_per_s': round(planned['rate'], 3),
                'validation': table[stage.key], 'shipped': self.state.get('shipped', {}).get(stage.key)}
        manifest = {'budget_s': self.budget, 'device': self.device, 'device_name': self.state['device_name'],
                    'lanes': self.state['plan']['lanes'], 'calibration': self.state['calibration'],
                    'validation_set': dict(zip(('hr', 'meta_info', 'crop_size', 'specs'), val)),
                    'bicubic': table['bicubic'], 'models': models, 'validation_table': 'validation.md'}
        with AtomicFile(os.path.join(self.out, 'manifest.json')) as f:
            f.write(json.dumps(manifest, indent=1).encode())
        return manifest


def run_release(out, budget, device='auto', ship=False, weights_dir=WEIGHTS_DIR, templates_dir=TEMPLATES_DIR,
                lanes=None, dry_run=False, progress=True, command=None, started=None, max_iterations=None,
                calibration_seconds=None):
    """The whole release command; returns the manifest (or, with ``dry_run``, the plan).

    ``started`` (``time.monotonic()`` at the command's start) is when the budget began; default: now.
    """
    run = ReleaseRun(out, budget, device, templates_dir, lanes, progress, started, max_iterations,
                     calibration_seconds)
    resumed = 'plan' in run.state
    plan = run.prepare()
    say(('continuing the plan in ' if resumed else 'planned ') + os.path.join(run.out, 'release_state.json'))
    for line in plan_table(plan):
        say(line)
    if dry_run:
        return {'plan': plan, 'calibration': run.state['calibration']}
    if not run.finished:
        run.train()
    run.evaluate()
    if ship:
        run.ship(weights_dir)
    manifest = run.manifest(command)
    say(f'done in {time.monotonic() - run.started:.0f} s of this invocation; {run.out}/manifest.json')
    return manifest


__all__ = ['run_release', 'ReleaseRun', 'STAGE_BY_KEY']
