using EdgeRunner.Hardware.Imaging;
using Microsoft.Extensions.Logging;
using SkiaSharp;

namespace EdgeRunner.Hardware.Cameras;

/// <summary>
/// Emits still images (JPEG, PNG, WebP, BMP, GIF first frame) from a file or a folder, in name order,
/// at a fixed rate, optionally looping. Images are decoded by Skia straight into pooled frames.
/// A file that cannot be decoded is skipped, logged and counted; a folder with no decodable image is an error.
/// </summary>
public sealed partial class ImageFileFrameSource : IFrameSource
{
    private static readonly string[] SupportedExtensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"];

    private readonly string[] _files;
    private readonly string[] _fileNames;
    private readonly bool _loop;
    private readonly FramePool _pool;
    private readonly FramePacer _pacer;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private int _index;
    private long _sequence;
    private int _failuresInARow;

    /// <summary>Creates the source over <paramref name="path"/> (a file or a folder).</summary>
    /// <exception cref="FrameSourceException">The path does not exist or the folder has no image files.</exception>
    public ImageFileFrameSource(string path, bool loop, double framesPerSecond, FramePool pool, TimeProvider timeProvider, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentNullException.ThrowIfNull(logger);
        _files = ListImages(path);
        _fileNames = Array.ConvertAll(_files, Path.GetFileName)!;
        _loop = loop;
        _pool = pool;
        _timeProvider = timeProvider;
        _logger = logger;
        _pacer = new FramePacer(timeProvider, framesPerSecond);
        Description = _files.Length == 1 && File.Exists(path)
            ? $"image {path}{(loop ? " (loop)" : string.Empty)} at {framesPerSecond} fps"
            : $"image folder {path}: {_files.Length} images{(loop ? " (loop)" : string.Empty)} at {framesPerSecond} fps";
    }

    /// <inheritdoc />
    public string Description { get; }

    /// <summary>Files that failed to decode so far.</summary>
    public long DecodeFailures { get; private set; }

    /// <summary>The image files this source emits, in order.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <inheritdoc />
    public async ValueTask<Frame?> ReadFrameAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_index >= _files.Length)
            {
                if (!_loop)
                {
                    return null;
                }

                _index = 0;
            }

            var fileIndex = _index++;
            await _pacer.WaitAsync(cancellationToken).ConfigureAwait(false);
            var frame = TryDecode(_files[fileIndex]);
            if (frame is null)
            {
                DecodeFailures++;
                if (++_failuresInARow >= _files.Length)
                {
                    throw new FrameSourceException($"None of the {_files.Length} image files could be decoded (last: {_files[fileIndex]}).");
                }

                continue;
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
    public static Frame Decode(string path, FramePool pool)
    {
        ArgumentNullException.ThrowIfNull(pool);
        return DecodeCore(path, pool, out var error) ?? throw new FrameSourceException($"Cannot decode image '{path}': {error}.");
    }

    private Frame? TryDecode(string path)
    {
        var frame = DecodeCore(path, _pool, out var error);
        if (frame is null)
        {
            LogDecodeFailed(_logger, path, error);
        }

        return frame;
    }

    private static unsafe Frame? DecodeCore(string path, FramePool pool, out string error)
    {
        using var stream = OpenOrNull(path, out error);
        if (stream is null)
        {
            return null;
        }

        using var codec = SKCodec.Create(stream, out var createResult);
        if (codec is null)
        {
            error = $"not a supported image ({createResult})";
            return null;
        }

        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var frame = pool.Rent(info.Width, info.Height, FramePixelFormat.Rgba32);
        SKCodecResult result;
        fixed (byte* pixels = frame.Pixels)
        {
            result = codec.GetPixels(info, (IntPtr)pixels);
        }

        // IncompleteInput still yields a usable (partly grey) image, as browsers show it.
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
        {
            frame.Dispose();
            error = $"decoder said {result}";
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipping image {File}: {Reason}")]
    private static partial void LogDecodeFailed(ILogger logger, string file, string reason);
}
