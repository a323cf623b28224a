"""Targets (met / not met, with the measured reason) and the Markdown of ``docs/BENCHMARKS.md``.

Everything here is computed from the results dict of one benchmark run; nothing is typed in by hand.
"""
import os

from benchmarks.inference_bench import CHANNELS_LAST, NCHW, ORT
from ddrsr.utils.markdown import markdown_table


def _s(seconds):
    return '–' if seconds is None else (f'{seconds:.3f} s' if seconds < 10 else f'{seconds:.1f} s')


def _x(ratio):
    return '–' if ratio is None else f'{ratio:.2f}×'


def _mb(size):
    return f'{size / 2**20:.0f} MiB'


def _pct(fraction):
    return '–' if fraction is None else f'{100 * fraction:.1f}%'


def _rel(path):
    """``path`` relative to the repository root when it lies inside it (the doc must not show this machine's paths)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/ sits in the root
    full = os.path.abspath(path)
    return os.path.relpath(full, root) if full.startswith(root + os.sep) else path


def _verdict(met):
    return {True: '**met**', False: '**not met**', None: 'not measured'}[met]


# ----------------------------------------------------------------------------------------------------
def targets(results):
    """``[{'target', 'figure', 'met', 'why'}]`` for every target of the issue that this run measured."""
    rows = []
    inference = results.get('inference')
    if inference:
        variants = inference['variants']
        eager, nchw, ort = variants.get(CHANNELS_LAST, {}), variants.get(NCHW, {}), variants.get(ORT, {})
        if 'median_s' in ort and 'median_s' in eager:
            speedup = eager['median_s'] / ort['median_s']
            rows.append({
                'target': 'onnxruntime >= 1.2x faster than torch eager (CPU)',
                'figure': f'{_x(speedup)} against torch eager as the Upsampler runs it (channels-last); '
                          f'{_x(ort.get("speedup_vs_nchw"))} against eager NCHW',
                'met': speedup >= 1.2,
                'why': (f'eager channels-last reaches {eager["gflops"]:.0f} GFLOP/s '
                        f'({_pct(eager.get("fraction_of_matmul"))} of the matmul rate), eager NCHW '
                        f'{nchw.get("gflops", 0):.0f}, onnxruntime {ort["gflops"]:.0f} '
                        f'({_pct(ort.get("fraction_of_matmul"))}); channels-last became the torch default in the '
                        'same change as this benchmark, which narrowed the gap')})
        fastest = inference.get('fastest_correct')
        if fastest:
            medians = ', '.join(f'{k}: {_s(v["median_s"])}' for k, v in variants.items() if 'median_s' in v)
            rows.append({'target': 'the default backend is the fastest correct one',
                         'figure': f'fastest correct: {fastest}', 'met': fastest == inference['default'],
                         'why': f'medians: {medians}'})
    synthesis = results.get('synthesis')
    if synthesis:
        ours, theirs = synthesis['ddrsr']['steps_s'], synthesis['basicsr']['steps_s']
        slowest = max(ours, key=lambda step: ours[step] / max(theirs[step], 1e-9))
        steps = ', '.join(f'{step} {_s(ours[step])} vs {_s(theirs[step])}' for step in ours)
        met = synthesis['speedup'] >= 2
        why = f'per batch, ddrsr vs BasicSR: {steps}'
        if not met:
            why = (f'with blur_stage {synthesis["blur_stage"]} every step after the resize works on '
                   f'{synthesis["hr_size"] // synthesis["scale"]}² LR images, where one OpenCV call per image is '
                   f'cheap and a batch has little to share; furthest behind: {slowest}. ' + why)
        rows.append({'target': 'kornia synthesis >= 2x BasicSR per-image on CPU',
                     'figure': f'{_x(synthesis["speedup"])} ({synthesis["ddrsr"]["images_per_s"]:.0f} against '
                               f'{synthesis["basicsr"]["images_per_s"]:.0f} images/s)', 'met': met, 'why': why})
    training = results.get('training') or []
    if training:
        worst = max(training, key=lambda row: row['synthesis_share'])
        rows.append({'target': 'synthesis < 15% of one lite training iteration',
                     'figure': f'at most {_pct(worst["synthesis_share"])} ({worst["name"]})',
                     'met': worst['synthesis_share'] < 0.15,
                     'why': (f'{worst["batch"]} patches of {worst["gt_size"]}² per iteration: the network\'s forward '
                             f'and backward passes take {_pct(1 - worst["synthesis_share"])} of it')})
    big = results.get('big_image')
    if big:
        rows.append({'target': f'8K output ({big["input"]} -> {big["output"]}, tiled) peak RSS '
                               f'< {big["limit_gb"]:g} GB',
                     'figure': f'{big["peak_rss_bytes"] / 1e9:.2f} GB (tile {big["tile"]})', 'met': big['met'],
                     'why': f'{_mb(big["rss_before_bytes"])} before the photo (torch, the model); the rest is the '
                            f'float output buffer, one 8-bit copy for the file, and one tile\'s activations'})
    gpu = results.get('gpu') or {}
    if gpu.get('measured'):
        worst = max(gpu['parity'], key=lambda k: gpu['parity'][k]['max_abs'])
        rows.append({'target': 'JPEG and blur give the same result on CUDA as on the CPU',
                     'figure': f'largest difference: {worst}, {gpu["parity"][worst]["max_abs"]:.2e}',
                     'met': all(v['max_abs'] <= 1.01 / 255 for v in gpu['parity'].values()),
                     'why': 'same inputs and parameters on both devices; at most one 8-bit level apart counts '
                            'as the same'})
    else:
        rows.append({'target': 'kornia on CUDA against the CPU path, and CUDA/CPU parity of JPEG and blur',
                     'figure': f'not measured: {gpu.get("reason", "no GPU lent")}', 'met': None, 'why': ''})
    if results.get('precision'):
        rows += _precision_targets(results['precision'])
    return rows


def _precision_targets(p):
    """The speed targets of each model's faster precisions (in-process, one photo) and the quality budgets."""
    rows = []
    by_key = {(r['model'], r['backend'], r['precision']): r for r in p['rows']}
    for r in p['rows']:
        if (r['backend'], r['precision']) == ('torch', 'fp32') or r['backend'] not in ('torch', 'onnx'):
            continue  # the targets are ddrsr's own paths; OpenVINO's rows are a comparison (_engine_comparison)
        full = 'lite' not in r['model']
        goal = {'bf16': 2.0, 'int8': 3.0}.get(r['precision']) if full else None
        if not full and r['precision'] != 'fp32':  # the lite default against today's --backend auto (onnx fp32)
            onnx = by_key.get((r['model'], 'onnx', 'fp32'))
            ratio = onnx['median_s'] / r['median_s'] if onnx else None
            rows.append({'target': f'{r["model"]}: {r["precision"]} >= 1.5x today\'s --backend auto '
                                   '(onnxruntime fp32)',
                         'figure': _x(ratio), 'met': None if ratio is None else ratio >= 1.5,
                         'why': f'{_x(r["vs_fp32_torch"])} torch fp32, one {p["size"]}² photo in one process'})
        elif goal:
            rows.append({'target': f'{r["model"]}: {r["precision"]} >= {goal:.1f}x fp32 torch',
                         'figure': _x(r['vs_fp32_torch']), 'met': r['vs_fp32_torch'] >= goal,
                         'why': f'one {p["size"]}² photo in one process, {r["backend"]}'})
        if r.get('within_budget') is not None and r['precision'] != 'fp32':
            worst = min(r['delta_db'], key=r['delta_db'].get)
            rows.append({'target': f'{r["model"]}: {r["precision"]} within its quality budget',
                         'figure': f'worst {worst} {r["delta_db"][worst]:+.2f} dB, blockiness '
                                   + ('–' if r['blockiness_delta'] is None else f'{r["blockiness_delta"]:+.3f}'),
                         'met': r['within_budget'],
                         'why': 'against torch fp32 on the validation crops'})
    for m in p.get('memory', []):
        rows.append({'target': f'{m["model"]}: 8K tiled output under 3 GB peak RSS in {m["precision"]}',
                     'figure': _mb(m['peak_rss_bytes']), 'met': m['met'], 'why': f'{m["backend"]}, tile {m["tile"]}'})
    return rows


