using System.Threading.Channels;
using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EdgeRunner.Service.Catalog;

/// <summary>
/// Reloads the models with <c>ReloadOnChange</c> when their file or manifest changes on disk: a
/// <see cref="FileSystemWatcher"/> per folder (inotify), or polling the files' size and time when the watcher cannot
/// be had (inotify limits, some network file systems) or reports an error. Changes are debounced: the reload runs
/// once the files have been quiet for <see cref="Debounce"/>, so a copy in progress is not loaded half-written (one
/// that still is fails its reload, and the old model keeps running until the next change).
/// </summary>
internal sealed partial class ModelFileWatcher : BackgroundService
{
    /// <summary>How long the files must be quiet before a reload.</summary>
    public static readonly TimeSpan Debounce = TimeSpan.FromSeconds(1);

    /// <summary>How often files are compared when polling.</summary>
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(2);

    private readonly ModelsOptions _models;
    private readonly ModelCatalog _catalog;
    private readonly IModelReloader _reloader;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Channel<string> _changed = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly List<FileSystemWatcher> _watchers = [];
    private long _reloadsTriggered;
    private readonly bool _pollOnly;
    private Task _poll = Task.CompletedTask;
    private CancellationToken _stopping;
    private Dictionary<string, string> _files = [];

    /// <param name="models">The <c>Models</c> section.</param>
    /// <param name="catalog">Where each model's file is (it follows reloads).</param>
    /// <param name="reloader">What a change calls.</param>
    /// <param name="timeProvider">The clock of the debounce and of polling.</param>
    /// <param name="logger">Where watching and changes are logged.</param>
    /// <param name="poll">Poll from the start instead of watching (tests of the fallback; the daemon watches).</param>
    public ModelFileWatcher(IOptions<ModelsOptions> models, ModelCatalog catalog, IModelReloader reloader, TimeProvider timeProvider, ILogger<ModelFileWatcher> logger, bool poll = false)
    {
        _pollOnly = poll;
        _models = models.Value;
        _catalog = catalog;
        _reloader = reloader;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>Reloads this watcher asked for (for tests and metrics).</summary>
    internal long ReloadsTriggered => Interlocked.Read(ref _reloadsTriggered);

    /// <summary>Whether the files are polled rather than watched (for tests).</summary>
    internal bool Polling { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var files = WatchedFiles();
        if (files.Count == 0)
        {
            return;
        }

        _stopping = stoppingToken;
        Volatile.Write(ref _files, files);
        if (_pollOnly || !TryWatch(files))
        {
            StartPolling();
        }

        try
        {
            await ReloadChangedAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }

        await Volatile.Read(ref _poll);
    }

    /// <summary>Full path → model name, for the files (model and manifest) of the models that reload on change, as loaded now.</summary>
    private Dictionary<string, string> WatchedFiles()
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, options) in _models)
        {
            if (!options.ReloadOnChange)
            {
                continue;
            }

            files[Path.GetFullPath(_catalog.Get(name).Path)] = name;
            if (!string.IsNullOrEmpty(options.Manifest))
            {
                files[Path.GetFullPath(options.Manifest)] = name;
            }
        }

        return files;
    }

    /// <summary>After a reload: a manifest that now names another model file has that file watched instead.</summary>
    private void FollowReloadedFiles()
    {
        var now = WatchedFiles();
        var before = Volatile.Read(ref _files);
        if (now.Count == before.Count && now.Keys.All(before.ContainsKey))
        {
            return;
        }

        Volatile.Write(ref _files, now);
        lock (_watchers)
        {
            if (Polling)
            {
                return;
            }

            StopWatching();
        }

        if (_pollOnly || !TryWatch(now))
        {
            StartPolling();
        }
    }

    private void StartPolling()
    {
        lock (_watchers)
        {
            if (!Polling)
            {
                Polling = true;
                Volatile.Write(ref _poll, PollAsync(_stopping));
            }
        }
    }

    public override void Dispose()
    {
        StopWatching();
        base.Dispose();
    }

    /// <summary>Watches every folder that holds a watched file; false (nothing watched) when a watcher cannot be started.</summary>
    private bool TryWatch(Dictionary<string, string> files)
    {
        try
        {
            foreach (var folder in files.Keys.Select(f => Path.GetDirectoryName(f)!).Distinct(StringComparer.Ordinal))
            {
                var watcher = new FileSystemWatcher(folder)
                {
                    NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                    IncludeSubdirectories = false,
                };
                void OnChange(string path)
                {
                    if (Volatile.Read(ref _files).TryGetValue(path, out var name))
                    {
                        _changed.Writer.TryWrite(name);
                    }
                }

                watcher.Changed += (_, e) => OnChange(e.FullPath);
                watcher.Created += (_, e) => OnChange(e.FullPath);
                // A file replaced by renaming a new one over it (how careful copies finish).
                watcher.Renamed += (_, e) => OnChange(e.FullPath);
                watcher.Error += (_, e) =>
                {
                    // Events may have been lost (an overflowing queue): from now on the files are compared instead.
                    LogWatchError(_logger, folder, e.GetException().Message, PollInterval);
                    StartPolling();
                };
                _watchers.Add(watcher);
                watcher.EnableRaisingEvents = true;
            }

            var watched = string.Join(", ", files.Values.Distinct(StringComparer.OrdinalIgnoreCase));
            LogWatching(_logger, files.Count, watched);
            return true;
        }
        catch (Exception ex) when (ex is IOException or ArgumentException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // E.g. "The configured user limit (128) on the number of inotify instances has been reached".
            StopWatching();
            LogPolling(_logger, ex.Message, PollInterval);
            return false;
        }
    }

    private void StopWatching()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }

        _watchers.Clear();
    }

    /// <summary>Compares each file's size and last write time every <see cref="PollInterval"/>.</summary>
    private async Task PollAsync(CancellationToken cancellationToken)
    {
        static (long, DateTime) Stamp(string path)
        {
            var info = new FileInfo(path);
            return info.Exists ? (info.Length, info.LastWriteTimeUtc) : (-1, default);
        }

        var last = Volatile.Read(ref _files).Keys.ToDictionary(f => f, Stamp, StringComparer.Ordinal);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(PollInterval, _timeProvider, cancellationToken);
                foreach (var (path, name) in Volatile.Read(ref _files))
                {
                    var now = Stamp(path);
                    if (!last.TryGetValue(path, out var before))
                    {
                        // A file a reload has just named: watched from now on.
                        last[path] = now;
                    }
                    else if (now != before)
                    {
                        last[path] = now;
                        _changed.Writer.TryWrite(name);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    /// <summary>Waits for a change, then for <see cref="Debounce"/> without one, then reloads every model that changed.</summary>
    private async Task ReloadChangedAsync(CancellationToken cancellationToken)
    {
        var changed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        while (true)
        {
            changed.Add(await _changed.Reader.ReadAsync(cancellationToken));
            while (true)
            {
                var quiet = Task.Delay(Debounce, _timeProvider, cancellationToken);
                var more = _changed.Reader.WaitToReadAsync(cancellationToken).AsTask();
                if (await Task.WhenAny(quiet, more) == quiet)
                {
                    await quiet;
                    break;
                }

                while (_changed.Reader.TryRead(out var name))
                {
                    changed.Add(name);
                }
            }

            foreach (var name in changed)
            {
                LogChanged(_logger, name);
                Interlocked.Increment(ref _reloadsTriggered);
                // The reloader logs and counts the outcome; a failed one leaves the old model running.
                await _reloader.ReloadAsync(name, cancellationToken);
            }

            changed.Clear();
            FollowReloadedFiles();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Watching {Files} model file(s) for changes (models {Models})")]
    private static partial void LogWatching(ILogger logger, int files, string models);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot watch the model files ({Reason}); polling them every {Interval} instead")]
    private static partial void LogPolling(ILogger logger, string reason, TimeSpan interval);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Watching model folder {Folder} reported an error: {Reason}; polling the model files every {Interval} from now on")]
    private static partial void LogWatchError(ILogger logger, string folder, string reason, TimeSpan interval);

    [LoggerMessage(Level = LogLevel.Information, Message = "Model {ModelId}: its file or manifest changed; reloading")]
    private static partial void LogChanged(ILogger logger, string modelId);
}
