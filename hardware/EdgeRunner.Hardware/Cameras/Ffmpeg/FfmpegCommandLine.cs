using System.Globalization;
using System.Text.RegularExpressions;
using EdgeRunner.Hardware.Imaging;

namespace EdgeRunner.Hardware.Cameras.Ffmpeg;

/// <summary>Builds ffmpeg's argument list for an <see cref="FfmpegSourceOptions"/>; resolves credentials.</summary>
/// <remarks>
/// A URL with a password never goes on ffmpeg's command line, which every local user can read
/// (<c>ps</c>, <c>/proc/*/cmdline</c>). ffmpeg 5.1 (Debian 12) has no option to read a URL or credentials from
/// a file or the environment, but its concat demuxer reads an <c>ffconcat</c> script naming the input and
/// its options (<c>file</c> and <c>option</c> directives): the URL goes into such a script, written 0600 in a
/// private 0700 directory (<see cref="PrivateDirectoryRoot"/>), and ffmpeg's command line names only the script.
/// </remarks>
internal static partial class FfmpegCommandLine
{
    /// <summary>
    /// Protocols the concat demuxer may open for the scripted input: its own file, and what RTSP (TCP, UDP,
    /// TLS, RTP) and HTTP(S) need. Without it the file protocol's default ("file,crypto,data") refuses the URL.
    /// </summary>
    private const string ScriptedInputProtocols = "file,crypto,data,tcp,udp,tls,rtp,srtp,rtsp,rtsps,http,https,httpproxy";
    /// <summary>
    /// The input to hand ffmpeg (credentials from the file inserted), a redactor for everything it may print,
    /// and whether the input holds a password (then it must reach ffmpeg through <see cref="BuildInputScript"/>).
    /// </summary>
    public static (string Input, CredentialRedactor Redactor, bool HasPassword) ResolveInput(FfmpegSourceOptions options)
    {
        var hasPassword = false;
        var input = options.Input;
        var secrets = new List<string>();
        var isUrl = options.Kind is FfmpegInputKind.Rtsp or FfmpegInputKind.HttpMjpeg;
        if (isUrl && options.CredentialsFile is { Length: > 0 } file)
        {
            var (user, password) = ReadCredentials(file);
            var userInfo = $"{Uri.EscapeDataString(user)}:{Uri.EscapeDataString(password)}@";
            var match = UrlParts().Match(input);
            if (!match.Success)
            {
                throw new FrameSourceException($"{options.Kind} input is not a URL (scheme://host/...).");
            }

            input = match.Groups["scheme"].Value + userInfo + match.Groups["rest"].Value;
            secrets.Add(password);
            secrets.Add(Uri.EscapeDataString(password));
            hasPassword = true;
        }
        else if (isUrl && UrlParts().Match(input) is { Success: true } match && match.Groups["userinfo"].Success)
        {
            var userInfo = match.Groups["userinfo"].Value;
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                var password = userInfo[(colon + 1)..^1];
                secrets.Add(password);
                secrets.Add(Uri.UnescapeDataString(password));
                hasPassword = true;
            }
        }