# ----------------------------------------------------------------------------------------------------
def optimisations(results):
    """Markdown bullets: each optimisation with its before/after figure from this run, then the candidates
    that were checked and left alone, with the figure that says why."""
    lines = []
    variants = (results.get('inference') or {}).get('variants', {})
    before, after = variants.get(NCHW, {}), variants.get(CHANNELS_LAST, {})
    if 'median_s' in before and 'median_s' in after:
        lines.append(f'- **channels-last in the torch backend** (`Upsampler(channels_last=True)`, now the default): '
                     f'{_s(before["median_s"])} → {_s(after["median_s"])} per {results["inference"]["input"]} '
                     f'photo ({_x(before["median_s"] / after["median_s"])}), measured in this run.')
    synthesis = results.get('synthesis') or {}
    noise = synthesis.get('noise_before_after')
    if noise:
        lines.append(f'- **Poisson noise drawn only for the samples that get it** (`degradations.add_noise`): noise '
                     f'step {noise["before_s"] * 1e3:.1f} ms → {noise["after_s"] * 1e3:.1f} ms per batch of '
                     f'{noise["batch"]} ({noise["poisson_samples"]} with Poisson noise; '
                     f'{_x(noise["before_s"] / noise["after_s"])}), measured in this run against the previous code.')
    big = results.get('big_image')
    if big:
        width, height = (int(v) for v in big['output'].split('x'))
        lines.append(f'- **Output clipped and scaled to 8 bits in place** (`Upsampler.enhance_data`, `enhance`, '
                     f'`image_io._to_uint`): one float32 copy of the output fewer in each, '
                     f'{width * height * 3 * 4 / 2**20:.0f} MiB at {big["output"]} (computed); the peak RSS above '
                     'is measured with it.')
    lines += ['', 'Checked and left alone:', '']
    if 'median_s' in variants.get(ORT, {}):
        lines.append(f'- *onnxruntime session reuse*: already one session per graph, made once per Upsampler '
                     f'(set-up {_s(variants[ORT]["setup_s"])} with the export, then reused for every photo).')
    tiling = results.get('tiling') or {}
    tiled = [row for row in tiling.get('rows', []) if row['tile']]
    if tiled:
        row = max(tiled, key=lambda r: r['tile'])
        lines.append(f'- *batching tiles*: at tile {row["tile"]} the padding alone adds '
                     f'{_pct(row["padded_area_ratio"] - 1)} of LR area and the measured overhead is '
                     f'{_pct(row["overhead"])}; batching could at most remove the difference, '
                     f'{_pct(max(0.0, row["overhead"] - row["padded_area_ratio"] + 1))} (per-call cost, blending), '
                     'and tiles of one photo differ in size at its borders.')
    steps = (synthesis.get('ddrsr') or {}).get('steps_s')
    if steps:
        total, largest = sum(steps.values()), max(steps, key=steps.get)
        lines.append(f'- *caching blur kernels*: the whole blur step (kernels and filtering) is '
                     f'{_pct(steps["blur"] / total)} of the synthesis time; the largest step is {largest} '
                     f'({_pct(steps[largest] / total)}).')
    lines.append('- *`torch.inference_mode`*: the Upsampler already runs under it; the training synthesis stays '
                 'under `no_grad`, because its output feeds the autograd graph, which inference tensors cannot.')
    return lines


