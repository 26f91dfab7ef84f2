using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace EdgeRunner.Models.Inference;

/// <summary>The execution provider a session was opened on, and why a preferred one was passed over.</summary>
/// <param name="ExecutionProvider">ONNX Runtime's name of the provider, e.g. "CPUExecutionProvider".</param>
/// <param name="FallbackReason">Why the first preference was not used; null when it was.</param>
public sealed record ProviderChoice(string ExecutionProvider, string? FallbackReason);

/// <summary>
/// Opens a model on the first execution provider, in the model's preference order (CPU last), that both
/// initialises and survives its warm-up run: a provider whose first run fails (a kernel it cannot build, GPU
/// memory it cannot get) is passed over exactly like one that fails to initialise, with the reason logged.
/// With <see cref="ModelSessionOptions.AllowFallback"/> false, either failure of the first preference is an error.
/// </summary>
public static partial class ProviderSelection
{
    /// <summary>
    /// Opens <paramref name="options"/>.Path and hands each session to <paramref name="startAndWarmUp"/>, which builds
    /// what runs it and runs it once. An <see cref="OnnxRuntimeException"/> from <paramref name="startAndWarmUp"/> is a
    /// failed warm-up on that provider; anything else propagates. The session belongs to the result once
    /// <paramref name="startAndWarmUp"/> returns; when it throws, the session is disposed here.
    /// </summary>
    /// <exception cref="ModelLoadException">The file cannot be loaded, no provider works, or fallback is disabled and the first choice failed.</exception>
    public static T Open<T>(ModelSessionOptions options, ILogger logger, Func<InferenceSession, ProviderChoice, T> startAndWarmUp) =>
        Open(options, logger, startAndWarmUp, ProviderHost.Real);

    /// <summary><see cref="Open{T}(ModelSessionOptions, ILogger, Func{InferenceSession, ProviderChoice, T})"/> with the provider seam given (tests stand in for providers absent here).</summary>
    internal static T Open<T>(ModelSessionOptions options, ILogger logger, Func<InferenceSession, ProviderChoice, T> startAndWarmUp, ProviderHost host)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(startAndWarmUp);
        var preferences = options.ExecutionProviders.Count == 0 ? ["cpu"] : options.ExecutionProviders;
        string? fallbackReason = null;
        foreach (var configName in preferences.Append("cpu").Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (!ExecutionProviders.Known.TryGetValue(configName, out var ortName))
            {
                throw new ModelLoadException($"Model '{options.Id}': unknown execution provider '{configName}'. Known: {string.Join(", ", ExecutionProviders.Known.Keys)}.");
            }

            var isLastResort = string.Equals(configName, "cpu", StringComparison.OrdinalIgnoreCase);
            string failure;
            if (!isLastResort && !host.IsAvailable(ortName))
            {
                failure = $"{ortName} is not in this ONNX Runtime build (available: {string.Join(", ", host.AvailableProviders)})";
            }
            else if (TryCreateSession(options, configName, ortName, isLastResort, host, out var initFailure) is not { } session)
            {
                failure = initFailure!;
            }
            else
            {
                try
                {
                    var result = startAndWarmUp(session, new ProviderChoice(ortName, fallbackReason));
                    if (fallbackReason is not null)
                    {
                        LogFallback(logger, options.Id, ortName, fallbackReason);
                    }

                    return result;
                }
                catch (OnnxRuntimeException ex) when (!isLastResort)
                {
                    session.Dispose();
                    failure = $"{ortName} initialised but its warm-up run failed: {ex.Message}";
                }
                catch (OnnxRuntimeException ex)
                {
                    session.Dispose();
                    throw new ModelLoadException($"Model '{options.Id}' ({options.Path}): warm-up inference failed: {ex.Message}", ex);
                }
                catch
                {
                    session.Dispose();
                    throw;
                }
            }

            if (!options.AllowFallback)
            {
                throw new ModelLoadException($"Model '{options.Id}' ({options.Path}): execution provider '{configName}' unavailable and fallback is disabled: {failure}.");
            }

            LogProviderUnavailable(logger, options.Id, configName, failure);
            fallbackReason ??= failure;
        }

        throw new ModelLoadException($"Model '{options.Id}': no execution provider could be used.");
    }

    private static InferenceSession? TryCreateSession(ModelSessionOptions options, string configName, string ortName, bool isLastResort, ProviderHost host, out string? failure)
    {
        failure = null;
        var keepAlive = new List<IDisposable>();
        OnnxRuntimeLog.EnsureEnvironment();
        var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        };
        try
        {
            if (options.AllowSpinning is { } spin)
            {
                // Spinning workers answer the next run sooner but burn a core between runs (docs/models.md "Spinning").
                var value = spin ? "1" : "0";
                sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", value);
                sessionOptions.AddSessionConfigEntry("session.inter_op.allow_spinning", value);
            }

            foreach (var append in ExecutionProviders.Plan(configName, options.ProviderSettings, options.DeviceId, options.IntraOpThreads, host.AvailableProviders))
            {
                host.Append(sessionOptions, append, keepAlive);
            }

            var session = new InferenceSession(options.Path, sessionOptions);

            // A load's burst of ONNX Runtime warnings (one per initializer, say) ends here: log their counts now.
            OnnxRuntimeLog.Flush();
            return session;
        }
        catch (OnnxRuntimeException ex) when (!isLastResort)
        {
            // ONNX Runtime says only "Failed to load shared library" here (the why goes to its stderr):
            // ask the dynamic loader ourselves, so the log names the missing library.
            failure = $"{ortName} failed to initialise: {ex.Message}{ExecutionProviders.ExplainLoadFailure(configName)}";
            return null;
        }
        catch (Exception ex) when (!isLastResort && ex is IOException or UnauthorizedAccessException)
        {
            failure = $"{ortName} failed to initialise: {ex.Message}";
            return null;
        }
        catch (OnnxRuntimeException ex)
        {
            throw new ModelLoadException($"Model '{options.Id}': cannot load '{options.Path}': {ex.Message}", ex);
        }
        finally
        {
            foreach (var item in keepAlive)
            {
                item.Dispose();
            }

            sessionOptions.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId}: execution provider {Requested} not used: {Reason}")]
    private static partial void LogProviderUnavailable(ILogger logger, string modelId, string requested, string? reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Model {ModelId} FELL BACK to {ExecutionProvider}: {Reason}")]
    private static partial void LogFallback(ILogger logger, string modelId, string executionProvider, string reason);
}

/// <summary>
/// What <see cref="ProviderSelection"/> asks of ONNX Runtime about providers: which are in the build, and making a
/// planned append call. <see cref="Real"/> is ONNX Runtime itself; tests give a stand-in for providers this build lacks.
/// </summary>
internal sealed class ProviderHost(IReadOnlyList<string> availableProviders, Action<SessionOptions, ProviderAppend, List<IDisposable>> append)
{
    /// <summary>The loaded ONNX Runtime library.</summary>
    public static ProviderHost Real { get; } = new(ExecutionProviders.Available, ExecutionProviders.Append);

    /// <summary>ONNX Runtime names of the providers in the build.</summary>
    public IReadOnlyList<string> AvailableProviders { get; } = availableProviders;

    /// <summary>Whether <paramref name="ortName"/> is in the build.</summary>
    public bool IsAvailable(string ortName) => AvailableProviders.Contains(ortName);

    /// <summary>Makes one planned append call; native option objects it creates go to the list, disposed after the session is created.</summary>
    public void Append(SessionOptions options, ProviderAppend call, List<IDisposable> keepAlive) => append(options, call, keepAlive);
}