        return (input, secrets.Count == 0 ? CredentialRedactor.None : new CredentialRedactor(secrets), hasPassword);
    }

    /// <summary>
    /// ffmpeg's arguments (without the executable), input already resolved. With <paramref name="inputScript"/>
    /// (the path of the script from <see cref="BuildInputScript"/>), the input and its protocol options are
    /// read from that script instead of the command line.
    /// </summary>
    public static List<string> Build(FfmpegSourceOptions options, string input, string? inputScript = null)
    {
        var args = new List<string> { "-hide_banner", "-nostdin", "-nostats", "-loglevel", options.FfmpegLogLevel };
        switch (options.Kind)
        {
            case FfmpegInputKind.File:
                if (options.RealTime)
                {
                    args.Add("-re");
                }

                if (options.Loop)
                {
                    args.AddRange(["-stream_loop", "-1"]);
                }

                break;

            case FfmpegInputKind.V4l2:
                args.AddRange(["-f", "v4l2"]);
                switch (options.V4l2InputFormat)
                {
                    case V4l2InputFormat.Mjpeg:
                        args.AddRange(["-input_format", "mjpeg"]);
                        break;
                    case V4l2InputFormat.Yuyv422:
                        args.AddRange(["-input_format", "yuyv422"]);
                        break;
                    case V4l2InputFormat.Auto:
                        break;
                }

                if (options.CaptureWidth is { } cw && options.CaptureHeight is { } ch)
                {
                    args.AddRange(["-video_size", string.Create(CultureInfo.InvariantCulture, $"{cw}x{ch}")]);
                }

                if (options.CaptureFps is { } captureFps)
                {
                    args.AddRange(["-framerate", Number(captureFps)]);
                }

                break;

            case FfmpegInputKind.Rtsp:
            case FfmpegInputKind.HttpMjpeg:
                // As Frigate does: regenerate missing timestamps, drop corrupt packets instead of decoding garbage,
                // and stamp packets with arrival time (camera clocks and RTCP are often wrong).
                args.AddRange(["-fflags", "+genpts+discardcorrupt", "-use_wallclock_as_timestamps", "1"]);
                break;
        }

        if (inputScript is null)
        {
            foreach (var (name, value) in ProtocolOptions(options))
            {
                args.AddRange(["-" + name, value]);
            }

            args.AddRange(options.ExtraInputArguments);
            args.AddRange(["-i", input]);
        }
        else
        {
            // The protocol options travel with the URL in the script; these apply to the concat demuxer.
            args.AddRange(options.ExtraInputArguments);
            args.AddRange(["-f", "concat", "-safe", "0", "-protocol_whitelist", ScriptedInputProtocols, "-i", inputScript]);
        }

        args.AddRange(["-map", "0:v:0", "-an", "-sn", "-dn"]);
        var fps = Number(options.Fps);
        args.AddRange(["-vf", string.Create(CultureInfo.InvariantCulture, $"fps={fps},scale={options.Width}:{options.Height}")]);
        args.AddRange(["-pix_fmt", PixelFormatName(options.PixelFormat), "-f", "rawvideo", "pipe:1"]);
        return args;
    }

    /// <summary>
    /// The ffconcat script that hands ffmpeg <paramref name="input"/> (a URL with credentials) and the
    /// kind's protocol options, so that neither appears on its command line.
    /// </summary>
    /// <exception cref="FrameSourceException">The URL holds a line break (it would end the script's directive).</exception>
    public static string BuildInputScript(FfmpegSourceOptions options, string input)
    {
        if (input.AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            throw new FrameSourceException($"The {options.Kind} URL holds a line break.");
        }

        var script = new System.Text.StringBuilder("ffconcat version 1.0\n");

        // Inside single quotes ffconcat takes everything literally; a quote itself is closed, escaped and reopened.
        script.Append("file '").Append(input.Replace("'", "'\\''", StringComparison.Ordinal)).Append("'\n");
        foreach (var (name, value) in ProtocolOptions(options))
        {
            script.Append("option ").Append(name).Append(' ').Append(value).Append('\n');
        }

        return script.ToString();
    }

    /// <summary>The network kinds' protocol options (name without the dash, value), the same on the command line or in a script.</summary>
    private static List<(string Name, string Value)> ProtocolOptions(FfmpegSourceOptions options)
    {
        var ioTimeoutMicroseconds = ((long)options.IoTimeout.TotalMicroseconds).ToString(CultureInfo.InvariantCulture);
        var result = new List<(string, string)>();
        switch (options.Kind)
        {
            case FfmpegInputKind.Rtsp:
                if (options.RtspOverTcp)
                {
                    result.Add(("rtsp_transport", "tcp"));
                }

                // ffmpeg >= 5: -timeout is the RTSP socket I/O timeout in microseconds (connect and read).
                result.Add(("timeout", ioTimeoutMicroseconds));
                break;

            case FfmpegInputKind.HttpMjpeg:
                result.Add(("rw_timeout", ioTimeoutMicroseconds));
                break;
        }

        return result;
    }

    /// <summary>
    /// Where private script directories are made: systemd's <c>$RUNTIME_DIRECTORY</c> (<c>RuntimeDirectory=</c>,
    /// first entry), else <c>$XDG_RUNTIME_DIR</c>, else the temporary folder (<c>$TMPDIR</c> or /tmp).
    /// </summary>
    public static string PrivateDirectoryRoot()
    {
        foreach (var variable in new[] { "RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR" })
        {
            var value = Environment.GetEnvironmentVariable(variable)?.Split(':', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            if (!string.IsNullOrEmpty(value) && Path.IsPathFullyQualified(value) && Directory.Exists(value))
            {
                return value;
            }
        }

        return Path.GetTempPath();
    }

    /// <summary>The command line as one string for logs (arguments with spaces quoted), already redacted.</summary>
    public static string Format(string executable, IEnumerable<string> args, CredentialRedactor redactor) =>
        redactor.Redact(string.Join(' ', args.Prepend(executable).Select(a => a.Contains(' ', StringComparison.Ordinal) || a.Length == 0 ? $"'{a}'" : a)));

    public static string PixelFormatName(FramePixelFormat format) => format switch
    {
        FramePixelFormat.Bgr24 => "bgr24",
        FramePixelFormat.Rgb24 => "rgb24",
        FramePixelFormat.Rgba32 => "rgba",
        FramePixelFormat.Bgra32 => "bgra",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown pixel format."),
    };

    private static string Number(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    private static (string User, string Password) ReadCredentials(string file)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The message names the file only; its content is never echoed.
            throw new FrameSourceException($"Cannot read the credentials file '{file}': {ex.Message}", ex);
        }

        var line = lines.Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0);
        var colon = line?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (line is null || colon <= 0)
        {
            throw new FrameSourceException($"The credentials file '{file}' must hold one line 'user:password'.");
        }

        return (line[..colon], line[(colon + 1)..]);
    }

    [GeneratedRegex(@"^(?<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?<userinfo>[^\s/?#]*@)?(?<rest>.*)$", RegexOptions.CultureInvariant | RegexOptions.Singleline)]
    private static partial Regex UrlParts();
}