def _machine(results):
    m = results['machine']
    versions = ', '.join(f'{k} {v}' for k, v in m['versions'].items())
    mm = results.get('matmul')
    lines = ['## Machine', '']
    lines += markdown_table(['', ''], [
        ['CPU', f'{m["cpu"]} ({", ".join(m["simd"]) or "no AVX"})'],
        ['cores', f'{m["usable_cpus"]} usable of {m["logical_cpus"]} logical; benchmark threads: '
                  f'{results["settings"]["threads"]} (torch, OpenCV, onnxruntime, OpenMP/BLAS; shell '
                  f'OMP_NUM_THREADS={m.get("omp_num_threads_env") or "unset"})'],
        ['memory', f'{m["memory_gb"]} GiB'], ['GPU', m['gpu'] or 'none'], ['OS', m['os']],
        ['Python', m['python']], ['libraries', versions],
        ['load average (1 min)', f'{m["load_average_1m"]} at the start, '
                                 f'{results.get("load_average_end", "?")} at the end'],
        ['dense matmul', f'{mm["gflops"]:.1f} GFLOP/s (torch.mm, {mm["size"]}² float32, median of '
                         f'{len(mm["runs_s"])})' if mm else 'not measured'],
    ])
    return lines


def _inference(r, settings):
    lines = ['## 1. Inference on the CPU', '',
             f'Model `{r["model"]}`, {r["input"]} → {r["output"]}, whole photo (no tiles), through '
             f'`Upsampler.enhance`. {r["gflop_per_image"]} GFLOP per image (FlopCounterMode, encoder included); '
             f'{r["threads"]} threads for every engine.', '']
    rows = []
    for label, v in r['variants'].items():
        if 'median_s' not in v:
            rows.append([label, f'failed: {v["error"]}', '', '', '', '', '', ''])  # e.g. no C++ compiler
            continue
        shown = f'{label} (default)' if label == r['default'] else label
        rows.append([shown, _s(v['median_s']), ', '.join(f'{t:.3f}' for t in v['runs_s']),
                     _x(v.get('speedup_vs_nchw')), _x(v.get('speedup_vs_default')), f'{v["gflops"]:.1f}',
                     _pct(v.get('fraction_of_matmul')),
                     f'{v["max_abs_vs_eager"]:.1e}' + ('' if v['correct'] else ' ✗')])
    lines += markdown_table(['engine', 'median', 'runs (s)', 'speed vs NCHW eager', 'speed vs default', 'GFLOP/s',
                     'of matmul', 'max abs diff'], rows)
    setup = ', '.join(f'{k}: {v["setup_s"]:.1f} s' + (f' + first call {v["warmup_s"][0]:.1f} s'
                                                      if v.get('warmup_s') else '')
                      for k, v in r['variants'].items() if 'setup_s' in v)
    lines += ['', f'Set-up (model copy, ONNX export/session, compile is in the first call): {setup}.',
              '"of matmul" is the achieved rate over the dense-matmul rate above. It can exceed 100%: the '
              'matmul is MKL sgemm, the convolutions are oneDNN kernels that may use wider vector units.',
              f'Outputs count as correct within {1 / 1020:.1e} (a quarter of an 8-bit level) of eager NCHW.']
    if not settings['compile']:
        lines += ['', 'torch.compile: not measured (`--no_compile`).']
    return lines


