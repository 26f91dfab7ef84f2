using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using EdgeRunner.Hardware.Sensors;
using EdgeRunner.Hardware.Supervision;
using EdgeRunner.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.IntegrationTests;

/// <summary>Audio through a real ffmpeg: exact PCM16 samples, resampling, seek, loop, failures, process cleanup.</summary>
public sealed class AudioSensorSourceTests
{
    private const string SpeechWav = "audio/speech_noisy_16k.wav";

    [Fact]
    public async Task Pcm16_wav_is_delivered_as_exactly_its_samples_over_32768()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = TestPaths.SharedFile(SpeechWav);
        var wav = RiffWav.Read(path);
        Assert.Equal((16000, 1, 16), (wav.SampleRate, wav.Channels, wav.BitsPerSample));

        await using var source = new AudioSensorSource(
            new AudioSourceOptions { Kind = AudioInputKind.File, Input = path, SampleRateHz = 16000, Channels = 1, Speed = 0 },
            TimeProvider.System,
            NullLogger.Instance);
        Assert.Equal(["audio"], source.Channels);

        // 512-sample blocks, as silero-vad takes them.
        var all = new List<float>();
        var block = new float[512];
        SensorBlock read;
        while ((read = await source.ReadAsync(block, ct)).Samples > 0)
        {
            Assert.Equal(all.Count, read.FirstSampleIndex);
            all.AddRange(block.AsSpan(0, read.Samples));
        }

