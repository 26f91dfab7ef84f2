using EdgeRunner.Hardware.Imaging;
using Microsoft.Extensions.Logging;
using SkiaSharp;

namespace EdgeRunner.Hardware.Cameras;

/// <summary>
/// Emits still images (JPEG, PNG, WebP, BMP, GIF first frame) from a file or a folder, in name order,
/// at a fixed rate, optionally looping. Images are decoded by Skia straight into pooled frames.
/// </summary>
/// <remarks>
/// A file that cannot be used — unreadable, not an image, larger than <see cref="MaxPixels"/> (judged from
/// its header before any pixel buffer is allocated), truncated or corrupt — is skipped with one warning and
/// counted; it is never emitted, and the other files go on. A file once found bad is not decoded again on
/// later loops until its size or modification time changes (then it is tried again). When every file in a
/// row is bad the source throws <see cref="FrameSourceException"/> naming each file and its reason.
/// </remarks>
public sealed partial class ImageFileFrameSource : IFrameSource
{
    /// <summary>Default for <see cref="MaxPixels"/>: one 8K UHD frame (7680×4320).</summary>
    public const long DefaultMaxPixels = 7680L * 4320;

    private static readonly string[] SupportedExtensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"];

    private readonly string[] _files;
    private readonly string[] _fileNames;
    private readonly BadFile?[] _bad;
    private readonly bool _loop;
    private readonly FramePool _pool;
    private readonly FramePacer _pacer;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private int _index;
    private long _sequence;
    private int _failuresInARow;
    private long _decodeFailures;

    /// <summary>Creates the source over <paramref name="path"/> (a file or a folder).</summary>
    /// <param name="path">An image file or a folder of them.</param>
    /// <param name="loop">Start again after the last file.</param>
    /// <param name="framesPerSecond">Emission rate.</param>
    /// <param name="pool">Where frames come from.</param>
    /// <param name="timeProvider">Clock for pacing and timestamps.</param>
    /// <param name="logger">Receives one warning per bad file.</param>
    /// <param name="maxPixels">Largest image (width × height) decoded; larger ones are skipped.</param>
    /// <exception cref="FrameSourceException">The path does not exist or the folder has no image files.</exception>
    public ImageFileFrameSource(string path, bool loop, double framesPerSecond, FramePool pool, TimeProvider timeProvider, ILogger logger, long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPixels, 1);
        _files = ListImages(path);
        _fileNames = Array.ConvertAll(_files, Path.GetFileName)!;
        _bad = new BadFile?[_files.Length];
        _loop = loop;
        _pool = pool;
        _timeProvider = timeProvider;
        _logger = logger;
        MaxPixels = maxPixels;
        _pacer = new FramePacer(timeProvider, framesPerSecond);
        Description = _files.Length == 1 && File.Exists(path)
            ? $"image {path}{(loop ? " (loop)" : string.Empty)} at {framesPerSecond} fps"
            : $"image folder {path}: {_files.Length} images{(loop ? " (loop)" : string.Empty)} at {framesPerSecond} fps";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>Largest image, in pixels (width × height), this source decodes.</summary>
    public long MaxPixels { get; }

    /// <summary>Decode attempts that failed so far (a bad file is tried once, and again only after it changes).</summary>
    public long DecodeFailures => Interlocked.Read(ref _decodeFailures);

