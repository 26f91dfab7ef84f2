#!/usr/bin/python3
"""Reference values for EdgeRunner's audio front ends (models/EdgeRunner.Models/Audio).

Writes audio-frontend-reference.json beside this script: for a deterministic test signal (stored in the
file as 16-bit samples) and for a slice of ../shared/audio/speech_noisy_16k.wav (read in place, not
copied; its samples are identified by offset, count and sum), the features of each front end
configuration, computed in float64 with a direct DFT (no FFT), so the C# radix-2 FFT, window, mel
filterbank, logarithm and DCT are held to an independent computation. Only Python's standard library
is used: this machine's /usr/bin/python3 has neither numpy nor scipy (Debian's python3-numpy would do
the same sums; the formulas below are numpy.fft.rfft, scipy.signal.get_window, librosa.filters.mel
and scipy.fft.dct(norm='ortho'), written out).

Framing (as documented in docs/model-manifest.md, "Audio front ends"): the signal is preceded by
frame_length - hop_length zeros, and frame t covers padded samples [t*hop, t*hop + frame_length);
so every hop gives one frame, which is what a stream fed chunk by chunk computes.

Run: /usr/bin/python3 tests/EdgeRunner.IntegrationTests/Fixtures/audio_frontend_reference.py [path/to/shared]
"""

import json
import math
import os
import sys
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "..", "shared")
RATE = 16000
SAMPLES = 1280  # 8 hops of 160
WAV = "audio/speech_noisy_16k.wav"
WAV_OFFSET = 32000  # 2 s in: speech

CONFIGS = {
    # name: the manifest's stream.frontend section
    "log_mel_htk": {"kind": "log_mel", "frame_length": 400, "hop_length": 160, "fft_size": 512, "window": "hann",
                    "periodic": True, "spectrum": "power", "mel_bands": 40, "mel_scale": "htk", "mel_norm": "none",
                    "log": "ln", "log_offset": 1e-6, "log_floor": 1e-10},
    "mfcc_slaney": {"kind": "mfcc", "frame_length": 400, "hop_length": 160, "fft_size": 512, "window": "hamming",
                    "periodic": False, "spectrum": "power", "mel_bands": 40, "fmin_hz": 20, "fmax_hz": 7600,
                    "mel_scale": "slaney", "mel_norm": "slaney", "log": "db", "log_offset": 0, "log_floor": 1e-10,
                    "mfcc_count": 13},
    "log_mel_no_overlap": {"kind": "log_mel", "frame_length": 128, "hop_length": 160, "fft_size": 128,
                           "window": "rectangular", "periodic": True, "spectrum": "magnitude", "mel_bands": 16,
                           "mel_scale": "htk", "mel_norm": "none", "log": "log10", "log_offset": 1e-6,
                           "log_floor": 1e-10},
    "stft": {"kind": "stft", "frame_length": 200, "hop_length": 160, "fft_size": 256, "window": "hann",
             "periodic": True},
}
SIGNAL_CONFIGS = {"synthetic": list(CONFIGS), "speech": ["log_mel_htk", "mfcc_slaney", "log_mel_no_overlap"]}


def synthetic():
    """440 Hz and 3 kHz tones and a little LCG noise (so every band has energy), as 16-bit samples."""
    state, out = 12345, []
    for n in range(SAMPLES):
        state = (1103515245 * state + 12345) % (1 << 31)
        noise = state / (1 << 31) * 2 - 1
        x = 0.5 * math.sin(2 * math.pi * 440 * n / RATE) + 0.2 * math.sin(2 * math.pi * 3000 * n / RATE + 0.3) + 0.02 * noise
        out.append(max(-32768, min(32767, round(x * 32768))))
    return out


