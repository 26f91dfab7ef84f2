using System.Text;
using EdgeRunner.Service.Configuration;

namespace EdgeRunner.Service.Mqtt;

/// <summary>
/// Where the broker password comes from: <c>Mqtt:Password</c>, the first line of <c>Mqtt:PasswordFile</c>, or the
/// systemd credential <c>Mqtt:PasswordCredential</c> (<c>$CREDENTIALS_DIRECTORY/{name}</c>). Read at every connect,
/// so a changed password is used on the next reconnect. Errors name the source, never the secret.
/// </summary>
public static class MqttSecrets
{
    /// <summary>The environment variable systemd sets to the service's credentials directory.</summary>
    public const string CredentialsDirectoryVariable = "CREDENTIALS_DIRECTORY";

    /// <summary>The file a credential name stands for; null while <c>$CREDENTIALS_DIRECTORY</c> is not set.</summary>
    public static string? CredentialPath(string name)
    {
        var directory = Environment.GetEnvironmentVariable(CredentialsDirectoryVariable);
        return string.IsNullOrEmpty(directory) ? null : Path.Combine(directory, name);
    }

    /// <summary>Reads the password; false with <paramref name="error"/> ("{key}: why", no secret in it) when its file cannot be read.</summary>
    public static bool TryReadPassword(MqttOptions options, out string password, out string error)
    {
        ArgumentNullException.ThrowIfNull(options);
        password = options.Password;
        error = string.Empty;
        string key;
        string? path;
        if (options.PasswordCredential.Length > 0)
        {
            key = "Mqtt:PasswordCredential";
            path = CredentialPath(options.PasswordCredential);
            if (path is null)
            {
                error = $"{key}: ${CredentialsDirectoryVariable} is not set (the daemon is not run by systemd with LoadCredential=)";
                return false;
            }
        }
        else if (options.PasswordFile.Length > 0)
        {
            key = "Mqtt:PasswordFile";
            path = options.PasswordFile;
        }
        else
        {
            return true;
        }

        try
        {
            using var reader = new StreamReader(path, Encoding.UTF8);
            password = reader.ReadLine() ?? string.Empty;
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The exception's message names the path, not the content.
            error = $"{key}: '{path}' cannot be read ({ex.GetType().Name}: {ex.Message})";
            password = string.Empty;
            return false;
        }
    }
}
