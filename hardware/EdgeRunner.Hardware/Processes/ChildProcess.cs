using System.ComponentModel;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace EdgeRunner.Hardware.Processes;

/// <summary>
/// The last lines a child process (ffmpeg, arecord) wrote to stderr, kept for error messages: a
/// thread-safe ring buffer fed from <see cref="Process.ErrorDataReceived"/>, with the heap addresses
/// ffmpeg prints ("[tcp @ 0x55d0c0ffee00]") removed so that the same error reads the same every time.
/// </summary>
public sealed partial class StderrTail
{
    private readonly string[] _lines;
    private readonly Func<string, string>? _redact;
    private readonly Lock _lock = new();
    private int _next;
    private int _count;

    /// <summary>Keeps the last <paramref name="capacity"/> lines, each passed through <paramref name="redact"/> (e.g. to hide credentials) when given.</summary>
    public StderrTail(int capacity, Func<string, string>? redact = null)
    {
        _lines = new string[Math.Max(1, capacity)];
        _redact = redact;
    }

    /// <summary>Adds a raw stderr line; returns it cleaned, or null for a blank line (not kept).</summary>
    public string? Add(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw))
        {
            return null;
        }

        var line = AddressNoise().Replace(raw.Trim(), "]");
        if (_redact is not null)
        {
            line = _redact(line);
        }

        lock (_lock)
        {
            _lines[_next] = line;
            _next = (_next + 1) % _lines.Length;
            _count = Math.Min(_count + 1, _lines.Length);
        }

        return line;
    }

    /// <summary>The kept lines, oldest first.</summary>
    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lock)
            {
                var lines = new string[_count];
                var start = (_next - _count + _lines.Length) % _lines.Length;
                for (var i = 0; i < lines.Length; i++)
                {
                    lines[i] = _lines[(start + i) % _lines.Length];
                }

                return lines;
            }
        }
    }

    /// <summary>The " @ 0x55d0c0ffee00" in "[tcp @ 0x55d0c0ffee00]": a heap address, noise in a message.</summary>
    [GeneratedRegex(@" @ 0x[0-9a-fA-F]+\]", RegexOptions.CultureInvariant)]
    private static partial Regex AddressNoise();
}

/// <summary>Helpers for the child processes the capture sources run.</summary>
public static class ChildProcess
{
    /// <summary>Kills the process and everything it started; a process that has already exited (or is exiting) is fine.</summary>
    public static void KillTree(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
        catch (Win32Exception)
        {
            // Exiting right now.
        }
    }
}
