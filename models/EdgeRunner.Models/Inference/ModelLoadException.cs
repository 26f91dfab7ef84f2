namespace EdgeRunner.Models.Inference;

/// <summary>A model file cannot be used: missing, unreadable, not ONNX, or not what the configuration says it is. The message names the file and the reason.</summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelLoadException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public ModelLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ModelLoadException()
    {
    }
}
