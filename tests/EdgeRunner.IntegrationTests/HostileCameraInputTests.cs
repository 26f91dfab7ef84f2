using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.Hardware.Cameras;
using EdgeRunner.Hardware.Imaging;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Models.Inference;
using EdgeRunner.Models.Preprocessing;
using EdgeRunner.Service;
using EdgeRunner.Service.Vision;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SkiaSharp;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Hostile input through the in-process daemon (real mosquitto, real ONNX model, real files): images that
/// lie about their size or are cut short, a decoder that throws, a capture loop that throws. Each only costs
/// its own frames or its own camera a restart; the good images and the other cameras go on.
/// </summary>
public sealed class HostileCameraInputTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Oversized_and_truncated_images_are_skipped_once_each_while_good_images_and_other_cameras_go_on()
    {
        var ct = TestContext.Current.CancellationToken;
        using var work = new TempFolder();
        var mixed = Directory.CreateDirectory(Path.Combine(work.Path, "mixed")).FullName;
        var allBad = Directory.CreateDirectory(Path.Combine(work.Path, "all-bad")).FullName;
        File.Copy(TestPaths.SharedFile("images/goldfish.jpg"), Path.Combine(mixed, "a-good.jpg"));
        foreach (var folder in new[] { mixed, allBad })
        {
            File.WriteAllBytes(Path.Combine(folder, "b-huge.png"), HostileImages.PngClaiming(50_000, 50_000));
            File.WriteAllBytes(Path.Combine(folder, "c-truncated.jpg"), HostileImages.TruncatedJpeg());
        }

        await using var scenario = await DaemonScenario.StartAsync("hostile", ct);
        var config = scenario.WriteConfig(Sections(new JsonObject
        {
            ["mixed"] = ImagesCamera(mixed),
            ["allbad"] = ImagesCamera(allBad),
            ["other"] = ImagesCamera(TestPaths.SharedFile("images/cat.jpg")),
        }));
        var logs = new CapturingLoggerProvider();
        var probe = await scenario.ProbeAsync("vision/#", ct);
        using var host = await scenario.StartHostAsync(config, ct, services => services.AddSingleton<ILoggerProvider>(logs));

        var failed = await probe.WaitForAsync(m => m.Topic.EndsWith("/allbad/state", StringComparison.Ordinal) && State(m) == "failed", Wait, ct);
        Assert.True(failed.Retain);
        var reason = JsonDocument.Parse(failed.Payload).RootElement.GetProperty("reason").GetString()!;
        Assert.Contains("b-huge.png: its header claims 50000x50000", reason, StringComparison.Ordinal);
        Assert.Contains("MaxPixels", reason, StringComparison.Ordinal);
        Assert.Contains("c-truncated.jpg: the image data is truncated", reason, StringComparison.Ordinal);

        // Three loops over the mixed folder, each yielding only its good image.
        for (var i = 0; i < 3; i++)
        {
            await probe.WaitForAsync(m => m.Topic.EndsWith("/mixed/result", StringComparison.Ordinal), Wait, ct);
        }

        // A result of the other camera newer than the count taken here (the probe's queue may still hold older ones,
        // already counted: wait until one arrives after it).
        var otherBefore = Results(probe, "other").Count;
        while (Results(probe, "other").Count <= otherBefore)
        {
            await probe.WaitForAsync(m => m.Topic.EndsWith("/other/result", StringComparison.Ordinal), Wait, ct);
        }

        var pipelines = host.Services.GetRequiredService<VisionService>().Pipelines;
        var mixedSource = Assert.IsType<ImageFileFrameSource>(pipelines.Single(p => p.CameraId == "mixed").Source);
        await host.StopAsync(ct);

        var mixedResults = Results(probe, "mixed");
        Assert.True(mixedResults.Count >= 3);
        Assert.All(mixedResults, r => Assert.Equal("a-good.jpg", r.GetProperty("source").GetString()));
        Assert.True(Results(probe, "other").Count > otherBefore);
        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/mixed/state", StringComparison.Ordinal) && State(m) != "streaming");

        // Each bad file was decoded (and warned about) once, not once per loop.
        Assert.Equal(2, mixedSource.DecodeFailures);
        var skipped = logs.Entries.Where(e => e.Level == LogLevel.Warning && e.Message.StartsWith("Skipping image", StringComparison.Ordinal)).ToList();
        Assert.Single(skipped, e => e.Message.Contains(Path.Combine(mixed, "b-huge.png"), StringComparison.Ordinal));
        Assert.Single(skipped, e => e.Message.Contains(Path.Combine(mixed, "c-truncated.jpg"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_decoder_that_throws_drops_and_counts_its_frames_and_the_camera_and_the_others_go_on()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("throwing", ct);
        var config = scenario.WriteConfig(Sections(new JsonObject
        {
            ["broken"] = ImagesCamera(TestPaths.SharedFile("images/goldfish.jpg")),
            ["healthy"] = ImagesCamera(TestPaths.SharedFile("images/cat.jpg")),
        }));
        var logs = new CapturingLoggerProvider();
        VisionProcessorBuilder builder = (model, owner, loggerFactory) =>
        {
            var real = VisionProcessorFactory.Create(model, owner, loggerFactory);
            return owner == "Camera broken"
                ? new VisionFrameProcessor(real.Model, new ImagePreprocessor(model.Image!), new EveryOtherDecodeThrows(real.Head))
                : real;
        };
        var probe = await scenario.ProbeAsync("vision/#", ct);
        using var host = await scenario.StartHostAsync(
            config,
            ct,
            services =>
            {
                services.AddSingleton<ILoggerProvider>(logs);
                services.AddSingleton(builder);
            });

        // The broken camera still publishes its good frames, and says how many it dropped.
        await probe.WaitForAsync(m => m.Topic.EndsWith("/broken/result", StringComparison.Ordinal) && Json(m).GetProperty("frames_failed").GetInt64() >= 3, Wait, ct);
        await probe.WaitForAsync(m => m.Topic.EndsWith("/healthy/result", StringComparison.Ordinal) && Json(m).GetProperty("seq").GetInt64() >= 5, Wait, ct);
        var pipelines = host.Services.GetRequiredService<VisionService>().Pipelines;
        var broken = pipelines.Single(p => p.CameraId == "broken");
        var healthy = pipelines.Single(p => p.CameraId == "healthy");
        await host.StopAsync(ct);

        Assert.True(broken.FramesFailed >= 3);
        Assert.True(broken.FramesProcessed >= 3);
        Assert.Equal(0, broken.CaptureRestarts);
        Assert.Equal(0, healthy.FramesFailed);
        Assert.Equal(0, Json(probe.Seen.Last(m => m.Topic.EndsWith("/healthy/result", StringComparison.Ordinal))).GetProperty("frames_failed").GetInt64());
        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/state", StringComparison.Ordinal) && State(m) != "streaming");

        // Logged with its stack once; the same failure again is not logged per frame.
        var failures = logs.Entries.Where(e => e.Message.Contains("Camera broken: processing frame", StringComparison.Ordinal)).ToList();
        Assert.Equal(1, failures.Count(e => e.Exception is InvalidOperationException { Message: EveryOtherDecodeThrows.Message }));
        Assert.True(failures.Count < broken.FramesFailed, $"{failures.Count} log lines for {broken.FramesFailed} failed frames");
    }

    [Fact]
    public async Task An_exception_escaping_the_capture_loop_restarts_that_camera_with_its_state_published_and_the_others_go_on()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("capture", ct);
        var flaky = ImagesCamera(TestPaths.SharedFile("images/goldfish.jpg"));
        flaky["ReconnectMinDelaySeconds"] = 0.2;
        flaky["ReconnectMaxDelaySeconds"] = 1;
        var config = scenario.WriteConfig(Sections(new JsonObject
        {
            ["flaky"] = flaky,
            ["steady"] = ImagesCamera(TestPaths.SharedFile("images/cat.jpg")),
        }));
        var logs = new CapturingLoggerProvider();
        var created = 0;

        // Only the first source the flaky camera creates breaks (after three frames); the restarted one is sound.
        VisionSourceDecorator decorator = (camera, source) =>
            camera == "flaky" && Interlocked.Increment(ref created) == 1 ? new ThrowsAfter(source, 3) : source;
        var probe = await scenario.ProbeAsync("vision/#", ct);
        using var host = await scenario.StartHostAsync(
            config,
            ct,
            services =>
            {
                services.AddSingleton<ILoggerProvider>(logs);
                services.AddSingleton(decorator);
            });

        var reconnecting = await probe.WaitForAsync(m => m.Topic.EndsWith("/flaky/state", StringComparison.Ordinal) && State(m) == "reconnecting", Wait, ct);
        Assert.True(reconnecting.Retain);
        var state = Json(reconnecting);
        Assert.Contains(ThrowsAfter.Message, state.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, state.GetProperty("restarts").GetInt64());
        await probe.WaitForAsync(m => m.Topic.EndsWith("/flaky/state", StringComparison.Ordinal) && State(m) == "streaming", Wait, ct);

        // Results go on after the restart, numbered on from before it.
        var after = await probe.WaitForAsync(m => m.Topic.EndsWith("/flaky/result", StringComparison.Ordinal) && Json(m).GetProperty("seq").GetInt64() >= 6, Wait, ct);
        var steadyBefore = Results(probe, "steady").Count;
        // A result newer than every one counted (the probe's wait also matches messages it has already seen).
        var steadyLastSeq = Results(probe, "steady").Select(r => r.GetProperty("seq").GetInt64()).DefaultIfEmpty(-1).Max();
        await probe.WaitForAsync(m => m.Topic.EndsWith("/steady/result", StringComparison.Ordinal) && Json(m).GetProperty("seq").GetInt64() > steadyLastSeq, Wait, ct);
        var pipelines = host.Services.GetRequiredService<VisionService>().Pipelines;
        var flakyPipeline = pipelines.Single(p => p.CameraId == "flaky");
        var steadyPipeline = pipelines.Single(p => p.CameraId == "steady");
        await host.StopAsync(ct);

        Assert.Equal(2, created);
        Assert.Equal(1, flakyPipeline.CaptureRestarts);
        Assert.Equal(0, steadyPipeline.CaptureRestarts);
        Assert.Equal("goldfish.jpg", Json(after).GetProperty("source").GetString());
        var seqs = Results(probe, "flaky").Select(r => r.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(seqs.Count, seqs.Distinct().Count());
        Assert.True(Results(probe, "steady").Count > steadyBefore);
        Assert.DoesNotContain(probe.Seen, m => m.Topic.EndsWith("/steady/state", StringComparison.Ordinal) && State(m) != "streaming");
        Assert.Single(logs.Entries, e => e.Level == LogLevel.Error && e.Exception is InvalidOperationException { Message: ThrowsAfter.Message } && e.Message.Contains("Camera flaky: capture failed unexpectedly", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_failure_the_camera_cannot_contain_stops_the_daemon_with_exit_code_70_for_systemd_to_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("beyond", ct);
        var config = scenario.WriteConfig(Sections(new JsonObject
        {
            ["broken"] = ImagesCamera(TestPaths.SharedFile("images/goldfish.jpg")),
            ["steady"] = ImagesCamera(TestPaths.SharedFile("images/cat.jpg")),
        }));
        var logs = new CapturingLoggerProvider();

        // Out of memory is the one failure a camera's own supervision lets through (retrying cannot help):
        // the daemon must not run on with the camera silently gone.
        VisionSourceDecorator decorator = (camera, source) => camera == "broken" ? new OutOfMemoryAfter(source, 2) : source;
        using var host = await scenario.StartHostAsync(
            config,
            ct,
            services =>
            {
                services.AddSingleton<ILoggerProvider>(logs);
                services.AddSingleton(decorator);
            });
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = new TaskCompletionSource();
        using var registration = lifetime.ApplicationStopping.Register(() => stopping.TrySetResult());
        try
        {
            await stopping.Task.WaitAsync(Wait, ct);
            Assert.Equal(VisionService.SupervisionFailedExitCode, Environment.ExitCode);
            Assert.Single(logs.Entries, e => e.Level == LogLevel.Critical && e.Exception is OutOfMemoryException && e.Message.Contains("camera broken", StringComparison.OrdinalIgnoreCase));
            await host.StopAsync(ct);
        }
        finally
        {
            // The test process's own exit code is its runner's business.
            Environment.ExitCode = 0;
        }
    }

    private sealed class OutOfMemoryAfter(IFrameSource inner, int frames) : IFrameSource
    {
        private int _delivered;

        public string Description => inner.Description;

        public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
        {
            if (_delivered++ >= frames)
            {
#pragma warning disable CA2201 // Deliberately the runtime's own exception: the one a camera's supervision lets through.
                throw new OutOfMemoryException("simulated: no memory for the next frame");
#pragma warning restore CA2201
            }

            return await inner.ReadFrameAsync(cancellationToken);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private static JsonObject ImagesCamera(string path) => new()
    {
        ["Model"] = "mobilenet",
        ["Fps"] = 10,
        ["Source"] = new JsonObject { ["Kind"] = "Images", ["Path"] = path, ["Loop"] = true },
    };

    private static JsonObject Sections(JsonObject cameras) => new()
    {
        ["Models"] = new JsonObject { ["mobilenet"] = TestConfig.MobileNetModel() },
        ["Cameras"] = cameras,
    };

    private static JsonElement Json(ReceivedMessage message) => JsonDocument.Parse(message.Payload).RootElement;

    private static string? State(ReceivedMessage message) => Json(message).GetProperty("state").GetString();

    private static List<JsonElement> Results(MqttProbe probe, string camera) =>
        probe.Seen.Where(m => m.Topic.EndsWith($"/{camera}/result", StringComparison.Ordinal)).Select(Json).ToList();

    /// <summary>A real head whose every other decode throws, as a decoder bug on some frames would.</summary>
    private sealed class EveryOtherDecodeThrows(IVisionHead inner) : IVisionHead
    {
        public const string Message = "simulated decoder bug";
        private int _calls;

        public JsonEncodedText Task => inner.Task;

        public int Count => inner.Count;

        public (string Label, float Score) Top => inner.Top;

        public void Decode(ModelSession session, in SourceMapping mapping, int frameWidth, int frameHeight)
        {
            if (++_calls % 2 == 0)
            {
                throw new InvalidOperationException(Message);
            }

            inner.Decode(session, mapping, frameWidth, frameHeight);
        }

        public void Write(Utf8JsonWriter writer) => inner.Write(writer);
    }

    /// <summary>Passes a real source's frames on, then throws an exception no source is expected to throw.</summary>
    private sealed class ThrowsAfter(IFrameSource inner, int frames) : IFrameSource
    {
        public const string Message = "simulated capture bug";
        private int _delivered;

        public string Description => inner.Description;

        public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
        {
            if (_delivered++ >= frames)
            {
                throw new InvalidOperationException(Message);
            }

            return await inner.ReadFrameAsync(cancellationToken);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}

/// <summary>Image files that lie: valid headers over missing or cut-off data.</summary>
internal static class HostileImages
{
    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        var c = (uint)n;
        for (var k = 0; k < 8; k++)
        {
            c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }

        return c;
    }).ToArray();

    /// <summary>A well-formed PNG (signature, IHDR with valid CRC, a small IDAT, IEND) whose header claims <paramref name="width"/>×<paramref name="height"/> RGBA.</summary>
    public static byte[] PngClaiming(int width, int height)
    {
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8; // bit depth
        header[9] = 6; // colour type RGBA
        WriteChunk(png, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                zlib.Write(new byte[4096]);
            }

            WriteChunk(png, "IDAT", compressed.ToArray());
        }

        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>A real JPEG (a gradient encoded by Skia) cut off after 40 % of its bytes.</summary>
    public static byte[] TruncatedJpeg()
    {
        using var bitmap = new SKBitmap(320, 240);
        for (var y = 0; y < 240; y++)
        {
            for (var x = 0; x < 320; x++)
            {
                bitmap.SetPixel(x, y, new SKColor((byte)x, (byte)y, (byte)(x ^ y)));
            }
        }

        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        var bytes = data.ToArray();
        return bytes[..(bytes.Length * 2 / 5)];
    }

    private static void WriteChunk(Stream png, string type, byte[] data)
    {
        Span<byte> number = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(number, data.Length);
        png.Write(number);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        png.Write(typeBytes);
        png.Write(data);
        var crc = 0xFFFFFFFFu;
        foreach (var b in typeBytes.Concat(data))
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        BinaryPrimitives.WriteUInt32BigEndian(number, crc ^ 0xFFFFFFFFu);
        png.Write(number);
    }
}
