"""Checks an `edgerunner bench-pipeline --soak --json` report (issue 15; run by tests/soak/check-soak.sh).

Checks, each printed with its figures and bound (docs/performance.md, "Soak in CI", says why each bound is
what it is):
  duration   the report covers the requested seconds, with enough samples in its second half
  rates      inferred frames/s and sensor steps/s within 5 % of the configuration's; no frame failed
  mqtt       no message dropped, published/s at least the results/s, the queue not piling up at the end
  gen2       no gen-2 GC storm: at most one gen-2 collection per 5 minutes (at least 2 allowed)
  heap       the managed heap after collections does not grow from the third quarter to the fourth
  rss        RSS (median of a quarter) does not grow from the third quarter to the fourth beyond what the heap's peak explains
Exit 0 when every check passes, 1 otherwise. `--self-test FIXTURE` checks the fixture (must pass) and
doctored copies of it (each must fail the check it breaks).
"""

import argparse
import copy
import json
import statistics
import sys

MIB = 1024 * 1024
RATE_MARGIN = 0.05
HEAP_FLOOR_SLACK = 2 * MIB
RSS_SLACK = 4 * MIB
GEN0_BUDGET_FALLBACK = 64 * MIB
GEN2_PER_SECONDS = 300
MIN_SECOND_HALF_SAMPLES = 6


