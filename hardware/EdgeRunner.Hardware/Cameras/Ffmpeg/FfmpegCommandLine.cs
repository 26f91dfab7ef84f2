using System.Globalization;
using System.Text.RegularExpressions;
using EdgeRunner.Hardware.Imaging;

namespace EdgeRunner.Hardware.Cameras.Ffmpeg;

/// <summary>Builds ffmpeg's argument list for an <see cref="FfmpegSourceOptions"/>; resolves credentials.</summary>
internal static partial class FfmpegCommandLine
{
    /// <summary>The input to hand ffmpeg (credentials from the file inserted) and a redactor for everything it may print.</summary>
    public static (string Input, CredentialRedactor Redactor) ResolveInput(FfmpegSourceOptions options)
    {
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
            }
        }

        return (input, secrets.Count == 0 ? CredentialRedactor.None : new CredentialRedactor(secrets));
    }

    /// <summary>ffmpeg's arguments (without the executable), input already resolved.</summary>
    public static List<string> Build(FfmpegSourceOptions options, string input)
    {
        var args = new List<string> { "-hide_banner", "-nostdin", "-nostats", "-loglevel", options.FfmpegLogLevel };
        var ioTimeoutMicroseconds = ((long)options.IoTimeout.TotalMicroseconds).ToString(CultureInfo.InvariantCulture);
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
                // As Frigate does: regenerate missing timestamps, drop corrupt packets instead of decoding garbage,
                // and stamp packets with arrival time (camera clocks and RTCP are often wrong).
                args.AddRange(["-fflags", "+genpts+discardcorrupt", "-use_wallclock_as_timestamps", "1"]);
                if (options.RtspOverTcp)
                {
                    args.AddRange(["-rtsp_transport", "tcp"]);
                }

                // ffmpeg >= 5: -timeout is the RTSP socket I/O timeout in microseconds (connect and read).
                args.AddRange(["-timeout", ioTimeoutMicroseconds]);
                break;

            case FfmpegInputKind.HttpMjpeg:
                args.AddRange(["-fflags", "+genpts+discardcorrupt", "-use_wallclock_as_timestamps", "1"]);
                args.AddRange(["-rw_timeout", ioTimeoutMicroseconds]);
                break;
        }

        args.AddRange(options.ExtraInputArguments);
        args.AddRange(["-i", input]);
        args.AddRange(["-map", "0:v:0", "-an", "-sn", "-dn"]);
        var fps = Number(options.Fps);
        args.AddRange(["-vf", string.Create(CultureInfo.InvariantCulture, $"fps={fps},scale={options.Width}:{options.Height}")]);
        args.AddRange(["-pix_fmt", PixelFormatName(options.PixelFormat), "-f", "rawvideo", "pipe:1"]);
        return args;
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
