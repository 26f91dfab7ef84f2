using System.Security.Cryptography;
using System.Text;
using EdgeRunner.Models.Sequence;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// A stream's recurrent state on disk: the model's SHA-256 (state is only meaningful for the exact
/// model that produced it), the steps run, the source position, the time of the last sample the
/// state has seen, and each state tensor. Written to a temporary file and renamed over the old one,
/// so a crash mid-write never leaves a torn checkpoint; a damaged file is reported, never thrown.
/// Since version 4 the file ends with the SHA-256 of everything before it, so a flipped bit on the
/// disk is found and the file is reported damaged instead of restoring a corrupted state. Files are
/// created 0600 and the folders the daemon creates 0700, whatever the umask: the state describes the
/// machines the device watches.
/// </summary>
internal static class StreamCheckpoint
{
    private const int Magic = 0x4B435245; // "ERCK"

    // 2 added the last sample time, 3 the runner's own state (resampler grid, samples waiting for the
    // next chunk) so a resampled stream resumes exactly, 4 the trailing SHA-256; older files are still read.
    private const int Version = 4;

    private const int HashBytes = 32;

    // A checkpoint holds a few state tensors (kilobytes to a few megabytes): a larger file is not read.
    private const long MaxBytes = 256L * 1024 * 1024;

    // NAME_MAX of Linux file systems, in bytes, for the name with its ".state.tmp" ending.
    private const int NameMax = 255;

    private const string Extension = ".state";
    private const string TemporaryExtension = ".tmp";

    /// <summary>State files: owner read and write only.</summary>
    public const UnixFileMode StateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Folders the daemon creates for state: owner only.</summary>
    public const UnixFileMode StateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// The checkpoint file of a stream. '%' and '/' are escaped (%25, %2F) since dynamic stream ids span
    /// topic levels. An id whose name would exceed NAME_MAX (255 bytes) or holds characters a file name
    /// should not (control characters, broken UTF-16) gets a stable safe name instead: a readable prefix
    /// (its first topic level, then %2F for a dynamic stream, so retention still finds it) and "%H" with
    /// the SHA-256 of the id. An escaped name never holds "%H", so the two kinds cannot collide. Writing,
    /// restoring and pruning all go through this one mapping.
    /// </summary>
    public static string PathFor(string directory, string streamId) => System.IO.Path.Combine(directory, FileNameFor(streamId));