def check(report, fps, steps, seconds):
    """The list of (name, ok, text) for one report."""
    results = []

    def add(name, ok, text):
        results.append((name, bool(ok), text))

    soak = report.get("soak") or {}
    samples = soak.get("samples") or []
    measured = report.get("seconds", 0)
    if not samples:
        add("duration", False, "no soak samples in the report (was it run with --soak?)")
        return results
    t = [s["t_s"] for s in samples]
    heap = [s["managed_heap_bytes"] for s in samples]
    rss = [s["rss_bytes"] for s in samples]
    gc_total = [sum(s["gc"]) for s in samples]
    end = t[-1]
    second_half = [i for i in range(len(t)) if t[i] >= end / 2]
    want = seconds if seconds else measured
    add("duration", measured >= 0.95 * want and len(second_half) >= MIN_SECOND_HALF_SAMPLES,
        f"{measured:.0f} s measured of {want:.0f} s, {len(samples)} samples, {len(second_half)} in the second half (at least {MIN_SECOND_HALF_SAMPLES})")

    # Rates over the whole measured run.
    cameras = report.get("cameras") or []
    streams = report.get("streams") or []
    inferred = sum(c.get("inference_fps") or 0 for c in cameras)
    stepped = sum(s.get("steps_per_s") or 0 for s in streams)
    failed = sum(c.get("frames_failed") or 0 for c in cameras)
    ok = abs(inferred - fps) <= RATE_MARGIN * fps and abs(stepped - steps) <= RATE_MARGIN * steps and failed == 0
    add("rates", ok, f"{inferred:.2f} frames/s inferred (want {fps} +-{RATE_MARGIN:.0%}), {stepped:.2f} steps/s (want {steps} +-{RATE_MARGIN:.0%}), {failed} frames failed")

    mqtt = report.get("mqtt") or {}
    dropped = mqtt.get("dropped", -1)
    published = mqtt.get("published_per_s") or 0
    queued = mqtt.get("queued", 0)
    queue_bound = max(20, 2 * (fps + steps))
    ok = dropped == 0 and published >= (1 - RATE_MARGIN) * (fps + steps) and queued <= queue_bound
    add("mqtt", ok, f"{dropped} dropped, {published:.2f} published/s (want >= {(1 - RATE_MARGIN) * (fps + steps):.2f}), {queued} queued at the end (at most {queue_bound})")

    gen2 = samples[-1]["gc"][2] - samples[0]["gc"][2]
    gen2_bound = max(2, int(end // GEN2_PER_SECONDS))
    add("gen2", gen2 <= gen2_bound, f"{gen2} gen-2 collections in {end:.0f} s (at most {gen2_bound}); gen0/1/2 {samples[-1]['gc']}")

    # Quarters 3 and 4 of the run: the heap after collections (the lowest sample in a quarter that saw one)
    # and the RSS's peak must not grow between them.
    q3 = [i for i in range(len(t)) if end / 2 <= t[i] < 3 * end / 4]
    q4 = [i for i in range(len(t)) if t[i] >= 3 * end / 4]
    if not q3 or not q4:
        add("heap", False, "too few samples for the quarters")
        return results

    def collected(indices):
        return any(i > 0 and gc_total[i] != gc_total[i - 1] for i in indices)

    # Allocation rate: the heap's rise between samples without a collection between them (second half).
    rises = [(heap[i] - heap[i - 1]) / (t[i] - t[i - 1]) for i in second_half
             if i > 0 and gc_total[i] == gc_total[i - 1] and t[i] > t[i - 1]]
    rate = max(0.0, statistics.median(rises)) if rises else 0.0
    interval = max((t[i] - t[i - 1] for i in range(1, len(t))), default=0)
    if collected(q3) and collected(q4):
        growth = min(heap[i] for i in q4) - min(heap[i] for i in q3)
        bound = HEAP_FLOOR_SLACK + rate * interval
        add("heap", growth <= bound,
            f"after collections {min(heap[i] for i in q3) / MIB:.1f} -> {min(heap[i] for i in q4) / MIB:.1f} MiB ({growth / MIB:+.2f} MiB, at most {bound / MIB:.2f}: "
            f"2 MiB + {rate / 1024:.0f} KiB/s allocated x {interval:.0f} s between samples); slope {soak.get('managed_heap_slope_mib_per_h', 0):+.1f} MiB/h")
    else:
        # Without a collection in each quarter the heap rose by allocations alone, which the GC bounds by its
        # gen-0 budget (the largest drop seen at a collection, or 64 MiB without one).
        drops = [heap[i - 1] - heap[i] + rate * (t[i] - t[i - 1]) for i in range(1, len(t)) if gc_total[i] != gc_total[i - 1]]
        budget = max(drops) if drops else GEN0_BUDGET_FALLBACK
        growth = heap[-1] - heap[second_half[0]]
        add("heap", growth <= budget + HEAP_FLOOR_SLACK,
            f"no collection in both quarters: rose {growth / MIB:+.2f} MiB over the second half, at most the gen-0 budget {budget / MIB:.1f} MiB + 2 MiB ({rate / 1024:.0f} KiB/s allocated)")

    # The median, not the peak: RSS has one-sample spikes of 3-4 MiB (a collection's or a native arena's
    # transient) that come back down; a leak moves every sample after it.
    heap_peak_growth = max(0, max(heap[i] for i in q4) - max(heap[i] for i in q3))
    rss_q3 = statistics.median(rss[i] for i in q3)
    rss_q4 = statistics.median(rss[i] for i in q4)
    rss_growth = rss_q4 - rss_q3
    bound = RSS_SLACK + heap_peak_growth
    add("rss", rss_growth <= bound,
        f"median {rss_q3 / MIB:.1f} -> {rss_q4 / MIB:.1f} MiB ({rss_growth / MIB:+.2f} MiB, at most {bound / MIB:.2f}: 4 MiB + the heap peak's growth "
        f"{heap_peak_growth / MIB:.2f}); slope over the second half {soak.get('rss_slope_second_half_mib_per_h', 0):+.1f} MiB/h, CPU {soak.get('cpu_percent_mean', 0):.1f} % mean")
    return results


def report_results(results):
    for name, ok, text in results:
        print(f"soak {name}: {'ok' if ok else 'FAILED'}: {text}")
    return all(ok for _, ok, _ in results)


def doctored(fixture):
    """Copies of the fixture, each broken in one way, with the check that must catch it."""
    def second_half(report):
        samples = report["soak"]["samples"]
        end = samples[-1]["t_s"]
        return [s for s in samples if s["t_s"] >= end / 2]

    def heap_leak(r):
        for k, s in enumerate(second_half(r)):
            s["managed_heap_bytes"] += (k + 1) * MIB  # 1 MiB retained per 10 s: 360 MiB/h
    def rss_leak(r):
        for k, s in enumerate(second_half(r)):
            s["rss_bytes"] += (k + 1) * MIB // 2  # native: 180 MiB/h, the heap unchanged
    def drops(r):
        r["mqtt"]["dropped"] = 3
    def slow_camera(r):
        r["cameras"][0]["inference_fps"] = 4.2
    def gen2_storm(r):
        for k, s in enumerate(r["soak"]["samples"]):
            s["gc"][2] += k
    def short(r):
        r["soak"]["samples"] = r["soak"]["samples"][:3]

    for name, breaks, change in [("heap leak", "heap", heap_leak), ("native leak", "rss", rss_leak), ("dropped messages", "mqtt", drops),
                                 ("slow camera", "rates", slow_camera), ("gen-2 storm", "gen2", gen2_storm), ("too few samples", "duration", short)]:
        report = copy.deepcopy(fixture)
        change(report)
        yield name, breaks, report


def self_test(path, fps, steps):
    with open(path, encoding="utf-8") as f:
        fixture = json.load(f)
    good = True
    print(f"self-test: the recorded report {path} must pass")
    if not report_results(check(fixture, fps, steps, 0)):
        good = False
    for name, breaks, report in doctored(fixture):
        results = check(report, fps, steps, 0)
        caught = any(n == breaks and not ok for n, ok, _ in results)
        print(f"self-test: {name}: {'caught' if caught else 'NOT CAUGHT'} by the {breaks} check")
        good &= caught
    print("soak self-test: passed" if good else "soak self-test: FAILED")
    return good


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("--fps", type=float, default=5)
    parser.add_argument("--steps", type=float, default=8)
    parser.add_argument("--seconds", type=float, default=0, help="the requested length (0: the report's own)")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return 0 if self_test(args.report, args.fps, args.steps) else 1
    with open(args.report, encoding="utf-8") as f:
        report = json.load(f)
    ok = report_results(check(report, args.fps, args.steps, args.seconds))
    print("soak: passed" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
