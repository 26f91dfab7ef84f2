using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace EdgeRunner.Service.Publishing.Spool;

/// <summary>What <see cref="DiskSpool.Append"/> did with a message.</summary>
internal enum SpoolAppendOutcome
{
    /// <summary>Written to the segment file (in the kernel; on disk by the next flush).</summary>
    Spooled,

    /// <summary>The spool is full and keeps what it has (<see cref="SpoolFullPolicy.DropNewest"/>); counted.</summary>
    DroppedNewest,

    /// <summary>The message alone is larger than a segment may hold.</summary>
    TooLarge,

    /// <summary>The disk refused the write (full, read-only, gone), now or recently: the caller keeps the message elsewhere.</summary>
    Unavailable,

    /// <summary>The spool is disposed.</summary>
    Closed,
}

/// <summary>A spooled message handed out for delivery. Its payload lies in a pooled buffer: give it back with <see cref="DiskSpool.Return"/>.</summary>
internal readonly record struct SpooledMessage(long Id, string Topic, byte Qos, bool Retain, DateTimeOffset EnqueuedAt, byte[] Buffer, int PayloadOffset, int PayloadLength)
{
    /// <summary>The payload bytes.</summary>
    public ReadOnlyMemory<byte> Payload => Buffer.AsMemory(PayloadOffset, PayloadLength);

    /// <summary>When this process appended it (<see cref="TimeProvider.GetTimestamp"/>, for the publish timing); 0 for a message an earlier run appended.</summary>
    public long EnqueuedTimestamp { get; init; }
}

/// <summary>
/// A store-and-forward spool for outgoing messages: an append-only log of segment files in one folder.
/// A message is appended (one positional write, no user-space buffer, so a killed process loses nothing
/// that was appended) before it counts as produced, handed out in order by <see cref="TryTake"/> (any
/// number in flight: the sender pipelines them), and forgotten when <see cref="Acknowledge"/> names it
/// (after its PUBACK). Acknowledgements are records of the same log, written in batches: a crash can
/// resend a message already delivered (MQTT QoS 1 is at-least-once anyway), never lose one. A segment file
/// is deleted when every message in it, and every older one, is acknowledged. Reopening the folder
/// recovers every unacknowledged message in order; a torn record at the end of a segment (a crash or power
/// cut during a write) is cut off and counted.
/// Limits: <see cref="DiskSpoolSettings.MaxBytes"/> of segment files (when full, the oldest segment goes, or
/// new messages are refused), <see cref="DiskSpoolSettings.MaxAge"/> per message. A failed write (disk full,
/// read-only) is returned as <see cref="SpoolAppendOutcome.Unavailable"/> and the disk is tried again after
/// <see cref="DiskSpoolSettings.RetryAfterFailure"/>: the caller keeps the message in memory meanwhile, so a
/// bad disk never stalls the pipelines. Thread-safe; every operation is short and holds one lock.
/// </summary>
internal sealed class DiskSpool : IDisposable
{
    private const string SegmentExtension = ".seg";
    private const int AckBatchBytes = 4096;
    private const int MaxCachedTopics = 4096;

    private readonly Lock _lock = new();
    private readonly DiskSpoolSettings _settings;
    private readonly TimeProvider _timeProvider;
    private readonly List<Segment> _segments = [];
    private readonly PendingQueue _pending = new();
    private readonly byte[] _ackBuffer = new byte[AckBatchBytes];
    private readonly Dictionary<string, string> _topics = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _topicLookup;
    private int _ackBufferLength;
    private long _nextId;
    private long _bytes;
    private bool _dirty;
    private long _lastFlushTimestamp;
    private long? _retryAt;
    private bool _rollOnRetry;
    private bool _disposed;
    private SafeFileHandle? _folderLock;