def _synthesis(s, training, gpu):
    lines = ['## 2. Degradation synthesis', '',
             f'{s["batch"]} HR images of {s["hr_size"]}², x{s["scale"]}, full random pipeline from '
             f'`{_rel(s["option_file"])}` with blur, noise and JPEG always on (blur_stage {s["blur_stage"]}, '
             f'resize modes {", ".join(s["resize_modes"])}). Seconds per step are per batch of {s["batch"]}.', '']
    rows = []
    for label, key in (('ddrsr (kornia, batched)', 'ddrsr'), ('BasicSR functions + cv2 JPEG, per image', 'basicsr')):
        v = s[key]
        rows.append([label, _s(v['median_s']), f'{v["images_per_s"]:.0f}',
                     *[_s(v['steps_s'][step]) for step in ('resize', 'blur', 'noise', 'jpeg')]])
    if s.get('compiled'):
        c = s['compiled']
        rows.append([f'ddrsr, `torch.compile` (compiling took {_s(c["compile_s"])})', _s(c['median_s']),
                     f'{c["images_per_s"]:.0f}', '', '', '', ''])
    lines += markdown_table(['pipeline', 'batch', 'images/s', 'resize', 'blur', 'noise', 'JPEG'], rows)
    lines += ['', f'ddrsr / BasicSR: **{_x(s["speedup"])}** eager'
              + (f', **{_x(s["speedup_compiled"])}** compiled' if s.get('compiled') else '') + '.', '']
    if s.get('ops_per_call'):
        o = s['ops_per_call']
        lines += [f'One eager call dispatches {o["ops"]} aten ops, with {o["syncs"]} host reads of tensors by ddrsr '
                  f'and {o["kornia_syncs"]} inside kornia (its JPEG quality-range check and chroma rescale).', '']
    if training:
        lines += ['Share of synthesis in one training iteration (`feed_data` over `feed_data` + '
                  '`optimize_parameters`; see section 4):', '']
        lines += markdown_table(['run', 'phase', 'synthesis', 'iteration', 'share'],
                        [[row['name'], phase, _s(p['synthesis_s']), _s(p['s_per_iter']), _pct(p['synthesis_share'])]
                         for row in training for phase, p in row['phases'].items()])
        lines.append('')
    lines += ['### On a GPU', '']
    if not gpu.get('measured'):
        lines.append(f'Not measured: {gpu.get("reason", "no GPU lent")}.')
    else:
        c = gpu['synthesis']
        lines += [f'{gpu["device"]}: ddrsr on CUDA {c["ddrsr"]["images_per_s"]:.0f} images/s against '
                  f'{gpu["cpu_images_per_s"]:.0f} on the CPU '
                  f'({_x(c["ddrsr"]["images_per_s"] / gpu["cpu_images_per_s"])}).',
                  '', 'CUDA against CPU on the same inputs and parameters:', '']
        lines += markdown_table(['check', 'max abs diff', 'pixels > 1 level apart'],
                        [[k, f'{v["max_abs"]:.2e}', _pct(v['over_one_level'])] for k, v in gpu['parity'].items()])
    return lines


