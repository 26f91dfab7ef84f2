namespace EdgeRunner.Service;

/// <summary>Startup cannot continue; carries the process exit code (sysexits.h) to use.</summary>
public sealed class StartupException : Exception
{
    /// <summary>EX_CONFIG: a configuration error (bad key, bad value, unusable model).</summary>
    public const int ConfigError = 78;

    /// <summary>EX_UNAVAILABLE: a required service (port, device) is unavailable.</summary>
    public const int ServiceUnavailable = 69;

    /// <summary>Creates the exception.</summary>
    public StartupException(string message, int exitCode, Exception? innerException = null)
        : base(message, innerException) => ExitCode = exitCode;

    /// <summary>Creates the exception.</summary>
    public StartupException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public StartupException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public StartupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Process exit code.</summary>
    public int ExitCode { get; } = ConfigError;
}