    /// <summary>The image files this source emits, in order.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <inheritdoc />
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_index >= _files.Length)
            {
                if (!_loop)
                {
                    return null;
                }

                _index = 0;
            }

            var fileIndex = _index++;
            var path = _files[fileIndex];
            if (_bad[fileIndex] is { } known && known.IsUnchanged(path))
            {
                // Known bad and not rewritten since: skip without decoding again, without taking a frame slot.
                CountFailure();
                continue;
            }

            await _pacer.WaitAsync(cancellationToken).ConfigureAwait(false);
            var stamp = FileStamp.Of(path);
            var frame = DecodeCore(path, _pool, MaxPixels, out var error);
            if (frame is null)
            {
                Interlocked.Increment(ref _decodeFailures);
                _bad[fileIndex] = new BadFile(error, stamp);
                LogSkipped(_logger, path, error);
                CountFailure();
                continue;
            }

            if (_bad[fileIndex] is not null)
            {
                _bad[fileIndex] = null;
                LogRecovered(_logger, path);
            }

            _failuresInARow = 0;
            frame.Sequence = _sequence++;
            frame.Timestamp = _timeProvider.GetUtcNow();
            frame.Origin = _fileNames[fileIndex];
            return frame;
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Decodes one image file into a frame from <paramref name="pool"/> (RGBA32). Throws <see cref="FrameSourceException"/> naming the file on failure.</summary>
    public static Frame Decode(string path, FramePool pool, long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(pool);
        return DecodeCore(path, pool, maxPixels, out var error) ?? throw new FrameSourceException($"Cannot decode image '{path}': {error}.");
    }

    private void CountFailure()
    {
        if (++_failuresInARow < _files.Length)
        {
            return;
        }

        var reasons = string.Join("; ", _files.Select((f, i) => (Name: _fileNames[i], Bad: _bad[i])).Where(x => x.Bad is not null).Take(5).Select(x => $"{x.Name}: {x.Bad!.Reason}"));
        var more = _files.Length > 5 ? $"; and {_files.Length - 5} more" : string.Empty;
        throw new FrameSourceException($"None of the {_files.Length} image file(s) can be used: {reasons}{more}");
    }

    private static unsafe Frame? DecodeCore(string path, FramePool pool, long maxPixels, out string error)
    {
        using var stream = OpenOrNull(path, out error);
        if (stream is null)
        {
            return null;
        }

        // SKCodec.Create reads only the header: the dimensions are known before any pixel memory is taken.
        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null)
        {
            error = $"not a supported image ({createResult})";
            return null;
        }

        var (width, height) = (codec.Info.Width, codec.Info.Height);
        var pixelCount = (long)width * height;
        if (width < 1 || height < 1)
        {
            error = $"its header claims an empty size {width}x{height}";
            return null;
        }

        if (pixelCount > maxPixels || FramePool.ByteCount(width, height, FramePixelFormat.Rgba32) < 0)
        {
            error = $"its header claims {width}x{height} = {pixelCount} pixels, more than the {maxPixels} allowed (MaxPixels)";
            return null;
        }

        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var frame = pool.Rent(width, height, FramePixelFormat.Rgba32);
        SKCodecResult result;
        fixed (byte* pixels = frame.Pixels)
        {
            result = codec.GetPixels(info, (IntPtr)pixels);
        }

        // IncompleteInput (a truncated file) would give a partly grey image: results on it would be wrong, not just fewer.
        if (result != SKCodecResult.Success)
        {
            frame.Dispose();
            error = result == SKCodecResult.IncompleteInput
                ? "the image data is truncated (decoder said IncompleteInput)"
                : $"the image data is corrupt (decoder said {result})";
            return null;
        }

        error = string.Empty;
        return frame;
    }

    private static FileStream? OpenOrNull(string path, out string error)
    {
        try
        {
            error = string.Empty;
            return File.OpenRead(path);
        }
        catch (IOException ex)
        {
            error = ex.Message;
            return null;
        }
        catch (UnauthorizedAccessException ex)
        {
            error = ex.Message;
            return null;
        }
    }

    private static string[] ListImages(string path)
    {
        if (File.Exists(path))
        {
            return [Path.GetFullPath(path)];
        }

        if (!Directory.Exists(path))
        {
            throw new FrameSourceException($"Image path '{path}' does not exist.");
        }

        var files = Directory.EnumerateFiles(path)
            .Where(f => SupportedExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0)
        {
            throw new FrameSourceException($"Image folder '{path}' has no image files ({string.Join(", ", SupportedExtensions)}).");
        }

        return files;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipping image {File} (until it changes): {Reason}")]
    private static partial void LogSkipped(ILogger logger, string file, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Image {File} changed and decodes again")]
    private static partial void LogRecovered(ILogger logger, string file);

    /// <summary>A file's size and modification time, to notice that a bad file was replaced.</summary>
    private readonly record struct FileStamp(long Length, DateTime LastWriteUtc)
    {
        public static FileStamp Of(string path)
        {
            try
            {
                var info = new FileInfo(path);
                return info.Exists ? new FileStamp(info.Length, info.LastWriteTimeUtc) : default;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return default;
            }
        }
    }

    private sealed record BadFile(string Reason, FileStamp Stamp)
    {
        public bool IsUnchanged(string path) => FileStamp.Of(path) == Stamp;
    }
}