    private DiskSpool(DiskSpoolSettings settings, TimeProvider timeProvider)
    {
        _settings = settings;
        _timeProvider = timeProvider;
        _topicLookup = _topics.GetAlternateLookup<ReadOnlySpan<char>>();
        _lastFlushTimestamp = timeProvider.GetTimestamp();
    }

    /// <summary>Messages appended since open.</summary>
    public long Appended { get; private set; }

    /// <summary>Messages acknowledged since open.</summary>
    public long Acknowledged { get; private set; }

    /// <summary>Messages lost because the spool was full (oldest segments dropped, or newest refused).</summary>
    public long DroppedFull { get; private set; }

    /// <summary>Messages not sent because they grew older than <see cref="DiskSpoolSettings.MaxAge"/>.</summary>
    public long Expired { get; private set; }

    /// <summary>Writes the disk refused (each one sends the caller to memory for a while).</summary>
    public long WriteFailures { get; private set; }

    /// <summary>Unacknowledged messages found when the spool was opened.</summary>
    public long Recovered { get; private set; }

    /// <summary>Bytes of torn or damaged records cut off when the spool was opened.</summary>
    public long DiscardedBytes { get; private set; }

    /// <summary>The last write error; null while writes succeed.</summary>
    public string? LastError { get; private set; }

    /// <summary>True while the disk takes writes (false between a failed write and the retry that works).</summary>
    public bool IsWritable
    {
        get
        {
            lock (_lock)
            {
                return _retryAt is null;
            }
        }
    }

    /// <summary>Messages spooled and not yet acknowledged (in flight included).</summary>
    public int PendingCount
    {
        get
        {
            lock (_lock)
            {
                return _pending.UnacknowledgedCount;
            }
        }
    }

    /// <summary>True when a message waits that is not handed out yet.</summary>
    public bool HasUntaken
    {
        get
        {
            lock (_lock)
            {
                return !_disposed && _pending.TryPeekUntaken(out _);
            }
        }
    }

    /// <summary>Bytes of segment files now.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>The folder of the segment files.</summary>
    public string Directory => _settings.Directory;

