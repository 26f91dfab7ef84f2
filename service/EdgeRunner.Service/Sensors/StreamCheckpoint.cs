using EdgeRunner.Models.Sequence;

namespace EdgeRunner.Service.Sensors;

/// <summary>
/// A stream's recurrent state on disk: the model's SHA-256 (state is only meaningful for the exact
/// model that produced it), the steps run, the source position, the time of the last sample the
/// state has seen, and each state tensor. Written to a temporary file and renamed over the old one,
/// so a crash mid-write never leaves a torn checkpoint; a damaged file is reported, never thrown.
/// </summary>
internal static class StreamCheckpoint
{
    private const int Magic = 0x4B435245; // "ERCK"

    // 2 added the last sample time, 3 the runner's own state (resampler grid, samples waiting for the
    // next chunk) so a resampled stream resumes exactly; older files are still read.
    private const int Version = 3;

    /// <summary>The checkpoint file of a stream; '%' and '/' are escaped (%25, %2F) since dynamic stream ids span topic levels.</summary>
    public static string PathFor(string directory, string streamId) =>
        System.IO.Path.Combine(directory, $"{streamId.Replace("%", "%25", StringComparison.Ordinal).Replace("/", "%2F", StringComparison.Ordinal)}.state");

    public static void Write(string path, string modelSha256, StreamState state, long sourceSamples, DateTimeOffset? lastSampleTime = null, IReadOnlyList<double>? runnerState = null)
    {
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new BinaryWriter(stream))
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
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
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
            using var reader = new BinaryReader(File.OpenRead(path));
            var magic = reader.ReadInt32();
            var version = reader.ReadInt32();
            if (magic != Magic || version is < 1 or > Version)
            {
                reason = magic == Magic ? $"checkpoint version {version}, this daemon reads 1 to {Version}" : "not a checkpoint file";
                return false;
            }

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
