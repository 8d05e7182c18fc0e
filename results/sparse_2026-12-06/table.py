#!/usr/bin/env python3
"""Tables of results/sparse_2026-12-06: python3 table.py [DIR] > table.md"""
import json, re, sys, statistics as st
d = sys.argv[1] if len(sys.argv) > 1 else 'results/sparse_2026-12-06'
def lines(f):
    try:
        return [json.loads(l) for l in open(f'{d}/{f}') if l.startswith('{')]
    except FileNotFoundError:
        return []
def table(f, names, builds):
    rows = lines(f)
    val = {}
    for r in rows:
        if 'bench' in r:
            val.setdefault((r['bench'], r['build']), []).append(r['value'])
    print(f'### {f}\n')
    print('| line | ' + ' | '.join(builds) + ' | new ÷ old native | new ÷ old base | base ÷ native (new) |')
    print('|' + ' --- |' * (len(builds) + 4))
    for n in names:
        v = {b: val.get((n, b), []) for b in builds}
        if not any(v.values()):
            continue
        fmt = lambda xs: ' / '.join(f'{x:,.0f}' if x > 100 else f'{x:.3g}' for x in xs)
        m = {b: (st.median(xs) if xs else float('nan')) for b, xs in v.items()}
        r = lambda a, b: f'{m[a] / m[b]:.2f}' if m[b] == m[b] and m[b] else ''
        print(f'| {n} | ' + ' | '.join(fmt(v[b]) for b in builds) + f" | {r('native','oldnative')} | {r('base','oldbase')} | {r('base','native')} |")
    print()
train = ['drsae_b10_unsup', 'drsae_b10_sup', 'drsae_b100_unsup', 'drsae_b100_sup', 'drsae_b100_unsup_executed_gflops', 'drsae_b100_sup_executed_gflops', 'sgemm_best_same_run', 'drsae_b100_gemm_fraction']
builds = ['oldnative', 'native', 'oldbase', 'base']
table('train_1thread.jsonl', train, builds)
kn = [r['bench'] for r in lines('kernels.jsonl') if r.get('build') == 'native' and 'bench' in r]
table('kernels.jsonl', kn, builds)
# trained model harness
rows = lines('trained_model.jsonl')
if rows:
    print('### trained_model.jsonl (samples/s, mean over a 4 s run; best step in brackets)\n')
    print('| threads | batch | old (3ef6710) | new | new ÷ old (medians of means) |')
    print('| --- | --- | --- | --- | --- |')
    acc = {}
    for r in rows:
        mt = re.search(r'mean (\d+) samples/s, best-step (\d+)', r['out'])
        if mt:
            acc.setdefault((r['threads'], r['batch'], r['build']), []).append((int(mt[1]), int(mt[2])))
    for th in (1, 2):
        for bs in (10, 100):
            o, n = acc.get((th, bs, 'old'), []), acc.get((th, bs, 'new'), [])
            f = lambda xs: ' / '.join(f'{a:,} ({b:,})' for a, b in xs)
            ratio = st.median(a for a, _ in n) / st.median(a for a, _ in o) if o and n else float('nan')
            print(f'| {th} | {bs} | {f(o)} | {f(n)} | {ratio:.2f} |')
    print()
rows = lines('train_vs_torch.jsonl')
if rows:
    print('### train_vs_torch.jsonl (2 threads, in run order)\n')
    names = ['drsae_b10_unsup', 'drsae_b10_sup', 'drsae_b100_unsup', 'drsae_b100_sup']
    print('| run | ' + ' | '.join(names) + ' |')
    print('|' + ' --- |' * (len(names) + 1))
    runs, cur = [], None
    for r in rows:
        if 'what' in r:
            cur = {'what': r['what'], 'load': r['uptime'].split('average: ')[-1]}; runs.append(cur)
        elif 'bench' in r and cur is not None:
            cur[r['bench'].replace('torch_', '')] = r['value']
    for c in runs:
        print(f"| {c['what']} (load {c['load']}) | " + ' | '.join(f"{c[n]:,.0f}" if n in c else '' for n in names) + ' |')
    print()