def speech():
    with wave.open(os.path.join(SHARED, WAV), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        w.setpos(WAV_OFFSET)
        raw = w.readframes(SAMPLES)
    return [int.from_bytes(raw[2 * i:2 * i + 2], "little", signed=True) for i in range(SAMPLES)]


def window(kind, length, periodic):
    d = length if periodic else length - 1
    if kind == "rectangular":
        return [1.0] * length
    a = 0.5 if kind == "hann" else 0.54
    return [a - (1 - a) * math.cos(2 * math.pi * n / d) for n in range(length)]


def hz_to_mel(f, scale):
    if scale == "htk":
        return 2595 * math.log10(1 + f / 700)
    return f / (200 / 3) if f < 1000 else 15 + math.log(f / 1000) / (math.log(6.4) / 27)


def mel_to_hz(m, scale):
    if scale == "htk":
        return 700 * (10 ** (m / 2595) - 1)
    return m * (200 / 3) if m < 15 else 1000 * math.exp(math.log(6.4) / 27 * (m - 15))


def filterbank(c, n_fft):
    bands, scale = c["mel_bands"], c["mel_scale"]
    fmin, fmax = c.get("fmin_hz", 0), c.get("fmax_hz", RATE / 2)
    lo, hi = hz_to_mel(fmin, scale), hz_to_mel(fmax, scale)
    edges = [mel_to_hz(lo + (hi - lo) * i / (bands + 1), scale) for i in range(bands + 2)]
    freqs = [k * RATE / n_fft for k in range(n_fft // 2 + 1)]
    fb = []
    for m in range(bands):
        l, ce, u = edges[m], edges[m + 1], edges[m + 2]
        norm = 2 / (u - l) if c["mel_norm"] == "slaney" else 1
        fb.append([max(0.0, min((f - l) / (ce - l), (u - f) / (u - ce))) * norm for f in freqs])
    return fb


def dft(frame, n_fft):
    """rfft by the definition, float64: X[k] = sum x[n] e^(-2 pi i k n / N)."""
    cos = [math.cos(2 * math.pi * j / n_fft) for j in range(n_fft)]
    sin = [math.sin(2 * math.pi * j / n_fft) for j in range(n_fft)]
    out = []
    for k in range(n_fft // 2 + 1):
        re = im = 0.0
        for n, x in enumerate(frame):
            if x:
                j = (k * n) % n_fft
                re += x * cos[j]
                im -= x * sin[j]
        out.append((re, im))
    return out


def features(samples, c):
    x = [s / 32768 for s in samples]
    length, hop, n_fft = c["frame_length"], c["hop_length"], c["fft_size"]
    padded = [0.0] * max(0, length - hop) + x
    start0 = 0 if length >= hop else hop - length
    w = window(c["window"], length, c["periodic"])
    fb = filterbank(c, n_fft) if c["kind"] != "stft" else None
    frames = []
    for t in range(len(x) // hop):
        s = start0 + t * hop
        frame = [padded[s + n] * w[n] for n in range(length)] + [0.0] * (n_fft - length)
        spec = dft(frame, n_fft)
        if c["kind"] == "stft":
            frames.append([v for pair in spec for v in pair])
            continue
        mag = [(re * re + im * im) if c["spectrum"] == "power" else math.hypot(re, im) for re, im in spec]
        mel = []
        for row in fb:
            e = max(sum(a * b for a, b in zip(row, mag)) + c["log_offset"], c["log_floor"])
            mel.append({"ln": math.log(e), "log10": math.log10(e), "db": 10 * math.log10(e)}[c["log"]])
        if c["kind"] == "log_mel":
            frames.append(mel)
            continue
        m = len(mel)
        frames.append([math.sqrt((1 if k == 0 else 2) / m) * sum(v * math.cos(math.pi * k * (2 * n + 1) / (2 * m)) for n, v in enumerate(mel))
                       for k in range(c["mfcc_count"])])
    return frames


def main():
    signals = {"synthetic": synthetic(), "speech": speech()}
    out = {
        "about": "Written by audio_frontend_reference.py (float64, direct DFT); read by AudioFrontEndTests.",
        "sample_rate_hz": RATE,
        "configs": CONFIGS,
        "signals": {
            "synthetic": {"pcm16": signals["synthetic"]},
            "speech": {"shared_file": WAV, "offset": WAV_OFFSET, "count": SAMPLES, "pcm16_sum": sum(signals["speech"])},
        },
        "features": {},
    }
    for name, configs in SIGNAL_CONFIGS.items():
        for config in configs:
            frames = features(signals[name], CONFIGS[config])
            out["features"][f"{name}/{config}"] = [[float(f"{v:.7g}") for v in frame] for frame in frames]
    with open(os.path.join(HERE, "audio-frontend-reference.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