def _tiling(t, big):
    lines = ['## 3. Tiling', '',
             f'`{t["model"]}`, {t["input"]} photo, tile_pad {t["rows"][0]["tile_pad"]}, one fresh process per '
             'setting (peak RSS is per process).', '']
    rows = [[row['tile'] or 'none', row['tiles'], _s(row['median_s']),
             '–' if not row['tile'] else _pct(row['overhead']), _pct(row['padded_area_ratio'] - 1),
             _mb(row['peak_rss_bytes']), _mb(row['rss_before_bytes'])]
            for row in t['rows']]
    lines += markdown_table(['tile', 'tiles', 'median', 'overhead', 'padding area', 'peak RSS', 'RSS before the first photo'],
                    rows)
    lines += ['', '"padding area" is the extra LR area the network runs on because every tile is read with its '
                  'padding: the share of the overhead that no per-tile speed-up (such as batching tiles) can remove.']
    if big:
        lines += ['', f'**8K check**: {big["input"]} → {big["output"]}, tile {big["tile"]}, read PNG → '
                      f'super-resolve → write PNG in a fresh process: peak RSS '
                      f'**{big["peak_rss_bytes"] / 1e9:.2f} GB** '
                      f'(limit {big["limit_gb"]:g} GB: {_verdict(big["met"])}), {_s(big["seconds"])} (one run).']
    return lines


