"""Sizing: from the calibrated rates and the time left, how many iterations each stage trains, and in what order.

Training runs in two phases, because of the dependencies: phase 1 trains the SRGAN encoder, then the blind
encoder fine-tuned from it, and RRDB (clean); phase 2 fine-tunes RRDB (b+n), RRDB-DDR (b+n) and the default
real-photo model from the new RRDB (clean), the DDR models guided by the new blind encoder. Within a phase,
*lanes* run side by side, one process each, when calibration showed that two processes do more work than one
(``lanes == 2``):

* two lanes: phase 1 = encoder then blind encoder | RRDB (clean); phase 2 = default model | RRDB (b+n) then
  RRDB-DDR (b+n);
* one lane: the six stages one after the other.

Each phase gets a fixed share of the training time; each stage a share of its lane. The (b+n) pair always
gets the same number of iterations (same data, seed, schedule: they differ only in DDR guidance).
"""
from ddrsr.errors import DDRSRError

PHASE_SHARES = (0.45, 0.55)
#: Stages of each phase, as lanes of stages run one after the other, for one and for two lanes.
LAYOUTS = {
    1: ([['encoder', 'encoder_blind', 'rrdb_clean']], [['rrdb_bn', 'rrdb_ddr_bn', 'rrdb_ddr_real']]),
    2: ([['encoder', 'encoder_blind'], ['rrdb_clean']], [['rrdb_ddr_real'], ['rrdb_bn', 'rrdb_ddr_bn']]),
}
#: Share of its lane's time that each stage gets; the pair's shares are pooled and split by iterations. The two
#: encoders split the encoder's former share (the shipped ones: 3000 clean + 1500 blind iterations).
LANE_SHARES = {1: {'encoder': 0.25, 'encoder_blind': 0.25, 'rrdb_clean': 0.5, 'rrdb_bn': 0.25, 'rrdb_ddr_bn': 0.25,
                   'rrdb_ddr_real': 0.5},
               2: {'encoder': 0.5, 'encoder_blind': 0.5, 'rrdb_clean': 1.0, 'rrdb_ddr_real': 1.0, 'rrdb_bn': 0.5,
                   'rrdb_ddr_bn': 0.5}}
MIN_ITERATIONS = 2
#: Per stage, beyond the calibrated model/data start-up: BasicSR's setup, the final save and the export.
STAGE_OVERHEAD_S = 1.0
#: Kept back from the budget for exporting, evaluating and writing the manifest, and the final saves.
RESERVE_SHARE, RESERVE_MIN_S = 0.06, 3.0
CHECKPOINTS_PER_STAGE, MAX_LOST_S, LOG_LINES_PER_STAGE = 8, 30.0, 20


def _encoder_iterations(seconds, rate_pixel, rate_gan, gan_share):
    """Iterations n with n (1 - g) pixel-loss steps at ``rate_pixel`` and n g GAN steps at ``rate_gan``."""
    return int(seconds / ((1 - gan_share) / rate_pixel + gan_share / rate_gan))


