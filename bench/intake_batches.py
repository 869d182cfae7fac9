#!/usr/bin/env python3
"""How the intake batched a burst, from a server log written with
TAKO_LOG=warn,tako_server::intake::batches=debug (bench/cluster.sh:
BENCH_TAKO_LOG=… KEEP=1, then WORKDIR/<store>-<idle|loaded>/server.log).

    intake_batches.py SERVER_LOG

Prints the number of batches, their sizes, how long the store took for
each (by batch, by delivery, and by size), and how long each batch's first
push had waited since it was received."""

import re
import statistics
import sys

FIELD = re.compile(r"\b(size|waited_us|took_us)=(-?\d+)")
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main(path):
    rows = []
    with open(path, errors="replace") as log:
        for line in log:
            fields = dict(FIELD.findall(COLOUR.sub("", line)))
            if len(fields) == 3:
                size, waited, took = (int(fields[k]) for k in ("size", "waited_us", "took_us"))
                rows.append((size, waited / 1000, took / 1000))
    if not rows:
        sys.exit(f"no batch lines in {path}: was TAKO_LOG set?")
    sizes = [r[0] for r in rows]
    took = [r[2] for r in rows]
    waited = [r[1] for r in rows]
    print(f"batches {len(rows)}, deliveries {sum(sizes)}, mean size {statistics.mean(sizes):.1f}")
    print("size p10/p50/p90/max", pct(sizes, .1), pct(sizes, .5), pct(sizes, .9), max(sizes))
    print("store ms p50/p90/p99/max %.1f %.1f %.1f %.1f"
          % (pct(took, .5), pct(took, .9), pct(took, .99), max(took)))
    print("first push waited ms p50/p90/p99/max %.1f %.1f %.1f %.1f"
          % (pct(waited, .5), pct(waited, .9), pct(waited, .99), max(waited)))
    per_delivery = [t for s, _, t in rows for _ in range(s)]
    print("store ms by delivery p50/p99 %.1f %.1f" % (pct(per_delivery, .5), pct(per_delivery, .99)))
    buckets = {}
    for size, _, t in rows:
        low = 1
        while low * 2 <= size and low < 32:
            low *= 2
        buckets.setdefault(low, []).append(t)
    for low in sorted(buckets):
        v = buckets[low]
        print(f"size >= {low}: {len(v)} batches, store ms p50 {pct(v, .5):.1f} "
              f"p90 {pct(v, .9):.1f} max {max(v):.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