def _training(rows):
    lines = ['## 4. Training speed', '',
             'Real model classes, synthetic HR batches (no disk reads, no validation, no checkpoints), '
             f'{rows[0]["threads"]} threads.', '']
    table = []
    for row in rows:
        for phase, p in row['phases'].items():
            table.append([f'`{_rel(row["option_file"])}`', row['model_type'], f'{row["batch"]}×{row["gt_size"]}²',
                          phase,
                          f'{p["s_per_iter"]:.3f}', f'{1 / p["s_per_iter"]:.2f}', f'{1000 * p["s_per_iter"]:.0f}',
                          _pct(p['synthesis_share'])])
        table.append([f'`{_rel(row["option_file"])}`', '', '', f'whole run ({row["total_iter"]} iters)',
                      f'{row["s_per_iter"]:.3f}', f'{row["iters_per_s"]:.2f}', f'{row["s_per_1k"]:.0f}',
                      f'≈ {row["estimated_run_h"]:.1f} h'])
    lines += markdown_table(['option file', 'model', 'batch', 'phase', 's/iter', 'iter/s', 's per 1k',
                     'synthesis share; run length'], table)
    return lines


def _train_step(rows):
    lines = ['## 4b. The training step: BasicSR\'s against ddrsr\'s', '',
             'One iteration = `feed_data` (on-device synthesis) + `optimize_parameters`, real model classes, '
             f'synthetic HR batches, {rows[0]["threads"]} threads, device {rows[0]["device"]}. "BasicSR" is its own '
             'step: an `.item()` per loss in every iteration and a Python loop over the EMA tensors. "ddrsr" keeps '
             'the losses on the device until a log step and updates the EMA with two foreach calls. Host reads '
             'are `.item()`/`bool()` of tensors outside kornia (kornia\'s own are counted apart), per iteration; '
             'reads of the optimizers\' step counters (kept on the host by PyTorch on every device) are not syncs.', '']
    table = [[f'`{_rel(r["option_file"])}`', r['step'] + (f' {r["overrides"]}' if r['overrides'] else ''),
              f'{r["batch"]}×{r["gt_size"]}²', f'{r["ms_per_iter"]:.0f}', f'{r["iters_per_s"]:.2f}',
              r['syncs_per_iter'], r['kornia_syncs_per_iter'], r['ops_per_iter']] for r in rows]
    return lines + markdown_table(['option file', 'step', 'batch', 'ms/iter', 'iter/s', 'host reads', 'kornia reads',
                           'aten ops'], table)


def _analysis(a):
    startup = f'; a fresh `ddrsr` process adds {_s(a["startup_s"])} of start-up' if a.get('startup_s') else \
        '; start-up not measured (`--quick`)'
    return ['## 5. Analysis', '', f'`{a["command"]}`', '',
            f'{len(a["sets"])} sets ({", ".join(a["sets"])}) × {a["patches_per_set"]} patches = {a["points"]} points, '
            f'{a["tsne_runs"]} t-SNE runs: '
            f'median **{_s(a["median_s"])}** (runs {", ".join(f"{t:.2f}" for t in a["runs_s"])} s){startup}.']


def _engine_comparison(p):
    """OpenVINO against onnxruntime on the same graph, per model and precision (bf16 against torch's bf16, since
    onnxruntime's CPU provider has no bf16 path), as sentences under the table."""
    if not p.get('openvino'):
        return ['', 'OpenVINO: not compared in this run (it compares where `openvino` is installed, except in '
                '`--quick` runs: the same ONNX graphs on the other maintained CPU engine with bf16 and int8 kernels).']
    by_key = {(r['model'], r['backend'], r['precision']): r for r in p['rows']}
    ours = {'fp32': 'onnx', 'int8': 'onnx', 'bf16': 'torch'}
    parts = []
    for r in p['rows']:
        if r['backend'] != 'openvino':
            continue
        other = by_key.get((r['model'], ours[r['precision']], r['precision']))
        if other:
            parts.append(f'{r["model"]} {r["precision"]}: {_x(other["median_s"] / r["median_s"])} '
                         f'{"onnxruntime" if ours[r["precision"]] == "onnx" else "torch"}')
    return ['', f'OpenVINO {p["openvino"]} on the same graphs (speed against ddrsr\'s path for that precision, '
            f'higher = OpenVINO faster): ' + '; '.join(parts) + '.']