    /// <summary>The file name (see <see cref="PathFor"/>).</summary>
    public static string FileNameFor(string streamId)
    {
        ArgumentNullException.ThrowIfNull(streamId);
        var escaped = Escape(streamId);
        if (streamId.Length > 0 && IsSafe(streamId) && Encoding.UTF8.GetByteCount(escaped + Extension + TemporaryExtension) <= NameMax)
        {
            return escaped + Extension;
        }

        var slash = streamId.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? streamId : streamId[..slash];
        var readable = new StringBuilder(64);
        foreach (var c in first)
        {
            if (readable.Length == 64)
            {
                break;
            }

            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            {
                readable.Append(c);
            }
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(streamId)));
        return $"{readable}{(slash < 0 ? string.Empty : "%2F")}%H{hash}{Extension}";
    }

    private static string Escape(string streamId) => streamId.Replace("%", "%25", StringComparison.Ordinal).Replace("/", "%2F", StringComparison.Ordinal);

    private static bool IsSafe(string streamId)
    {
        for (var i = 0; i < streamId.Length; i++)
        {
            var c = streamId[i];
            if (char.IsControl(c))
            {
                return false;
            }

            if (char.IsHighSurrogate(c) && i + 1 < streamId.Length && char.IsLowSurrogate(streamId[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Creates the state folder (and any missing parents) 0700 whatever the umask. Folders that already
    /// exist keep their mode: the daemon changes only what it creates.
    /// </summary>
    public static void EnsureDirectory(string directory) => PrivateDirectory.Ensure(directory);

    /// <summary>Writes the checkpoint (0600, through a temporary file renamed over the old one).</summary>
    /// <exception cref="IOException">It cannot be written (a full disk, a name too long, a folder in the way); no partial file is left.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder may not be written.</exception>
    public static void Write(string path, string modelSha256, StreamState state, long sourceSamples, DateTimeOffset? lastSampleTime = null, IReadOnlyList<double>? runnerState = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(modelSha256);
        ArgumentNullException.ThrowIfNull(state);
        var temporary = path + TemporaryExtension;
        using var body = new MemoryStream();
        using (var writer = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(Version);
            writer.Write(modelSha256);
            writer.Write(state.StreamId);
            writer.Write(state.Steps);
            writer.Write(sourceSamples);
            writer.Write(lastSampleTime?.UtcTicks ?? 0L);
            writer.Write(runnerState?.Count ?? -1);
            foreach (var value in runnerState ?? [])
            {
                writer.Write(value);
            }

            writer.Write(state.Count);
            for (var p = 0; p < state.Count; p++)
            {
                var tensor = state.Tensor(p);
                writer.Write(tensor.Length);
                foreach (var value in tensor)
                {
                    writer.Write(value);
                }
            }

            writer.Flush();
        }

        var hash = SHA256.HashData(body.GetBuffer().AsSpan(0, (int)body.Length));
        try
        {
            using (var stream = new FileStream(temporary, new FileStreamOptions { Mode = System.IO.FileMode.Create, Access = FileAccess.Write, Share = FileShare.None, UnixCreateMode = StateFileMode }))
            {
                // A temporary file left by a crash keeps the mode it was created with: set it on the handle.
                File.SetUnixFileMode(stream.SafeFileHandle, StateFileMode);
                stream.Write(body.GetBuffer().AsSpan(0, (int)body.Length));
                stream.Write(hash);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The write's own error is the one reported.
        }
    }

    /// <summary>Restores <paramref name="state"/> from <paramref name="path"/>, giving the time of the last sample the state has seen (null when unknown); returns why not when it cannot (missing, other model, other shape, damaged).</summary>
    public static bool TryRead(string path, string modelSha256, StreamState state, out long sourceSamples, out DateTimeOffset? lastSampleTime, out string reason) =>
        TryRead(path, [modelSha256], state, out sourceSamples, out lastSampleTime, out _, out _, out reason);

    /// <summary>
    /// Restores a checkpoint written by any of the models in <paramref name="acceptedSha256"/> (the running
    /// model first, then those its manifest declares state-compatible); <paramref name="writtenBy"/> says which.
    /// Tensor counts and sizes must match in every case.
    /// </summary>
    public static bool TryRead(string path, IReadOnlyList<string> acceptedSha256, StreamState state, out long sourceSamples, out DateTimeOffset? lastSampleTime, out double[]? runnerState, out string writtenBy, out string reason)
    {
        runnerState = null;
        ArgumentNullException.ThrowIfNull(acceptedSha256);
        var modelSha256 = acceptedSha256[0];
        writtenBy = string.Empty;
        sourceSamples = 0;
        lastSampleTime = null;
        if (!File.Exists(path))
        {
            reason = "no checkpoint";
            return false;
        }

        try
        {
            if (Models.Inference.ModelFiles.Problem(path, MaxBytes) is { } problem)
            {
                reason = $"damaged: the checkpoint {problem}";
                return false;
            }

            var bytes = Models.Inference.ModelFiles.ReadAllBytes(path, MaxBytes);
            if (bytes.Length < 8)
            {
                reason = $"damaged: {bytes.Length} bytes";
                return false;
            }

            var magic = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes);
            var version = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4));
            if (magic != Magic || version is < 1 or > Version)
            {
                reason = magic == Magic ? $"checkpoint version {version}, this daemon reads 1 to {Version}" : "not a checkpoint file";
                return false;
            }

            var bodyLength = bytes.Length;
            if (version >= 4)
            {
                // Checked before anything in the body is believed: a flipped bit anywhere makes the file damaged.
                bodyLength -= HashBytes;
                if (bodyLength < 8 || !SHA256.HashData(bytes.AsSpan(0, bodyLength)).AsSpan().SequenceEqual(bytes.AsSpan(bodyLength)))
                {
                    reason = "damaged: its SHA-256 does not match its contents";
                    return false;
                }
            }

            using var reader = new BinaryReader(new MemoryStream(bytes, 8, bodyLength - 8, writable: false));

            var sha = reader.ReadString();
            if (!acceptedSha256.Contains(sha, StringComparer.OrdinalIgnoreCase))
            {
                reason = $"written for model sha256 {sha[..Math.Min(12, sha.Length)]}…, running {modelSha256[..Math.Min(12, modelSha256.Length)]}…"
                    + (acceptedSha256.Count > 1 ? " (not among its manifest's state_compatible_with)" : " (list the old one in the new manifest's state_compatible_with if its state carries over)");
                return false;
            }

            _ = reader.ReadString();
            var steps = reader.ReadInt64();
            var position = reader.ReadInt64();
            var lastTicks = version >= 2 ? reader.ReadInt64() : 0;
            double[]? runner = null;
            if (version >= 3)
            {
                var runnerLength = reader.ReadInt32();
                if (runnerLength < -1 || (long)runnerLength * sizeof(double) > reader.BaseStream.Length - reader.BaseStream.Position)
                {
                    reason = $"damaged: runner state of {runnerLength} values";
                    return false;
                }

                if (runnerLength >= 0)
                {
                    runner = new double[runnerLength];
                    for (var i = 0; i < runnerLength; i++)
                    {
                        runner[i] = reader.ReadDouble();
                    }
                }
            }

            var count = reader.ReadInt32();
            if (count < 0 || count > 1024)
            {
                reason = $"damaged: {count} state tensors";
                return false;
            }

            var read = new List<float[]>(count);
            for (var p = 0; p < count; p++)
            {
                var length = reader.ReadInt32();
                // Checked against what the file still holds before allocating: a corrupt length must not
                // ask a small board for hundreds of megabytes.
                if (length < 0 || (long)length * sizeof(float) > reader.BaseStream.Length - reader.BaseStream.Position)
                {
                    reason = $"damaged: state tensor {p} of {length} values";
                    return false;
                }

                var values = new float[length];
                for (var i = 0; i < length; i++)
                {
                    values[i] = reader.ReadSingle();
                }

                // Version 1 writers could leave zero-length placeholders (an unused context buffer): not state.
                if (length > 0 || version >= 2)
                {
                    read.Add(values);
                }
            }

            // The model's state pairs come first; a version 1 file may lack the extra buffers added since
            // (a trigger's condition), which then start at zero like a fresh stream's.
            var matches = read.Count == state.Count || (version == 1 && read.Count < state.Count);
            for (var p = 0; matches && p < read.Count; p++)
            {
                if (read[p].Length != state.Tensor(p).Length)
                {
                    reason = $"state tensor {p} has {read[p].Length} values, the model's has {state.Tensor(p).Length}";
                    return false;
                }
            }

            if (!matches)
            {
                reason = $"{read.Count} state tensors, the model has {state.Count}";
                return false;
            }

            var restored = read;
            // Only now that everything was read: a damaged file leaves the state untouched.
            for (var p = 0; p < restored.Count; p++)
            {
                restored[p].CopyTo(state.Tensor(p));
            }

            state.Steps = steps;
            sourceSamples = position;
            lastSampleTime = lastTicks > 0 ? new DateTimeOffset(lastTicks, TimeSpan.Zero) : null;
            writtenBy = sha;
            runnerState = runner;
            reason = string.Empty;
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or ArgumentException or OverflowException)
        {
            // Truncated (EndOfStream is an IOException), a corrupt length prefix (Format), bad text (Argument):
            // the stream starts fresh and the log says why, instead of the daemon failing to start.
            reason = $"damaged: {ex.Message}";
            return false;
        }
    }
}