    /// <summary>
    /// Opens (or creates) the spool in <see cref="DiskSpoolSettings.Directory"/>, recovering every unacknowledged
    /// message in order. Throws <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when the
    /// folder cannot be used.
    /// </summary>
    public static DiskSpool Open(DiskSpoolSettings settings, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(timeProvider);
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.MaxBytes, 256 * 1024);
        PrivateDirectory.Ensure(settings.Directory);
        var spool = new DiskSpool(settings, timeProvider);
        try
        {
            // One writer per folder: a second daemon (another instance, a test) must not interleave its appends.
            // FileShare.None takes an exclusive advisory lock (flock) that the kernel drops when the process dies.
            try
            {
                spool._folderLock = File.OpenHandle(Path.Combine(settings.Directory, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException ex)
            {
                throw new IOException($"the spool folder {settings.Directory} is in use by another process ({ex.Message})", ex);
            }

            spool.Recover();
        }
        catch
        {
            spool.Dispose();
            throw;
        }

        return spool;
    }

    /// <summary>
    /// Appends a message. Returns <see cref="SpoolAppendOutcome.Spooled"/> once the write is in the kernel.
    /// Never blocks for long and never throws for the disk's sake.
    /// </summary>
    public SpoolAppendOutcome Append(string topic, ReadOnlySpan<byte> payload, byte qos, bool retain)
    {
        ArgumentNullException.ThrowIfNull(topic);
        var topicBytes = Encoding.UTF8.GetByteCount(topic);
        if (topicBytes > SpoolRecordFormat.MaxTopicBytes)
        {
            return SpoolAppendOutcome.TooLarge;
        }

        var length = SpoolRecordFormat.MessageRecordLength(topicBytes, payload.Length);
        if (length > _settings.SegmentBytes)
        {
            return SpoolAppendOutcome.TooLarge;
        }

        lock (_lock)
        {
            if (_disposed)
            {
                return SpoolAppendOutcome.Closed;
            }

            if (_retryAt is { } retryAt && _timeProvider.GetTimestamp() < retryAt)
            {
                return SpoolAppendOutcome.Unavailable;
            }

            if (_rollOnRetry)
            {
                // The segment that refused a write may hold a partial record and sits on a disk that failed:
                // continue in a fresh file (a failed roll keeps the spool unavailable until the next retry).
                _rollOnRetry = false;
                if (Roll() is null)
                {
                    return SpoolAppendOutcome.Unavailable;
                }
            }

            if (!MakeRoom(length + _ackBufferLength))
            {
                DroppedFull++;
                return SpoolAppendOutcome.DroppedNewest;
            }

            var active = ActiveSegmentFor(length + _ackBufferLength);
            if (active is null)
            {
                return SpoolAppendOutcome.Unavailable;
            }

            var total = _ackBufferLength + length;
            var buffer = ArrayPool<byte>.Shared.Rent(total);
            try
            {
                _ackBuffer.AsSpan(0, _ackBufferLength).CopyTo(buffer);
                var id = _nextId;
                var enqueuedMs = _timeProvider.GetUtcNow().ToUnixTimeMilliseconds();
                SpoolRecordFormat.WriteMessage(buffer.AsSpan(_ackBufferLength), id, enqueuedMs, qos, retain, topic, payload);
                if (!TryWrite(active, buffer.AsSpan(0, total)))
                {
                    return SpoolAppendOutcome.Unavailable;
                }

                var offset = active.Length + _ackBufferLength;
                active.Length += total;
                _bytes += total;
                _ackBufferLength = 0;
                _nextId = id + 1;
                active.Unacknowledged++;
                _pending.Add(new PendingMessage(id, active, offset, length, enqueuedMs, _timeProvider.GetTimestamp()));
                Appended++;
                _dirty = true;
                if (_settings.FlushInterval == TimeSpan.Zero)
                {
                    FlushLocked();
                }

                return SpoolAppendOutcome.Spooled;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// Hands out the oldest message not yet handed out (nor acknowledged), reading it back from its segment.
    /// Expired messages are skipped (acknowledged and counted). False when there is none.
    /// </summary>
    public bool TryTake(out SpooledMessage message)
    {
        lock (_lock)
        {
            message = default;
            if (_disposed)
            {
                return false;
            }

            while (_pending.TryPeekUntaken(out var index))
            {
                ref var entry = ref _pending[index];
                if (_settings.MaxAge > TimeSpan.Zero
                    && _timeProvider.GetUtcNow().ToUnixTimeMilliseconds() - entry.EnqueuedUnixMs > (long)_settings.MaxAge.TotalMilliseconds)
                {
                    Expired++;
                    AcknowledgeAt(index, countAsDelivered: false);
                    continue;
                }

                if (!TryRead(entry, out message))
                {
                    // Unreadable though written: the record is damaged under us. Skip it rather than retry forever.
                    DiscardedBytes += entry.Length;
                    AcknowledgeAt(index, countAsDelivered: false);
                    continue;
                }

                _pending.MarkTaken(index);
                return true;
            }

            return false;
        }
    }

    /// <summary>Gives back the buffer of a message from <see cref="TryTake"/> (once; the message is unusable after).</summary>
    public static void Return(in SpooledMessage message) => ArrayPool<byte>.Shared.Return(message.Buffer);

    /// <summary>Forgets a delivered message (after its PUBACK). Unknown ids (dropped meanwhile, acknowledged twice) are ignored.</summary>
    public void Acknowledge(long id)
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            var index = _pending.IndexOf(id);
            if (index >= 0)
            {
                AcknowledgeAt(index, countAsDelivered: true);
            }
        }
    }

    /// <summary>
    /// Puts every message handed out and not acknowledged back in line, oldest first (the connection was lost:
    /// they are sent again, in order).
    /// </summary>
    public void RewindInFlight()
    {
        lock (_lock)
        {
            _pending.RewindTaken();
        }
    }

    /// <summary>
    /// Fsyncs the segment being written when something was appended since the last flush and the interval has
    /// passed. The fsync runs outside the lock (it can take long on an SD card): appends go on meanwhile.
    /// </summary>
    public void FlushIfDue()
    {
        SafeFileHandle handle;
        lock (_lock)
        {
            if (_disposed || _segments.Count == 0 || (!_dirty && _ackBufferLength == 0) || _timeProvider.GetElapsedTime(_lastFlushTimestamp) < _settings.FlushInterval)
            {
                return;
            }

            WriteAcknowledgements();
            handle = _segments[^1].Handle;
            _dirty = false;
            _lastFlushTimestamp = _timeProvider.GetTimestamp();
        }

        var added = false;
        try
        {
            // Keeps the handle open even if the segment is deleted or the spool disposed meanwhile.
            handle.DangerousAddRef(ref added);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            lock (_lock)
            {
                _dirty = true;
                LastError = ex.Message;
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            WriteAcknowledgements();
            FlushLocked();
            _disposed = true;
            foreach (var segment in _segments)
            {
                segment.Handle.Dispose();
            }

            _segments.Clear();
            _folderLock?.Dispose();
        }
    }

    private void AcknowledgeAt(int index, bool countAsDelivered)
    {
        if (!_pending.MarkAcknowledged(index))
        {
            return;
        }

        ref var entry = ref _pending[index];
        if (countAsDelivered)
        {
            Acknowledged++;
        }

        if (_ackBufferLength + SpoolRecordFormat.HeaderLength + SpoolRecordFormat.AcknowledgementBodyLength > _ackBuffer.Length)
        {
            WriteAcknowledgements();
        }

        _ackBufferLength += SpoolRecordFormat.WriteAcknowledgement(_ackBuffer.AsSpan(_ackBufferLength), entry.Id);
        _pending.TrimAcknowledged();
        DeleteDeliveredSegments();
    }

    private void WriteAcknowledgements()
    {
        if (_ackBufferLength == 0 || _segments.Count == 0 || _retryAt is not null)
        {
            return;
        }

        var active = _segments[^1];
        if (TryWrite(active, _ackBuffer.AsSpan(0, _ackBufferLength)))
        {
            active.Length += _ackBufferLength;
            _bytes += _ackBufferLength;
            _ackBufferLength = 0;
            _dirty = true;
        }
    }

    // Room for `length` more bytes: drops the oldest segments (DropOldest) or says no (DropNewest).
    private bool MakeRoom(long length)
    {
        while (_bytes + length > _settings.MaxBytes)
        {
            if (_settings.FullPolicy == SpoolFullPolicy.DropNewest)
            {
                return false;
            }

            if (_segments.Count == 1)
            {
                // Only the segment being written is left: start a new one so the old can go.
                if (Roll() is null)
                {
                    return true; // the write fails next and says why
                }
            }

            var oldest = _segments[0];
            DroppedFull += _pending.RemoveSegment(oldest);
            DeleteSegment(oldest);
        }

        return true;
    }

    private Segment? ActiveSegmentFor(long length)
    {
        if (_segments.Count > 0 && _segments[^1].Length + length <= _settings.SegmentBytes)
        {
            return _segments[^1];
        }

        return Roll();
    }

    // Starts a new segment after fsyncing the current one (a closed segment is never half on disk).
    private Segment? Roll()
    {
        if (_segments.Count > 0)
        {
            FlushLocked();
        }

        // Named by the first id it will hold, so names sort as the log runs; a segment that held no message
        // (one the disk refused) keeps its name, so the next one starts one id later.
        if (_segments.Count > 0 && _segments[^1].FirstId >= _nextId)
        {
            _nextId = _segments[^1].FirstId + 1;
        }

        var path = Path.Combine(_settings.Directory, _nextId.ToString("D20", CultureInfo.InvariantCulture) + SegmentExtension);
        try
        {
            var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite, FileOptions.None, 0);
            var segment = new Segment(path, handle, _nextId);
            _segments.Add(segment);
            // The segment just closed may hold only delivered messages: it goes now, not at the next acknowledgement.
            DeleteDeliveredSegments();
            return segment;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Fail(ex);
            return null;
        }
    }

    private bool TryWrite(Segment segment, ReadOnlySpan<byte> bytes)
    {
        try
        {
            RandomAccess.Write(segment.Handle, bytes, segment.Length);
            if (_retryAt is not null)
            {
                _retryAt = null;
                LastError = null;
            }

            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A partial write leaves bytes after Length: the next write at Length overwrites them, and recovery
            // cuts them off by their CRC if none comes.
            Fail(ex);
            return false;
        }
    }

    private void Fail(Exception ex)
    {
        WriteFailures++;
        LastError = ex.Message;
        _rollOnRetry = true;
        _retryAt = _timeProvider.GetTimestamp() + (long)(_settings.RetryAfterFailure.TotalSeconds * _timeProvider.TimestampFrequency);
    }

    private void FlushLocked()
    {
        if (_segments.Count == 0)
        {
            return;
        }

        try
        {
            RandomAccess.FlushToDisk(_segments[^1].Handle);
            _dirty = false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Fail(ex);
        }

        _lastFlushTimestamp = _timeProvider.GetTimestamp();
    }

    // Oldest first: a segment goes when it and every older one hold no unacknowledged message. Acknowledgements
    // are written after the message they name, so they are never deleted before it.
    private void DeleteDeliveredSegments()
    {
        while (_segments.Count > 1 && _segments[0].Unacknowledged == 0)
        {
            DeleteSegment(_segments[0]);
        }
    }

    private void DeleteSegment(Segment segment)
    {
        _segments.Remove(segment);
        _bytes -= segment.Length;
        segment.Handle.Dispose();
        try
        {
            File.Delete(segment.Path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Fail(ex);
        }
    }

    private bool TryRead(in PendingMessage entry, out SpooledMessage message)
    {
        message = default;
        var buffer = ArrayPool<byte>.Shared.Rent(entry.Length);
        try
        {
            var read = RandomAccess.Read(entry.Segment.Handle, buffer.AsSpan(0, entry.Length), entry.Offset);
            if (read != entry.Length
                || !SpoolRecordFormat.TryReadHeader(buffer, out var bodyLength, out var crc)
                || bodyLength != entry.Length - SpoolRecordFormat.HeaderLength
                || !SpoolRecordFormat.BodyIsIntact(buffer.AsSpan(SpoolRecordFormat.HeaderLength, bodyLength), crc))
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return false;
            }

            var body = buffer.AsSpan(SpoolRecordFormat.HeaderLength, bodyLength);
            var qos = body[17];
            var retain = body[18] != 0;
            var topicLength = BinaryPrimitives.ReadUInt16LittleEndian(body[19..]);
            var topic = TopicOf(body.Slice(SpoolRecordFormat.MessageFixedLength, topicLength));
            var payloadOffset = SpoolRecordFormat.HeaderLength + SpoolRecordFormat.MessageFixedLength + topicLength;
            message = new SpooledMessage(entry.Id, topic, qos, retain, DateTimeOffset.FromUnixTimeMilliseconds(entry.EnqueuedUnixMs), buffer, payloadOffset, entry.Length - payloadOffset)
            {
                EnqueuedTimestamp = entry.EnqueuedTimestamp,
            };
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            LastError = ex.Message;
            return false;
        }
    }

    // Topics repeat (one per camera or stream and kind): decode into a stack buffer and reuse the string.
    private string TopicOf(ReadOnlySpan<byte> utf8)
    {
        var charCount = Encoding.UTF8.GetCharCount(utf8);
        if (charCount > 512)
        {
            return Encoding.UTF8.GetString(utf8);
        }

        Span<char> chars = stackalloc char[charCount];
        Encoding.UTF8.GetChars(utf8, chars);
        if (_topicLookup.TryGetValue(chars, out var known))
        {
            return known;
        }

        if (_topics.Count >= MaxCachedTopics)
        {
            _topics.Clear();
        }

        var topic = new string(chars);
        _topics[topic] = topic;
        return topic;
    }

    private void Recover()
    {
        var files = System.IO.Directory.GetFiles(_settings.Directory, "*" + SegmentExtension);
        Array.Sort(files, StringComparer.Ordinal);
        var acknowledged = new HashSet<long>();
        foreach (var path in files)
        {
            var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, FileOptions.None, 0);
            var name = Path.GetFileNameWithoutExtension(path);
            var firstId = long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : 0;
            var segment = new Segment(path, handle, firstId);
            _segments.Add(segment);
            _nextId = Math.Max(_nextId, firstId);
            ScanSegment(segment, acknowledged);
            _bytes += segment.Length;
        }

        foreach (var id in acknowledged)
        {
            var index = _pending.IndexOf(id);
            if (index >= 0)
            {
                _pending.MarkAcknowledged(index);
            }
        }

        _pending.TrimAcknowledged();
        DeleteDeliveredSegments();
        Recovered = _pending.UnacknowledgedCount;
        if (_segments.Count == 0)
        {
            Roll();
        }
    }

    private void ScanSegment(Segment segment, HashSet<long> acknowledged)
    {
        var fileLength = RandomAccess.GetLength(segment.Handle);
        var contents = new byte[fileLength];
        var read = 0;
        while (read < contents.Length)
        {
            var n = RandomAccess.Read(segment.Handle, contents.AsSpan(read), read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        long offset = 0;
        while (offset + SpoolRecordFormat.HeaderLength <= read)
        {
            var header = contents.AsSpan((int)offset, SpoolRecordFormat.HeaderLength);
            if (!SpoolRecordFormat.TryReadHeader(header, out var bodyLength, out var crc)
                || offset + SpoolRecordFormat.HeaderLength + bodyLength > read)
            {
                break;
            }

            var body = contents.AsSpan((int)offset + SpoolRecordFormat.HeaderLength, bodyLength);
            if (!SpoolRecordFormat.BodyIsIntact(body, crc))
            {
                break;
            }

            var id = BinaryPrimitives.ReadInt64LittleEndian(body[1..]);
            var recordLength = SpoolRecordFormat.HeaderLength + bodyLength;
            if (body[0] == (byte)SpoolRecordKind.Message && bodyLength >= SpoolRecordFormat.MessageFixedLength)
            {
                var enqueuedMs = BinaryPrimitives.ReadInt64LittleEndian(body[9..]);
                _pending.Add(new PendingMessage(id, segment, offset, recordLength, enqueuedMs));
                segment.Unacknowledged++;
            }
            else if (body[0] == (byte)SpoolRecordKind.Acknowledgement)
            {
                acknowledged.Add(id);
            }

            _nextId = Math.Max(_nextId, id + 1);
            offset += recordLength;
        }

        if (offset < fileLength)
        {
            // A torn write at the end (crash or power cut mid-append), or damage: keep every whole record before it.
            DiscardedBytes += fileLength - offset;
            RandomAccess.SetLength(segment.Handle, offset);
        }

        segment.Length = offset;
    }

    /// <summary>One segment file: messages with ids from <see cref="FirstId"/> on, and acknowledgements.</summary>
    private sealed class Segment(string path, SafeFileHandle handle, long firstId)
    {
        public string Path { get; } = path;

        public SafeFileHandle Handle { get; } = handle;

        public long FirstId { get; } = firstId;

        /// <summary>Bytes written (the next write goes here).</summary>
        public long Length { get; set; }

        /// <summary>Messages in this segment not acknowledged yet.</summary>
        public int Unacknowledged { get; set; }
    }

    /// <summary>Where a pending message lies, and whether it is in flight or delivered.</summary>
    private struct PendingMessage(long id, Segment segment, long offset, int length, long enqueuedUnixMs, long enqueuedTimestamp = 0)
    {
        public readonly long Id = id;
        public readonly Segment Segment = segment;
        public readonly long Offset = offset;
        public readonly int Length = length;
        public readonly long EnqueuedUnixMs = enqueuedUnixMs;
        // Monotonic, and only for what this process appended (0 for a recovered record): what the publish timing measures from.
        public readonly long EnqueuedTimestamp = enqueuedTimestamp;
        public bool Taken;
        public bool Acknowledged;
    }

    /// <summary>
    /// Pending messages in id order, in a ring buffer: acknowledged ones leave from the head; the next to hand
    /// out is found from a cursor that only moves forward (or back to the head on rewind).
    /// </summary>
    private sealed class PendingQueue
    {
        private PendingMessage[] _items = new PendingMessage[256];
        private int _head;
        private int _count;
        private int _cursor; // offset from head of the first entry that may be untaken

        public int UnacknowledgedCount { get; private set; }

        public ref PendingMessage this[int index] => ref _items[(_head + index) % _items.Length];

        public void Add(in PendingMessage message)
        {
            if (_count == _items.Length)
            {
                var larger = new PendingMessage[_items.Length * 2];
                for (var i = 0; i < _count; i++)
                {
                    larger[i] = this[i];
                }

                _items = larger;
                _head = 0;
            }

            _items[(_head + _count) % _items.Length] = message;
            _count++;
            UnacknowledgedCount++;
        }

        public bool TryPeekUntaken(out int index)
        {
            while (_cursor < _count)
            {
                ref var entry = ref this[_cursor];
                if (!entry.Taken && !entry.Acknowledged)
                {
                    index = _cursor;
                    return true;
                }

                _cursor++;
            }

            index = -1;
            return false;
        }

        public void MarkTaken(int index)
        {
            this[index].Taken = true;
            if (index == _cursor)
            {
                _cursor++;
            }
        }

        public void RewindTaken()
        {
            for (var i = 0; i < _count; i++)
            {
                this[i].Taken = false;
            }

            _cursor = 0;
        }

        // Ids increase along the queue: binary search.
        public int IndexOf(long id)
        {
            int low = 0, high = _count - 1;
            while (low <= high)
            {
                var mid = (low + high) >>> 1;
                var midId = this[mid].Id;
                if (midId == id)
                {
                    return mid;
                }

                if (midId < id)
                {
                    low = mid + 1;
                }
                else
                {
                    high = mid - 1;
                }
            }

            return -1;
        }

        // False when it was acknowledged already.
        public bool MarkAcknowledged(int index)
        {
            ref var entry = ref this[index];
            if (entry.Acknowledged)
            {
                return false;
            }

            entry.Acknowledged = true;
            entry.Segment.Unacknowledged--;
            UnacknowledgedCount--;
            return true;
        }

        public void TrimAcknowledged()
        {
            while (_count > 0 && this[0].Acknowledged)
            {
                RemoveHead();
            }
        }

        // Removes the messages of the oldest segment (they lead the queue); returns how many were unacknowledged.
        public int RemoveSegment(Segment segment)
        {
            var lost = 0;
            while (_count > 0 && ReferenceEquals(this[0].Segment, segment))
            {
                if (!this[0].Acknowledged)
                {
                    lost++;
                    UnacknowledgedCount--;
                }

                RemoveHead();
            }

            return lost;
        }

        private void RemoveHead()
        {
            this[0] = default;
            _head = (_head + 1) % _items.Length;
            _count--;
            _cursor = Math.Max(0, _cursor - 1);
        }
    }
}