def _precision(p):
    specs = p['specs']
    lines = ['## 6. Precision: model × backend × precision', '',
             f'CPU: {p["cpu"]["capability"]}, native bf16: {"yes" if p["cpu"]["bf16"] else "no"}, '
             f'{p["cpu"]["threads"]} threads (torch/oneDNN\'s own probes). Time: one {p["size"]}² LR photo, untiled, '
             '`Upsampler.enhance_tensor`; ×: speed against torch fp32 (higher is faster). Δ: PSNR-Y against torch fp32 '
             f'on the {p["crop_size"]} px validation crops (dB; the budget is bf16 ≥ −0.05, int8 ≥ −0.15 on every '
             'spec, jpeg30 blockiness within ±0.02). A precision outside its budget is not declared by the model, so '
             '`--precision auto` does not pick it.', '']
    rows = []
    for r in p['rows']:
        deltas = [f'{r["delta_db"][spec]:+.2f}' if 'delta_db' in r else '–' for spec in specs]
        blocky = '–' if r.get('blockiness_delta') is None else f'{r["blockiness_delta"]:+.3f}'
        budget = {True: 'within', False: '**outside**', None: '–'}[r.get('within_budget')]
        rows.append([r['model'], r['backend'], r['precision'], f'{r["s_per_lr_mp"]:.1f} s', _x(r['vs_fp32_torch']),
                     *deltas, blocky, budget])
    lines += markdown_table(['model', 'backend', 'precision', 's / LR MP', '× fp32 torch', *[f'Δ {s}' for s in specs],
                     'Δ blockiness', 'budget'], rows)
    lines += _engine_comparison(p)
    if p.get('memory'):
        lines += ['', '8K output (1920×1080 in, tiled), the whole path from PNG to PNG, one fresh process each:', '']
        lines += markdown_table(['model', 'backend', 'precision', 'tile', 'time', 'peak RSS', '< 3 GB'],
                        [[m['model'], m['backend'], m['precision'], m['tile'], _s(m['seconds']),
                          _mb(m['peak_rss_bytes']), _verdict(m['met'])] for m in p['memory']])
    return lines


def markdown(results):
    """The whole ``BENCHMARKS.md`` for one run's ``results``."""
    settings = results['settings']
    lines = ['# Benchmarks', '',
             f'Generated by `{settings["command"]}` on {results["machine"]["date"]}. Do not edit by hand: run '
             'the command again. Each time is the median of '
             f'{settings["repeats"]} runs after {settings["warmup"]} warm-up run(s), unless a row says otherwise.', '']
    if settings['quick']:
        lines += ['> **`--quick` run**: tiny sizes for the test suite. These figures are not benchmarks.', '']
    if results['machine']['load_average_1m'] > 0.5 * results['machine']['usable_cpus']:
        lines += [f'> The machine was busy (load average {results["machine"]["load_average_1m"]} on '
                  f'{results["machine"]["usable_cpus"]} CPUs): times are inflated and noisy.', '']
    lines += _machine(results) + ['', '## Targets', '']
    lines += markdown_table(['target', 'measured', 'verdict', 'reason'],
                    [[t['target'], t['figure'], _verdict(t['met']), t['why']] for t in results['targets']])
    if results.get('inference'):
        lines += [''] + _inference(results['inference'], settings)
    if results.get('synthesis'):
        lines += [''] + _synthesis(results['synthesis'], results.get('training'), results.get('gpu') or {})
    if results.get('tiling'):
        lines += [''] + _tiling(results['tiling'], results.get('big_image'))
    if results.get('training'):
        lines += [''] + _training(results['training'])
    if results.get('train_step'):
        lines += [''] + _train_step(results['train_step'])
    if results.get('analysis'):
        lines += [''] + _analysis(results['analysis'])
    if results.get('precision'):
        lines += [''] + _precision(results['precision'])
    if results.get('optimisations'):
        lines += ['', '## Optimisations: before and after', ''] + results['optimisations']
    return '\n'.join(lines) + '\n'