def _cadence(stage):
    """Checkpoint and log intervals of a planned stage (at most MAX_LOST_S lost to a kill)."""
    n = stage['iterations']
    per_second = n / max(stage['seconds'], 1e-9)
    stage['checkpoint_every'] = max(1, min(n // CHECKPOINTS_PER_STAGE, int(per_second * MAX_LOST_S)))
    stage['print_every'] = max(1, n // LOG_LINES_PER_STAGE)


def _cap(stage, max_iterations):
    if max_iterations and stage['iterations'] > max_iterations:
        stage['seconds'] *= max_iterations / stage['iterations']
        stage['iterations'] = int(max_iterations)


def resize_stages(plan, keys, factor):
    """Scale the iterations of the stages ``keys`` by ``factor`` (at least MIN_ITERATIONS each), in place.

    Used at the start of phase 2, when phase 1 ran slower or faster than planned. The (b+n) pair keeps
    equal iterations, as both are scaled alike.
    """
    for key in keys:
        stage = plan['stages'][key]
        stage['iterations'] = max(MIN_ITERATIONS, int(stage['iterations'] * factor))
        stage['seconds'] *= factor
        _cap(stage, plan.get('max_iterations'))
        _cadence(stage)
    plan.setdefault('resized', []).append({'stages': list(keys), 'factor': factor})
    return plan


def make_plan(calibration, seconds_left, gan_share, lanes=None, max_iterations=None):
    """The training plan.

    Args:
        calibration (dict): from :func:`ddrsr.release.calibrate.calibrate`.
        seconds_left (float): wall time left in the budget after data preparation and calibration.
        gan_share (float): the encoder template's share of GAN iterations, ``1 - gan_start_iter / total_iter``.
        lanes (int, optional): force 1 or 2 lanes instead of the calibration's choice.
        max_iterations (int, optional): at most this many iterations per stage (tests: a run as short as it can be,
            whatever the load on the machine made the calibration cost).

    Returns:
        dict: ``lanes``, ``threads`` per process, ``train_s`` (seconds planned for training), ``reserve_s``,
        ``phases`` (lists of lanes of stage keys), and ``stages`` = ``{key: {'iterations', 'rate', 'seconds',
        'checkpoint_every', 'print_every'}}`` where ``rate`` is the expected it/s as the stage will run.
    """
    lanes = int(lanes or calibration['lanes'])
    if lanes not in LAYOUTS:
        raise DDRSRError(f'lanes must be 1 or 2, got {lanes}')
    reserve = max(RESERVE_MIN_S, RESERVE_SHARE * seconds_left)
    train_s = seconds_left - reserve
    rates, startup = dict(calibration['rates']), calibration['startup_s']
    if lanes == 2:  # each process runs at the speed measured side by side, relative to alone
        slow = sum(calibration['side_by_side'][k] / calibration['rates'][k]
                   for k in calibration['side_by_side']) / len(calibration['side_by_side'])
        rates = {key: rate * slow for key, rate in rates.items()}
    stages = {}
    for phase, share in zip(LAYOUTS[lanes], PHASE_SHARES):
        for lane in phase:
            for key in lane:
                seconds = max(0.0, train_s * share * LANE_SHARES[lanes][key] - startup.get(key, 0.0) - STAGE_OVERHEAD_S)
                stages[key] = {'seconds': seconds, 'rate': rates[key]}
    for key in ('rrdb_bn', 'rrdb_ddr_bn'):
        stages[key]['pooled'] = stages['rrdb_bn']['seconds'] + stages['rrdb_ddr_bn']['seconds']
    pair = int(stages['rrdb_bn']['pooled'] / (1 / rates['rrdb_bn'] + 1 / rates['rrdb_ddr_bn']))
    for key, stage in stages.items():
        if key == 'encoder':
            n = _encoder_iterations(stage['seconds'], rates['encoder'], rates['encoder_gan'], gan_share)
        elif key in ('rrdb_bn', 'rrdb_ddr_bn'):
            n = pair
            stage['seconds'] = n / rates[key]
            stage.pop('pooled')
        else:
            n = int(stage['seconds'] * stage['rate'])
        stage['iterations'] = n
        _cap(stage, max_iterations)
        _cadence(stage)
    short = {key: stage['iterations'] for key, stage in stages.items() if stage['iterations'] < MIN_ITERATIONS}
    if short and train_s <= 0:
        raise DDRSRError(f'data preparation and calibration used the whole budget ({seconds_left + reserve:.0f} s '
                         f'were left for {reserve:.0f} s of export and evaluation plus training); give a larger '
                         '--budget')
    if short:
        factor = max(MIN_ITERATIONS / max(n, 0.5) for n in short.values())
        raise DDRSRError(f'the budget leaves {train_s:.0f} s for training, too little for {", ".join(short)} '
                         f'(planned iterations: {short}); give a larger --budget, with at least '
                         f'{train_s * factor + reserve:.0f} s left after calibration')
    return {'lanes': lanes, 'threads': max(1, calibration['threads'] // lanes), 'train_s': train_s,
            'reserve_s': reserve, 'phase_s': [train_s * share for share in PHASE_SHARES],
            'max_iterations': max_iterations, 'phases': [list(map(list, phase)) for phase in LAYOUTS[lanes]], 'stages': stages}


def plan_table(plan):
    """Human-readable lines describing ``plan``."""
    lines = [f'plan: {plan["lanes"]} lane(s), {plan["threads"]} thread(s) per process, {plan["train_s"]:.0f} s of '
             f'training, {plan["reserve_s"]:.0f} s reserved for export and evaluation']
    for number, phase in enumerate(plan['phases'], 1):
        lines.append(f'  phase {number}: ' + ' | '.join(' -> '.join(lane) for lane in phase))
    lines.append(f'  {"stage":<14} {"iterations":>10} {"it/s":>8} {"seconds":>8} {"ckpt every":>10}')
    for key, stage in plan['stages'].items():
        lines.append(f'  {key:<14} {stage["iterations"]:>10} {stage["rate"]:>8.2f} {stage["seconds"]:>8.0f} '
                     f'{stage["checkpoint_every"]:>10}')
    return lines
