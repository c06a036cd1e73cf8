"""Medians of interleaved benchmark runs: reads lines `NAME KEY VALUE` (a
build's name, what was measured, msg/s) and prints, per KEY, each build's
runs and median and the first build's ratio to every other."""
import collections
import statistics
import sys

runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, rest = line.split(" ", 1)
    key, value = rest.rsplit(" ", 1)
    runs[(key, name)].append(float(value))
names = list(dict.fromkeys(n for _, n in runs))
for key in dict.fromkeys(k for k, _ in runs):
    meds = {n: statistics.median(runs[(key, n)]) for n in names if (key, n) in runs}
    first = names[0]
    cells = "; ".join(f"{n}: median {meds[n]:,.0f} of {', '.join(f'{v:,.0f}' for v in runs[(key, n)])}" for n in meds)
    ratios = ", ".join(f"{first}/{n} = {meds[first] / meds[n]:.3f}" for n in meds if n != first)
    print(f"{key} (msg/s): {cells}; {ratios}")
