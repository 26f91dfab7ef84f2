using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Cameras.Ffmpeg;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.Hardware.Supervision;
using EdgeRunner.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.IntegrationTests;

/// <summary>Test videos made by ffmpeg itself (lavfi testsrc) into a temp folder, once per class.</summary>
public sealed class FfmpegMedia : IAsyncLifetime
{
    public const string Ffmpeg = "/usr/bin/ffmpeg";

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("edgerunner-ffmpeg-").FullName;

    /// <summary>testsrc 320x240, 10 fps, 3 s, H.264 in MP4 (moov at the end).</summary>
    public string H264 => Path.Combine(Directory, "testsrc.mp4");

    /// <summary>Solid red 64x48, 10 fps, 1 s, MJPEG in AVI.</summary>
    public string RedMjpeg => Path.Combine(Directory, "red.avi");

    /// <summary>The first half of <see cref="H264"/>'s bytes.</summary>
    public string Truncated => Path.Combine(Directory, "truncated.mp4");

    /// <summary>Random bytes named .mp4.</summary>
    public string Garbage => Path.Combine(Directory, "garbage.mp4");

    public bool Available { get; private set; }

    public static async Task RunFfmpegAsync(CancellationToken cancellationToken, params string[] args)
    {
        var start = new ProcessStartInfo(Ffmpeg, ["-hide_banner", "-nostdin", "-loglevel", "error", "-y", .. args])
        {
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stderr = await process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        Assert.True(process.ExitCode == 0, $"ffmpeg {string.Join(' ', args)} failed: {stderr}");
    }

    public async ValueTask InitializeAsync()
    {
        Available = File.Exists(Ffmpeg);
        if (!Available)
        {
            return;
        }

        var ct = TestContext.Current.CancellationToken;
        await Task.WhenAll(
            RunFfmpegAsync(ct, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "3", "-c:v", "libx264", "-pix_fmt", "yuv420p", H264),
            RunFfmpegAsync(ct, "-f", "lavfi", "-i", "color=c=red:size=64x48:rate=10", "-t", "1", "-c:v", "mjpeg", RedMjpeg));
        var bytes = await File.ReadAllBytesAsync(H264, ct);
        await File.WriteAllBytesAsync(Truncated, bytes.AsMemory(0, bytes.Length / 2), ct);
        var garbage = new byte[20_000];
        new Random(7).NextBytes(garbage);
        await File.WriteAllBytesAsync(Garbage, garbage, ct);
    }

    public ValueTask DisposeAsync()
    {
        System.IO.Directory.Delete(Directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}

/// <summary>Process bookkeeping through /proc: whether a pid is still a live (or zombie) child of this test process.</summary>
internal static class ChildProcesses
{
    public static bool IsChildOfUs(int pid)
    {
        // Without a readable /proc nothing here could tell a live child from a gone one: fail, never pass.
        Assert.True(File.Exists("/proc/self/stat"), "/proc is not readable here: child processes cannot be checked.");
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return false; // No such process any more.
        }

        // pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[1], CultureInfo.InvariantCulture) == Environment.ProcessId;
    }

    public static void AssertGone(IEnumerable<int> pids)
    {
        var leaked = pids.Where(IsChildOfUs).ToArray();
        Assert.True(leaked.Length == 0, $"ffmpeg processes left behind: {string.Join(", ", leaked)}");
    }
}

/// <summary>Keeps every log line so a test can check that no secret was logged.</summary>
internal sealed class CapturingLogger : ILogger
{
    public ConcurrentQueue<string> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        Lines.Enqueue($"{logLevel}: {formatter(state, exception)}{(exception is null ? string.Empty : " | " + exception.Message)}");
    }
}

public sealed class FfmpegCaptureTests(FfmpegMedia media) : IClassFixture<FfmpegMedia>
{
    private static readonly DateTimeOffset Epoch = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly FramePool _pool = new();

