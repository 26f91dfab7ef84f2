#!/usr/bin/env python3
"""Resident memory of one process from /proc/PID/smaps, summed by kind (docs/performance.md §13).

    python3 tests/EdgeRunner.Benchmarks/smaps-summary.py PID

Kinds: the GC heap (the anonymous mappings inside the GC's reservation: contiguous anonymous address space of
1 GiB or more, which only the GC reserves), the runtime's executable memory (JIT code, stubs and loader heaps:
with W^X on they live in the "doublemapper" memfd), libonnxruntime.so, the runtime's own libraries (libcoreclr,
libclrjit, ...), managed assemblies (*.dll), other files, and other anonymous memory (malloc: ONNX Runtime's
arena and buffers, glibc's per-thread arenas, thread stacks, the runtime's native data).
"""
import re
import sys
from collections import defaultdict

header = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")


def read(pid):
    maps = []
    current = None
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            m = header.match(line)
            if m:
                current = {"start": int(m[1], 16), "end": int(m[2], 16), "perms": m[3], "name": m[4].strip(), "Rss": 0, "Anonymous": 0}
                maps.append(current)
            elif current is not None and line.split(":")[0] in ("Rss", "Anonymous"):
                current[line.split(":")[0]] = int(line.split()[1])
    return maps


def gc_ranges(maps):
    """Contiguous runs of unnamed mappings spanning 1 GiB or more: the GC's reservation (regions)."""
    runs, run = [], []
    for m in maps:
        if m["name"] == "" and run and run[-1]["end"] == m["start"]:
            run.append(m)
            continue
        if run:
            runs.append(run)
        run = [m] if m["name"] == "" else []
    if run:
        runs.append(run)
    return [r for r in runs if r[-1]["end"] - r[0]["start"] >= 1 << 30]


def kind(m, gc_ids):
    name = m["name"]
    if id(m) in gc_ids:
        return "GC heap"
    if "doublemapper" in name:
        return "runtime executable memory (JIT code, stubs, loader heaps)"
    if name.endswith("libonnxruntime.so"):
        return "libonnxruntime.so (file)"
    if re.search(r"lib(coreclr|clrjit|System\.Native|hostfxr|hostpolicy|clrgc)[^/]*\.so$", name):
        return ".NET runtime libraries (file)"
    if name.endswith(".dll"):
        return "managed assemblies (file)"
    if name.startswith("/"):
        return "other files"
    if name == "[stack]" or name.startswith("[stack"):
        return "main stack"
    return "other anonymous (malloc: ONNX Runtime, glibc arenas, thread stacks, runtime data)"


def main():
    pid = sys.argv[1]
    maps = read(pid)
    gc_ids = {id(m) for run in gc_ranges(maps) for m in run}
    totals = defaultdict(lambda: [0, 0])
    for m in maps:
        k = kind(m, gc_ids)
        totals[k][0] += m["Rss"]
        totals[k][1] += m["Anonymous"]
    all_rss = sum(v[0] for v in totals.values())
    for k, (rss, anon) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        print(f"{rss / 1024:7.1f} MiB  (anon {anon / 1024:6.1f})  {k}")
    print(f"{all_rss / 1024:7.1f} MiB  total RSS")


if __name__ == "__main__":
    main()
