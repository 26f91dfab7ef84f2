using System.Text.RegularExpressions;

namespace EdgeRunner.Hardware.Cameras.Ffmpeg;

/// <summary>
/// Removes credentials from text meant for logs and errors: any <c>scheme://user:pass@</c> user-info
/// becomes <c>scheme://***@</c>, and known secrets (the password, raw and percent-encoded) become <c>***</c>.
/// </summary>
internal sealed partial class CredentialRedactor
{
    private readonly string[] _secrets;

    public CredentialRedactor(IEnumerable<string> secrets)
    {
        // Longest first so that an encoded form containing the raw one is replaced whole; short secrets would redact noise.
        _secrets = secrets.Where(s => s.Length >= 3).Distinct(StringComparer.Ordinal).OrderByDescending(s => s.Length).ToArray();
    }

    public static CredentialRedactor None { get; } = new([]);

    public string Redact(string text)
    {
        if (text.Contains('@', StringComparison.Ordinal))
        {
            text = UserInfo().Replace(text, "${scheme}***@");
        }

        foreach (var secret in _secrets)
        {
            text = text.Replace(secret, "***", StringComparison.Ordinal);
        }

        return text;
    }

    /// <summary>The user-info of a URL: after "scheme://", up to the last '@' before the host part ends.</summary>
    [GeneratedRegex(@"(?<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#]*@", RegexOptions.CultureInvariant)]
    private static partial Regex UserInfo();
}