    [Fact]
    public async Task Reads_a_file_at_the_requested_size_rate_and_format_with_plausible_pixels()
    {
        RequireFfmpeg();
        var time = new FakeTimeProvider(Epoch);
        var options = new FfmpegSourceOptions { Kind = FfmpegInputKind.File, Input = media.H264, Width = 160, Height = 120, Fps = 5, RealTime = false };
        await using var source = new FfmpegFrameSource(options, _pool, time, NullLogger.Instance);
        var frames = 0;
        while (await source.ReadFrameAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken) is { } frame)
        {
            using (frame)
            {
                Assert.Equal((160, 120, 480, FramePixelFormat.Bgr24), (frame.Width, frame.Height, frame.Stride, frame.PixelFormat));
                Assert.Equal(frames, frame.Sequence);
                Assert.Equal(Epoch + (frames * TimeSpan.FromMilliseconds(200)), frame.Timestamp); // arrival time, from the TimeProvider
                if (frames == 0)
                {
                    AssertTestsrcColours(frame);
                }
            }

            frames++;
            time.Advance(TimeSpan.FromMilliseconds(200));
        }

        Assert.InRange(frames, 14, 16); // 3 s × 5 fps
        Assert.Equal(0, source.ExitCode);
        Assert.Null(await source.ReadFrameAsync(TestContext.Current.CancellationToken));
        Assert.True(_pool.Allocations <= 2, $"frames are recycled ({_pool.Allocations} buffers)");
        ChildProcesses.AssertGone([source.ProcessId!.Value]);
    }

    [Fact]
    public async Task Native_rate_gives_duration_times_fps_frames()
    {
        RequireFfmpeg();
        var options = new FfmpegSourceOptions { Input = media.H264, Width = 320, Height = 240, Fps = 10, RealTime = false, PixelFormat = FramePixelFormat.Rgb24 };
        await using var source = new FfmpegFrameSource(options, _pool, TimeProvider.System, NullLogger.Instance);
        var frames = 0;
        while (await source.ReadFrameAsync(TestContext.Current.CancellationToken) is { } frame)
        {
            frame.Dispose();
            frames++;
        }

        Assert.InRange(frames, 29, 31);
    }

    [Theory]
    [InlineData(FramePixelFormat.Bgr24, 2, 0)]
    [InlineData(FramePixelFormat.Rgb24, 0, 2)]
    [InlineData(FramePixelFormat.Rgba32, 0, 2)]
    public async Task Channel_order_matches_the_pixel_format(FramePixelFormat format, int redIndex, int blueIndex)
    {
        RequireFfmpeg();
        var options = new FfmpegSourceOptions { Input = media.RedMjpeg, Width = 32, Height = 24, Fps = 10, RealTime = false, PixelFormat = format };
        await using var source = new FfmpegFrameSource(options, _pool, TimeProvider.System, NullLogger.Instance);
        using var frame = await source.ReadFrameAsync(TestContext.Current.CancellationToken);
        Assert.NotNull(frame);
        var bpp = format.BytesPerPixel();
        var centre = frame.Pixels.Slice((12 * frame.Stride) + (16 * bpp), bpp);
        Assert.InRange(centre[redIndex], 230, 255);
        Assert.InRange(centre[1], 0, 30);
        Assert.InRange(centre[blueIndex], 0, 30);
    }

    [Fact]
    public async Task Loop_mode_keeps_going_past_the_end_and_RealTime_paces_it()
    {
        RequireFfmpeg();
        var ct = TestContext.Current.CancellationToken;
        var options = new FfmpegSourceOptions { Input = media.H264, Width = 80, Height = 60, Fps = 10, Loop = true, RealTime = false };
        await using (var source = new FfmpegFrameSource(options, _pool, TimeProvider.System, NullLogger.Instance))
        {
            for (var i = 0; i < 75; i++) // 2.5 × the file
            {
                using var frame = await source.ReadFrameAsync(ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), ct);
                Assert.NotNull(frame);
                Assert.Equal(i, frame.Sequence);
            }

            Assert.Contains("-stream_loop -1", source.CommandLine, StringComparison.Ordinal);
        }