        var expected = wav.Samples.Select(s => s / 32768f).ToArray();
        Assert.Equal(expected.Length, all.Count);
        Assert.Equal(expected, all);
        // 305 whole 512-sample chunks, as in shared/README.md's silero-vad figures.
        Assert.Equal(305, all.Count / 512);
        Assert.Null(source.ProcessId);
    }

    [Fact]
    public async Task Seek_resumes_at_the_exact_sample_and_loop_continues_into_the_next_pass()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = TestPaths.SharedFile(SpeechWav);
        var samples = RiffWav.Read(path).Samples;
        var options = new AudioSourceOptions { Kind = AudioInputKind.File, Input = path, Speed = 0, Loop = true };
        var block = new float[1000];

        await using (var source = new AudioSensorSource(options, TimeProvider.System, NullLogger.Instance))
        {
            await source.SeekAsync(12_345, ct);
            var read = await source.ReadAsync(block, ct);
            Assert.Equal(12_345, read.FirstSampleIndex);
            Assert.Equal(1000, read.Samples);
            Assert.Equal(samples.AsSpan(12_345, 1000).ToArray().Select(s => s / 32768f), block);
        }

        await using (var source = new AudioSensorSource(options, TimeProvider.System, NullLogger.Instance))
        {
            // 500 samples before the end of the first pass: the block runs on into the second pass unbroken.
            var start = samples.Length - 500;
            await source.SeekAsync(start, ct);
            var read = await source.ReadAsync(block, ct);
            Assert.Equal(1000, read.Samples);
            var expected = samples.AsSpan(start).ToArray().Concat(samples.AsSpan(0, 500).ToArray()).Select(s => s / 32768f);
            Assert.Equal(expected, block);

            // A pass's length is now known: seeking whole passes ahead decodes nothing extra and lands exactly.
            var target = (3L * samples.Length) + 777;
            await source.SeekAsync(target, ct);
            read = await source.ReadAsync(block, ct);
            Assert.Equal(target, read.FirstSampleIndex);
            Assert.Equal(samples.AsSpan(777, 1000).ToArray().Select(s => s / 32768f), block);
        }
    }

    [Fact]
    public async Task A_stereo_8k_file_is_downmixed_and_resampled_to_the_configured_format()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = Path.Combine(Path.GetTempPath(), $"edgerunner-{Guid.NewGuid():N}.wav");
        // One second of stereo at 8 kHz: left 1000, right 3000 (constant, so resampling keeps the value).
        var frames = new short[8000 * 2];
        for (var i = 0; i < frames.Length; i += 2)
        {
            frames[i] = 1000;
            frames[i + 1] = 3000;
        }

        RiffWav.Write(path, 8000, 2, frames);
        try
        {
            await using var source = new AudioSensorSource(
                new AudioSourceOptions { Kind = AudioInputKind.File, Input = path, SampleRateHz = 16000, Channels = 1, Speed = 0 },
                TimeProvider.System,
                NullLogger.Instance);
            var all = new List<float>();
            var block = new float[4096];
            SensorBlock read;
            while ((read = await source.ReadAsync(block, ct)).Samples > 0)
            {
                all.AddRange(block.AsSpan(0, read.Samples));
            }

            // Twice the samples (ffmpeg's resampler may round the edge by a few), the mean of both channels.
            Assert.InRange(all.Count, 16000 - 16, 16000 + 16);
            var middle = all.Skip(1000).Take(14000).ToArray();
            Assert.All(middle, v => Assert.Equal(2000 / 32768f, v, 3e-4f));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Two_channel_output_is_interleaved_per_sample()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = Path.Combine(Path.GetTempPath(), $"edgerunner-{Guid.NewGuid():N}.wav");
        short[] frames = [1, -1, 2, -2, 3, -3, -32768, 32767];
        RiffWav.Write(path, 16000, 2, frames);
        try
        {
            await using var source = new AudioSensorSource(
                new AudioSourceOptions { Kind = AudioInputKind.File, Input = path, SampleRateHz = 16000, Channels = 2, Speed = 0 },
                TimeProvider.System,
                NullLogger.Instance);
            Assert.Equal(["audio0", "audio1"], source.Channels);
            var block = new float[20];
            var read = await source.ReadAsync(block, ct);
            Assert.Equal(4, read.Samples);
            Assert.Equal(frames.Select(s => s / 32768f), block[..8]);
            Assert.Equal(-1f, block[6]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Replay_is_paced_by_the_speed()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = TestPaths.SharedFile(SpeechWav);
        var start = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var time = new FakeTimeProvider(start);
        // 3200 samples at 16 kHz = 0.2 s of sound, replayed 2x faster: due 0.1 s after the read began.
        await using var source = new AudioSensorSource(
            new AudioSourceOptions { Kind = AudioInputKind.File, Input = path, Speed = 2 },
            time,
            NullLogger.Instance);
        var block = new float[3200];

        var pending = source.ReadAsync(block, ct).AsTask();
        while (!pending.IsCompleted)
        {
            // Drive the fake clock until the block comes (the decode itself takes real time).
            time.Advance(TimeSpan.FromMilliseconds(5));
            await Task.Delay(2, ct);
        }

        var read = await pending;
        Assert.Equal(3200, read.Samples);
        Assert.Equal(start, read.FirstSampleTime);
        Assert.True(time.GetUtcNow() - start >= TimeSpan.FromSeconds(0.1), $"delivered after {(time.GetUtcNow() - start).TotalSeconds} s of replay time");

        // The next block is timed right after the first: 0.2 s of sound later.
        pending = source.ReadAsync(block, ct).AsTask();
        while (!pending.IsCompleted)
        {
            time.Advance(TimeSpan.FromMilliseconds(5));
            await Task.Delay(2, ct);
        }

        read = await pending;
        Assert.Equal(start + TimeSpan.FromSeconds(0.2), read.FirstSampleTime);
        Assert.Equal(3200, read.FirstSampleIndex);
        Assert.True(time.GetUtcNow() - start >= TimeSpan.FromSeconds(0.2));
    }

    [Fact]
    public async Task A_missing_file_is_a_clear_error_naming_it()
    {
        var path = Path.Combine(Path.GetTempPath(), $"edgerunner-missing-{Guid.NewGuid():N}.wav");

        var ex = Assert.Throws<SensorSourceException>(() => new AudioSensorSource(
            new AudioSourceOptions { Kind = AudioInputKind.File, Input = path }, TimeProvider.System, NullLogger.Instance));

        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", ex.Message, StringComparison.Ordinal);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task A_file_ffmpeg_cannot_decode_fails_with_ffmpegs_own_words()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = Path.Combine(Path.GetTempPath(), $"edgerunner-{Guid.NewGuid():N}.wav");
        await File.WriteAllTextAsync(path, "this is not audio at all", ct);
        try
        {
            await using var source = new AudioSensorSource(
                new AudioSourceOptions { Kind = AudioInputKind.File, Input = path, Speed = 0 }, TimeProvider.System, NullLogger.Instance);

            var ex = await Assert.ThrowsAsync<SensorSourceException>(async () => await source.ReadAsync(new float[512], ct));

            Assert.Contains(path, ex.Message, StringComparison.Ordinal);
            Assert.Contains("exit code", ex.Message, StringComparison.Ordinal);
            Assert.Contains("Invalid data found when processing input", ex.Message, StringComparison.Ordinal);
            Assert.Null(source.ProcessId);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task A_missing_alsa_device_fails_naming_the_device_with_ffmpegs_words()
    {
        var ct = TestContext.Current.CancellationToken;
        // Card 29 does not exist on a test machine (ALSA allows at most 32 cards).
        await using var source = new AudioSensorSource(
            new AudioSourceOptions { Kind = AudioInputKind.Alsa, Input = "hw:29,0" }, TimeProvider.System, NullLogger.Instance);
        Assert.Contains("-f alsa -sample_rate 16000 -channels 1 -i hw:29,0", source.CommandLine, StringComparison.Ordinal);

        var ex = await Assert.ThrowsAsync<SensorSourceException>(async () => await source.ReadAsync(new float[512], ct));

        Assert.Contains("ALSA capture device 'hw:29,0' could not be opened by ffmpeg", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot open audio device hw:29,0", ex.Message, StringComparison.Ordinal);
        Assert.Null(source.ProcessId);
    }

    [Fact]
    public async Task A_missing_arecord_is_a_clear_error_with_the_package_to_install()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var source = new AudioSensorSource(
            new AudioSourceOptions { Kind = AudioInputKind.Alsa, Input = "plughw:1,0", Backend = AudioCaptureBackend.Arecord, ArecordPath = "/nonexistent/arecord" },
            TimeProvider.System,
            NullLogger.Instance);
        Assert.Equal("/nonexistent/arecord -q -D plughw:1,0 -t raw -f S16_LE -r 16000 -c 1", source.CommandLine);

        var ex = await Assert.ThrowsAsync<SensorSourceException>(async () => await source.ReadAsync(new float[512], ct));

        Assert.Contains("/nonexistent/arecord", ex.Message, StringComparison.Ordinal);
        Assert.Contains("alsa-utils", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispose_kills_the_running_ffmpeg()
    {
        var ct = TestContext.Current.CancellationToken;
        var path = TestPaths.SharedFile(SpeechWav);
        var source = new AudioSensorSource(
            new AudioSourceOptions { Kind = AudioInputKind.File, Input = path, Speed = 1, Loop = true }, TimeProvider.System, NullLogger.Instance);
        int? pid;
        try
        {
            await source.ReadAsync(new float[16], ct);
            pid = source.ProcessId;
            Assert.NotNull(pid);
            // ffmpeg is blocked on a full pipe, very much alive.
            Assert.True(Directory.Exists($"/proc/{pid}"));
        }
        finally
        {
            // Also when an assertion above fails: never leave ffmpeg running.
            await source.DisposeAsync();
        }

        // DisposeAsync waited for the exit and reaped the process: its /proc entry is gone.
        Assert.False(Directory.Exists($"/proc/{pid}"));
        Assert.Throws<ArgumentException>(() => Process.GetProcessById(pid.Value));
    }

    [Fact]
    public async Task A_live_capture_that_dies_after_working_is_logged_with_its_stderr_and_restarted()
    {
        var ct = TestContext.Current.CancellationToken;
        // A stand-in for ffmpeg capturing a USB microphone that is then unplugged: 1600 samples of
        // 0x0101 (257), its last words on stderr, exit 1.
        var script = Path.Combine(Path.GetTempPath(), $"edgerunner-fake-capture-{Guid.NewGuid():N}.sh");
        await File.WriteAllTextAsync(script, "#!/bin/sh\nhead -c 3200 /dev/zero | tr '\\0' '\\1'\necho 'fake capture: device unplugged' >&2\nexit 1\n", ct);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var logger = new ListLogger();
        try
        {
            await using var source = new AudioSensorSource(
                new AudioSourceOptions { Kind = AudioInputKind.Alsa, Input = "hw:1,0", FfmpegPath = script, RestartMinDelay = TimeSpan.FromMilliseconds(10) },
                TimeProvider.System,
                logger);
            var block = new float[1000];

            var first = await source.ReadAsync(block, ct);
            Assert.Equal(1000, first.Samples);
            Assert.All(block, v => Assert.Equal(257 / 32768f, v));

            // The rest of the first run, cut short by the failure: the block ends at the gap.
            var second = await source.ReadAsync(block, ct);
            Assert.Equal(600, second.Samples);
            Assert.Equal(1000, second.FirstSampleIndex);
            Assert.Equal(1, source.Restarts);
            Assert.Contains(logger.Messages, m => m.Contains("exited with code 1", StringComparison.Ordinal) && m.Contains("fake capture: device unplugged", StringComparison.Ordinal));

            // Restarted: audio flows again, sample indices continue.
            var third = await source.ReadAsync(block, ct);
            Assert.Equal(1000, third.Samples);
            Assert.Equal(1600, third.FirstSampleIndex);
        }
        finally
        {
            File.Delete(script);
        }
    }

    [Fact]
    public async Task A_live_capture_that_dies_turns_the_wrapper_unavailable_until_audio_flows_again()
    {
        var ct = TestContext.Current.CancellationToken;
        // The same stand-in: 1600 samples, its last words on stderr, exit 1; restarted, it delivers again.
        var script = Path.Combine(Path.GetTempPath(), $"edgerunner-fake-capture-{Guid.NewGuid():N}.sh");
        await File.WriteAllTextAsync(script, "#!/bin/sh\nhead -c 3200 /dev/zero | tr '\\0' '\\1'\necho 'fake capture: device unplugged' >&2\nexit 1\n", ct);
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            await using var source = new ReopeningSensorSource(
                "ALSA device hw:1,0",
                () => new AudioSensorSource(
                    new AudioSourceOptions { Kind = AudioInputKind.Alsa, Input = "hw:1,0", FfmpegPath = script, RestartMinDelay = TimeSpan.FromMilliseconds(10) },
                    TimeProvider.System,
                    NullLogger.Instance),
                ["audio"],
                16000,
                TimeProvider.System,
                NullLogger.Instance);
            var states = new List<(SourceHealth State, string Reason)>();
            source.StateChanged += (_, e) => states.Add((e.State, e.Reason));
            // Constructed, capture not started: not "streaming" yet.
            Assert.Equal(SourceHealth.Opening, source.State);
            var block = new float[1000];

            Assert.Equal(1000, (await source.ReadAsync(block, ct)).Samples);
            Assert.Equal(SourceHealth.Streaming, source.State);

            // The rest of the run, cut by the capture's death: handed out, but the device is gone.
            var tail = await source.ReadAsync(block, ct);
            Assert.Equal(600, tail.Samples);
            Assert.Equal(SourceHealth.Unavailable, source.State);
            Assert.Contains("exited with code 1", source.Reason, StringComparison.Ordinal);
            Assert.Contains("fake capture: device unplugged", source.Reason, StringComparison.Ordinal);

            // Restarted: audio flows, streaming again.
            var again = await source.ReadAsync(block, ct);
            Assert.Equal(1000, again.Samples);
            Assert.Equal(1600, again.FirstSampleIndex);
            Assert.All(block, v => Assert.Equal(257 / 32768f, v));
            Assert.Equal(SourceHealth.Streaming, source.State);
            Assert.Equal([SourceHealth.Streaming, SourceHealth.Unavailable, SourceHealth.Streaming], states.Select(s => s.State));
            Assert.Equal(0, source.Reopens);
        }
        finally
        {
            File.Delete(script);
        }
    }

    /// <summary>Collects formatted log messages.</summary>
    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _messages = new();

        public IReadOnlyCollection<string> Messages => _messages;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _messages.Enqueue(formatter(state, exception));
    }

    /// <summary>A minimal RIFF/WAVE reader and writer for PCM16, independent of ffmpeg.</summary>
    private static class RiffWav
    {
        public static (int SampleRate, int Channels, int BitsPerSample, short[] Samples) Read(string path)
        {
            var bytes = File.ReadAllBytes(path);
            Assert.Equal("RIFF", Encoding.ASCII.GetString(bytes, 0, 4));
            Assert.Equal("WAVE", Encoding.ASCII.GetString(bytes, 8, 4));
            int sampleRate = 0, channels = 0, bits = 0;
            var offset = 12;
            while (offset + 8 <= bytes.Length)
            {
                var id = Encoding.ASCII.GetString(bytes, offset, 4);
                var size = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(offset + 4));
                var body = bytes.AsSpan(offset + 8, Math.Min(size, bytes.Length - offset - 8));
                if (id == "fmt ")
                {
                    Assert.Equal(1, BinaryPrimitives.ReadInt16LittleEndian(body)); // PCM
                    channels = BinaryPrimitives.ReadInt16LittleEndian(body[2..]);
                    sampleRate = BinaryPrimitives.ReadInt32LittleEndian(body[4..]);
                    bits = BinaryPrimitives.ReadInt16LittleEndian(body[14..]);
                }
                else if (id == "data")
                {
                    var samples = new short[body.Length / 2];
                    for (var i = 0; i < samples.Length; i++)
                    {
                        samples[i] = BinaryPrimitives.ReadInt16LittleEndian(body[(2 * i)..]);
                    }

                    return (sampleRate, channels, bits, samples);
                }

                offset += 8 + size + (size & 1);
            }

            throw new InvalidDataException($"{path}: no data chunk");
        }

        public static void Write(string path, int sampleRate, int channels, short[] interleaved)
        {
            var data = interleaved.Length * 2;
            var bytes = new byte[44 + data];
            Encoding.ASCII.GetBytes("RIFF").CopyTo(bytes, 0);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), 36 + data);
            Encoding.ASCII.GetBytes("WAVEfmt ").CopyTo(bytes, 8);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), 16);
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(20), 1);
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(22), (short)channels);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(24), sampleRate);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(28), sampleRate * channels * 2);
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(32), (short)(channels * 2));
            BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(34), 16);
            Encoding.ASCII.GetBytes("data").CopyTo(bytes, 36);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(40), data);
            for (var i = 0; i < interleaved.Length; i++)
            {
                BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(44 + (2 * i)), interleaved[i]);
            }

            File.WriteAllBytes(path, bytes);
        }
    }
}
