using EdgeRunner.Hardware.Cameras.Ffmpeg;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Vision.Sources;

/// <summary>
/// What the URL kinds (<c>Rtsp</c>, <c>HttpMjpeg</c>) share: the scheme check and the credentials file, which
/// keeps a password out of the configuration and off ffmpeg's command line.
/// </summary>
public abstract class NetworkCameraSourceOptions : FfmpegCameraSourceOptions
{
    /// <summary>File whose first line is "user:password" (e.g. a systemd credential), kept out of the config; re-read at every reconnect.</summary>
    public string CredentialsFile { get; set; } = string.Empty;

    /// <summary>The URL schemes accepted, lower case with "://".</summary>
    private protected abstract string[] Schemes { get; }

    private protected override string PathDescription => "URL";

    private protected override void ValidatePath(string key, ValidationErrors errors)
    {
        if (!Schemes.Any(s => Path.StartsWith(s, StringComparison.OrdinalIgnoreCase)))
        {
            errors.Add(key, $"must be an {string.Join(" or ", Schemes)} URL");
        }
    }

    private protected override void ValidateKind(string sourceKey, ValidationErrors errors)
    {
        if (!string.IsNullOrEmpty(CredentialsFile) && !File.Exists(CredentialsFile))
        {
            errors.Add($"{sourceKey}:CredentialsFile", $"file '{CredentialsFile}' does not exist");
        }
    }

    private protected override FfmpegSourceOptions Configure(FfmpegSourceOptions options) =>
        options with { CredentialsFile = string.IsNullOrEmpty(CredentialsFile) ? null : CredentialsFile };

    internal override void ResolvePaths() => CredentialsFile = PathResolver.Resolve(CredentialsFile);
}