        await using (var paced = new FfmpegFrameSource(options with { RealTime = true }, _pool, TimeProvider.System, NullLogger.Instance))
        {
            (await paced.ReadFrameAsync(ct))!.Dispose();
            var watch = Stopwatch.StartNew();
            for (var i = 0; i < 20; i++)
            {
                (await paced.ReadFrameAsync(ct))!.Dispose();
            }

            // ffmpeg's -re paces by the wall clock, so only a lower bound means anything (a loaded machine
            // only makes it slower, never a failure): 20 frames at 10 fps are 2 s of video; up to about 5
            // frames (0.5 s) may already wait decoded in the pipe (64 KiB, 14.4 kB a frame). Unpaced, the
            // decoder above delivers 75 frames in a fraction of that.
            Assert.Contains("-re", paced.CommandLine, StringComparison.Ordinal);
            Assert.True(watch.Elapsed.TotalSeconds >= 1.4, $"20 paced frames at 10 fps came in {watch.Elapsed.TotalSeconds:0.00} s");
        }
    }

    [Fact]
    public async Task A_truncated_file_fails_with_ffmpegs_reason_without_hanging()
    {
        RequireFfmpeg();
        var error = await ReadUntilErrorAsync(new FfmpegSourceOptions { Input = media.Truncated, RealTime = false });
        Assert.Contains("Invalid data found when processing input", error.Message, StringComparison.Ordinal);
        Assert.Contains("moov atom not found", error.Message, StringComparison.Ordinal);
        Assert.Contains(media.Truncated, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_garbage_file_fails_with_ffmpegs_reason()
    {
        RequireFfmpeg();
        var error = await ReadUntilErrorAsync(new FfmpegSourceOptions { Input = media.Garbage, RealTime = false });
        Assert.Contains("Invalid data found when processing input", error.Message, StringComparison.Ordinal);
        Assert.Contains("exit code", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_file_fails_with_no_such_file()
    {
        RequireFfmpeg();
        var missing = Path.Combine(media.Directory, "nope.mp4");
        var error = await ReadUntilErrorAsync(new FfmpegSourceOptions { Input = missing });
        Assert.Contains($"{missing}: No such file or directory", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_v4l2_device_fails_naming_the_device()
    {
        RequireFfmpeg();
        // A name no driver creates, so the test means the same on a machine with real cameras.
        const string Missing = "/dev/video-edgerunner-absent";
        Assert.False(File.Exists(Missing));
        var error = await ReadUntilErrorAsync(new FfmpegSourceOptions { Kind = FfmpegInputKind.V4l2, Input = Missing, V4l2InputFormat = V4l2InputFormat.Mjpeg, CaptureWidth = 1280, CaptureHeight = 720, CaptureFps = 30 });
        Assert.Contains($"Cannot open video device {Missing}: No such file or directory", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_ffmpeg_executable_is_a_clear_error()
    {
        var error = await ReadUntilErrorAsync(new FfmpegSourceOptions { Input = "x.mp4", FfmpegPath = "/nonexistent/ffmpeg" });
        Assert.Contains("/nonexistent/ffmpeg", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Credentials_never_appear_in_descriptions_errors_or_logs()
    {
        RequireFfmpeg();
        var port = FreePort.Next(); // nothing listens: ffmpeg says "Connection refused" and prints the URL
        var logger = new CapturingLogger();
        var options = new FfmpegSourceOptions { Kind = FfmpegInputKind.Rtsp, Input = $"rtsp://admin:s3cretPw@127.0.0.1:{port}/stream", IoTimeout = TimeSpan.FromSeconds(3), FfmpegLogLevel = "warning" };
        await using (var source = new FfmpegFrameSource(options, _pool, TimeProvider.System, logger))
        {
            var error = await Assert.ThrowsAsync<FrameSourceException>(async () => await source.ReadFrameAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken));
            Assert.Contains("Connection refused", error.Message, StringComparison.Ordinal);
            Assert.Contains("rtsp://***@127.0.0.1", error.Message, StringComparison.Ordinal);
            // A URL with a password reaches ffmpeg through a private ffconcat script, its options with it.
            Assert.Contains("-f concat -safe 0", source.CommandLine, StringComparison.Ordinal);
            Assert.Contains("option rtsp_transport tcp; option timeout 3000000", source.CommandLine, StringComparison.Ordinal);
            foreach (var text in new[] { error.Message, source.Description, source.CommandLine }.Concat(source.RecentErrors).Concat(logger.Lines))
            {
                Assert.DoesNotContain("s3cretPw", text, StringComparison.Ordinal);
                Assert.DoesNotContain("admin", text, StringComparison.Ordinal);
            }
        }

        var file = Path.Combine(media.Directory, "camera.credentials");
        await File.WriteAllTextAsync(file, "viewer:p@ss w/rd\n", TestContext.Current.CancellationToken);
        await using (var source = new FfmpegFrameSource(options with { Input = $"rtsp://127.0.0.1:{port}/stream", CredentialsFile = file }, _pool, TimeProvider.System, logger))
        {
            var error = await Assert.ThrowsAsync<FrameSourceException>(async () => await source.ReadFrameAsync(TestContext.Current.CancellationToken));
            foreach (var text in new[] { error.Message, source.Description, source.CommandLine }.Concat(logger.Lines))
            {
                Assert.DoesNotContain("p@ss", text, StringComparison.Ordinal);
                Assert.DoesNotContain("p%40ss", text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Http_mjpeg_stream_is_read()
    {
        RequireFfmpeg();
        var ct = TestContext.Current.CancellationToken;
        var port = FreePort.Next();
        // ffmpeg itself serves multipart MJPEG over HTTP, as an IP camera does.
        var serve = new ProcessStartInfo(FfmpegMedia.Ffmpeg, ["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "20", "-c:v", "mjpeg", "-q:v", "5", "-f", "mpjpeg", "-listen", "1", $"http://127.0.0.1:{port}/cam.mjpg"])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
        };
        using var server = Process.Start(serve)!;
        try
        {
            // The server takes one client only, so no port probe: retry while it is not listening yet.
            var options = new FfmpegSourceOptions { Kind = FfmpegInputKind.HttpMjpeg, Input = $"http://127.0.0.1:{port}/cam.mjpg", Width = 160, Height = 120, Fps = 5, IoTimeout = TimeSpan.FromSeconds(5) };
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                await using var source = new FfmpegFrameSource(options, _pool, TimeProvider.System, NullLogger.Instance);
                try
                {
                    for (var i = 0; i < 3; i++)
                    {
                        using var frame = await source.ReadFrameAsync(ct).AsTask().WaitAsync(TimeSpan.FromSeconds(15), ct);
                        Assert.NotNull(frame);
                        Assert.Equal((160, 120), (frame.Width, frame.Height));
                    }
                }
                catch (FrameSourceException ex) when (ex.Message.Contains("Connection refused", StringComparison.Ordinal) && deadline.Elapsed < TimeSpan.FromSeconds(10))
                {
                    await Task.Delay(100, ct);
                    continue;
                }

                Assert.Contains("-rw_timeout 5000000", source.CommandLine, StringComparison.Ordinal);
                break;
            }        }
        finally
        {
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task Twenty_open_close_and_supervised_restart_cycles_leave_no_ffmpeg_behind()
    {
        RequireFfmpeg();
        var ct = TestContext.Current.CancellationToken;
        var pids = new ConcurrentBag<int>();
        var looping = new FfmpegSourceOptions { Input = media.H264, Width = 80, Height = 60, Fps = 10, Loop = true, RealTime = false };

        // Open, read, close while ffmpeg is mid-stream (it is killed and reaped).
        for (var i = 0; i < 10; i++)
        {
            await using var source = new FfmpegFrameSource(looping, _pool, TimeProvider.System, NullLogger.Instance);
            (await source.ReadFrameAsync(ct))!.Dispose();
            pids.Add(source.ProcessId!.Value);
            Assert.True(ChildProcesses.IsChildOfUs(source.ProcessId!.Value));
        }

        // A cancelled read kills ffmpeg at once.
        for (var i = 0; i < 5; i++)
        {
            await using var source = new FfmpegFrameSource(looping with { RealTime = true }, _pool, TimeProvider.System, NullLogger.Instance);
            (await source.ReadFrameAsync(ct))!.Dispose();
            pids.Add(source.ProcessId!.Value);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(20);
            for (var j = 0; j < 100 && !cts.IsCancellationRequested; j++)
            {
                try
                {
                    (await source.ReadFrameAsync(cts.Token))?.Dispose();
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            ChildProcesses.AssertGone([source.ProcessId!.Value]);
        }

        // Supervised restarts of a failing input (garbage file: every ffmpeg exits with an error).
        var supervision = new SupervisionOptions { Name = "cycles", InitialBackoff = TimeSpan.FromMilliseconds(10), MaxBackoff = TimeSpan.FromMilliseconds(20), StallTimeout = TimeSpan.FromSeconds(5) };
        var garbage = new FfmpegSourceOptions { Input = media.Garbage, RealTime = false };
        var created = new ConcurrentQueue<FfmpegFrameSource>();
        var supervised = new SupervisedFrameSource(
            () =>
            {
                var source = new FfmpegFrameSource(garbage, _pool, TimeProvider.System, NullLogger.Instance);
                created.Enqueue(source);
                return source;
            },
            supervision,
            TimeProvider.System,
            NullLogger.Instance);
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            var reading = supervised.ReadFrameAsync(cts.Token).AsTask();
            var deadline = Stopwatch.StartNew();
            while (supervised.Restarts < 10 && deadline.Elapsed < TimeSpan.FromSeconds(20))
            {
                await Task.Delay(20, ct);
            }

            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(TimeSpan.FromSeconds(10), ct));
        }

        await supervised.DisposeAsync();
        Assert.True(supervised.Restarts >= 10, $"only {supervised.Restarts} restarts");
        Assert.Equal(SourceHealth.Unavailable, supervised.State);
        Assert.Contains("Invalid data found", supervised.LastError, StringComparison.Ordinal);
        foreach (var source in created)
        {
            if (source.ProcessId is { } pid)
            {
                pids.Add(pid);
            }
        }

        Assert.True(pids.Count >= 25, $"{pids.Count} ffmpeg processes tracked");
        ChildProcesses.AssertGone(pids);
    }

    private static void AssertTestsrcColours(Frame frame)
    {
        // testsrc shows saturated red, green and blue patches (and more): in BGR, red is the third byte.
        int red = 0, green = 0, blue = 0;
        var distinct = new HashSet<int>();
        var pixels = frame.Pixels;
        for (var i = 0; i < pixels.Length; i += 3)
        {
            int b = pixels[i], g = pixels[i + 1], r = pixels[i + 2];
            red += r > 200 && g < 60 && b < 60 ? 1 : 0;
            green += g > 200 && r < 90 && b < 90 ? 1 : 0;
            blue += b > 200 && r < 90 && g < 90 ? 1 : 0;
            distinct.Add(((r >> 5) << 6) | ((g >> 5) << 3) | (b >> 5));
        }

        var total = frame.Width * frame.Height;
        Assert.True(red > total / 100, $"red pixels: {red}");
        Assert.True(green > total / 100, $"green pixels: {green}");
        Assert.True(blue > total / 100, $"blue pixels: {blue}");
        Assert.True(distinct.Count >= 20, $"only {distinct.Count} distinct colours");
    }

    private async Task<FrameSourceException> ReadUntilErrorAsync(FfmpegSourceOptions options)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var source = new FfmpegFrameSource(options, _pool, TimeProvider.System, NullLogger.Instance);
        var error = await Assert.ThrowsAsync<FrameSourceException>(async () =>
        {
            while (await source.ReadFrameAsync(ct).AsTask().WaitAsync(TimeSpan.FromSeconds(15), ct) is { } frame)
            {
                frame.Dispose();
            }
        });
        if (source.ProcessId is { } pid)
        {
            ChildProcesses.AssertGone([pid]);
        }

        return error;
    }

    private void RequireFfmpeg() => Requirement.That(media.Available, $"{FfmpegMedia.Ffmpeg} is not installed (tests/run.sh installs the Debian package 'ffmpeg').");
}

/// <summary>
/// End to end against a real RTSP server (GStreamer's gst-rtsp-server via python3-gi, Rtsp/rtsp_server.py):
/// a supervised ffmpeg capture survives the server going away for 20 s and resumes by itself.
/// </summary>
public sealed class RtspCaptureTests
{
    [Fact]
    public async Task Supervised_rtsp_capture_reconnects_after_a_20_s_server_outage()
    {
        Requirement.Program(FfmpegMedia.Ffmpeg, "ffmpeg");
        var ct = TestContext.Current.CancellationToken;
        var logger = new CapturingLogger();
        var pool = new FramePool();
        var created = new ConcurrentQueue<FfmpegFrameSource>();
        var states = new ConcurrentQueue<(SourceHealth State, string Reason)>();
        var frames = 0L;
        await using var server = await RtspServer.StartAsync("Rtsp#Secret1", ct);
        SupervisedFrameSource? supervised = null;
        try
        {
            var capture = new FfmpegSourceOptions
            {
                Kind = FfmpegInputKind.Rtsp,
                Input = server.Url,
                CredentialsFile = server.CredentialsFile,
                Width = 160,
                Height = 120,
                Fps = 5,
                IoTimeout = TimeSpan.FromSeconds(3),
            };
            var supervision = new SupervisionOptions
            {
                Name = "rtsp-test",
                StallTimeout = TimeSpan.FromSeconds(5),
                InitialBackoff = TimeSpan.FromMilliseconds(500),
                MaxBackoff = TimeSpan.FromSeconds(2),
                RestartWhenEnded = true,
            };
            supervised = new SupervisedFrameSource(
                () =>
                {
                    var source = new FfmpegFrameSource(capture, pool, TimeProvider.System, logger);
                    created.Enqueue(source);
                    return source;
                },
                supervision,
                TimeProvider.System,
                logger);
            supervised.StateChanged += (_, e) => states.Enqueue((e.State, e.Reason));
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var reader = Task.Run(
                async () =>
                {
                    while (await supervised.ReadFrameAsync(stop.Token) is { } frame)
                    {
                        using (frame)
                        {
                            Assert.Equal((160, 120, FramePixelFormat.Bgr24), (frame.Width, frame.Height, frame.PixelFormat));
                            Interlocked.Increment(ref frames);
                        }
                    }
                },
                ct);

            await WaitForAsync(() => Interlocked.Read(ref frames) >= 5, TimeSpan.FromSeconds(15), "first frames", reader, ct);
            Assert.Equal(SourceHealth.Streaming, supervised.State);

            // Outage: the server dies and stays down for 20 s.
            await server.StopAsync();
            await WaitForAsync(() => supervised.State == SourceHealth.Unavailable, TimeSpan.FromSeconds(10), "Reconnecting", reader, ct);
            var framesAtOutage = Interlocked.Read(ref frames);
            // The outage lasts until the supervisor has retried 5 times (counted, not timed), and at least 20 s.
            var outage = Task.Delay(TimeSpan.FromSeconds(20), ct);
            await WaitForAsync(() => supervised.Restarts >= 5, TimeSpan.FromSeconds(120), "5 restarts during the outage", reader, ct);
            await outage;
            Assert.False(reader.IsCompleted, "the reader keeps waiting through the outage");
            Assert.Equal(SourceHealth.Unavailable, supervised.State);
            Assert.True(supervised.Restarts >= 5, $"restarts during the outage: {supervised.Restarts}");
            Assert.Contains("Connection refused", supervised.LastError, StringComparison.Ordinal);
            Assert.Equal(framesAtOutage, Interlocked.Read(ref frames));

            // The server comes back on the same port: frames resume without help.
            await server.StartAgainAsync(ct);
            await WaitForAsync(() => Interlocked.Read(ref frames) >= framesAtOutage + 5, TimeSpan.FromSeconds(15), "frames after the outage", reader, ct);
            Assert.Equal(SourceHealth.Streaming, supervised.State);
            Assert.Equal(
                [SourceHealth.Streaming, SourceHealth.Unavailable, SourceHealth.Streaming],
                states.Select(s => s.State).ToArray());

            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reader.WaitAsync(TimeSpan.FromSeconds(10), ct));
        }
        finally
        {
            if (supervised is not null)
            {
                await supervised.DisposeAsync();
            }
        }

        var pids = created.Select(s => s.ProcessId).OfType<int>().ToArray();
        Assert.True(pids.Length >= 7, $"ffmpeg processes: {pids.Length}");
        ChildProcesses.AssertGone(pids);
        foreach (var line in logger.Lines.Concat(states.Select(s => s.Reason)))
        {
            Assert.DoesNotContain("Rtsp#Secret1", line, StringComparison.Ordinal);
            Assert.DoesNotContain("Rtsp%23Secret1", line, StringComparison.Ordinal);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout, string what, Task reader, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (reader.IsCompleted)
            {
                await reader; // surfaces the reader's exception
                Assert.Fail($"the reader ended while waiting for {what}");
            }

            Assert.True(watch.Elapsed < timeout, $"timed out after {timeout} waiting for {what}");
            await Task.Delay(50, cancellationToken);
        }
    }
}
