using System.Text;
using EdgeRunner.Service.Publishing.Spool;
using Microsoft.Extensions.Time.Testing;

namespace EdgeRunner.UnitTests.Publishing;

/// <summary>The store-and-forward spool on real files: order, acknowledgement, recovery, torn tails, limits, a refusing disk.</summary>
public sealed class DiskSpoolTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("edgerunner-spool-");
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero));

    public void Dispose()
    {
        _folder.Delete(recursive: true);
    }

    [Fact]
    public void Messages_come_out_in_order_with_topic_payload_qos_and_retain()
    {
        using var spool = Open();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(SpoolAppendOutcome.Spooled, spool.Append($"er/dev/vision/cam{i % 2}/result", Payload(i), qos: 1, retain: i == 3));
        }

        var taken = TakeAll(spool);
        Assert.Equal(["0", "1", "2", "3", "4"], taken.Select(m => m.Text));
        Assert.Equal(["er/dev/vision/cam0/result", "er/dev/vision/cam1/result"], taken.Take(2).Select(m => m.Topic));
        Assert.All(taken, m => Assert.Equal(1, m.Qos));
        Assert.Equal([false, false, false, true, false], taken.Select(m => m.Retain));
        Assert.Equal(taken.Select(m => m.Id).Order(), taken.Select(m => m.Id));
        Assert.Equal(5, spool.PendingCount);
    }

    [Fact]
    public void Acknowledged_messages_are_not_recovered_and_unacknowledged_ones_are_in_order()
    {
        using (var spool = Open())
        {
            for (var i = 0; i < 10; i++)
            {
                spool.Append("t/a", Payload(i), 1, false);
            }

            var taken = TakeAll(spool);
            // Acknowledged out of order, as pipelined PUBACKs may be: 0, 2, 1 and 5.
            foreach (var index in new[] { 0, 2, 1, 5 })
            {
                spool.Acknowledge(taken[index].Id);
            }

            Assert.Equal(6, spool.PendingCount);
        }

        using var reopened = Open();
        Assert.Equal(6, reopened.Recovered);
        Assert.Equal(["3", "4", "6", "7", "8", "9"], TakeAll(reopened).Select(m => m.Text));
    }

    [Fact]
    public void A_spool_not_disposed_loses_nothing_appended_as_after_kill_9()
    {
        // No Dispose: no flush, no acknowledgement batch written. What is on disk then (copied, as a killed
        // process leaves it) holds every append.
        var spool = Open();
        for (var i = 0; i < 3; i++)
        {
            spool.Append("t/a", Payload(i), 1, false);
        }

        var copy = Directory.CreateDirectory(Path.Combine(_folder.FullName, "after-kill")).FullName;
        foreach (var segment in Directory.GetFiles(_folder.FullName, "*.seg"))
        {
            File.Copy(segment, Path.Combine(copy, Path.GetFileName(segment)));
        }

        using var recovered = DiskSpool.Open(Settings() with { Directory = copy }, _time);
        Assert.Equal(["0", "1", "2"], TakeAll(recovered).Select(m => m.Text));
        spool.Dispose();
    }

    [Fact]
    public void A_second_spool_on_the_same_folder_is_refused_while_the_first_is_open()
    {
        using var first = Open();
        var refused = Assert.Throws<IOException>(() => Open());
        Assert.Contains("in use by another process", refused.Message, StringComparison.Ordinal);
        first.Dispose();
        using var afterwards = Open();
        Assert.Equal(SpoolAppendOutcome.Spooled, afterwards.Append("t/a", Payload(0), 1, false));
    }

    [Fact]
    public void A_torn_record_at_the_end_is_cut_off_and_every_whole_record_kept()
    {
        using (var spool = Open())
        {
            spool.Append("t/a", Payload(0), 1, false);
            spool.Append("t/a", Payload(1), 1, false);
        }

        var segment = Directory.GetFiles(_folder.FullName, "*.seg").Single();
        var whole = new FileInfo(segment).Length;
        // Half of a third record, as a power cut in the middle of a write leaves it.
        var third = new byte[SpoolRecordFormat.MessageRecordLength(3, 1)];
        SpoolRecordFormat.WriteMessage(third, 2, 0, 1, false, "t/a", "2"u8);
        using (var stream = new FileStream(segment, FileMode.Append))
        {
            stream.Write(third, 0, third.Length / 2);
        }

        using var reopened = Open();
        Assert.Equal(third.Length / 2, reopened.DiscardedBytes);
        Assert.Equal(whole, new FileInfo(segment).Length);
        Assert.Equal(["0", "1"], TakeAll(reopened).Select(m => m.Text));
        Assert.Equal(SpoolAppendOutcome.Spooled, reopened.Append("t/a", Payload(9), 1, false));
    }

    [Fact]
    public void A_damaged_byte_in_a_record_ends_what_is_trusted_in_that_segment()
    {
        using (var spool = Open())
        {
            spool.Append("t/a", Payload(0), 1, false);
            spool.Append("t/a", Payload(1), 1, false);
        }

        var segment = Directory.GetFiles(_folder.FullName, "*.seg").Single();
        var bytes = File.ReadAllBytes(segment);
        bytes[^1] ^= 0xFF; // the last payload byte of the second record
        File.WriteAllBytes(segment, bytes);

        using var reopened = Open();
        Assert.Equal(["0"], TakeAll(reopened).Select(m => m.Text));
        Assert.True(reopened.DiscardedBytes > 0);
    }

    [Fact]
    public void Rewind_sends_everything_in_flight_again_in_order()
    {
        using var spool = Open();
        for (var i = 0; i < 4; i++)
        {
            spool.Append("t/a", Payload(i), 1, false);
        }

        var first = TakeAll(spool);
        spool.Acknowledge(first[1].Id);
        spool.RewindInFlight();
        Assert.Equal(["0", "2", "3"], TakeAll(spool).Select(m => m.Text));
    }

    [Fact]
    public void Segments_are_deleted_once_delivered_and_the_folder_stays_small()
    {
        using var spool = Open(maxBytes: 256 * 1024); // 64 KiB segments
        var payload = new byte[1000];
        // 100 KB a round into 256 KiB: with 64 KiB segments partly delivered, room enough for no drop.
        for (var round = 0; round < 10; round++)
        {
            for (var i = 0; i < 100; i++)
            {
                Assert.Equal(SpoolAppendOutcome.Spooled, spool.Append("t/a", payload, 1, false));
            }

            foreach (var message in TakeAll(spool))
            {
                spool.Acknowledge(message.Id);
            }
        }

        Assert.Equal((0L, 0L, 0L), (spool.DroppedFull, spool.Expired, spool.DiscardedBytes));
        Assert.Equal(1000, spool.Acknowledged);
        Assert.Equal(0, spool.PendingCount);
        Assert.Equal(0, spool.DroppedFull);
        Assert.True(Directory.GetFiles(_folder.FullName, "*.seg").Length <= 2, "delivered segments deleted");
        Assert.True(spool.Bytes <= 64 * 1024, $"{spool.Bytes} bytes left after everything was delivered");
    }

    [Fact]
    public void A_full_spool_drops_the_oldest_segment_counted_and_keeps_the_newest()
    {
        using var spool = Open(maxBytes: 256 * 1024);
        var payload = new byte[1000];
        const int Appended = 600; // about 600 KB into 256 KiB
        for (var i = 0; i < Appended; i++)
        {
            BitConverter.TryWriteBytes(payload, i);
            Assert.Equal(SpoolAppendOutcome.Spooled, spool.Append("t/a", payload, 1, false));
        }

        Assert.True(spool.Bytes <= 256 * 1024);
        var left = TakeAll(spool);
        Assert.Equal(Appended, left.Count + spool.DroppedFull);
        Assert.True(spool.DroppedFull > 0);
        // What is left is the newest, without a gap.
        var numbers = left.Select(m => BitConverter.ToInt32(m.Bytes)).ToList();
        Assert.Equal(Enumerable.Range(Appended - left.Count, left.Count), numbers);
    }

    [Fact]
    public void A_full_spool_with_drop_newest_refuses_new_messages_and_keeps_the_old()
    {
        using var spool = DiskSpool.Open(Settings() with { MaxBytes = 256 * 1024, FullPolicy = SpoolFullPolicy.DropNewest }, _time);
        var payload = new byte[1000];
        var spooled = 0;
        var refused = 0;
        for (var i = 0; i < 600; i++)
        {
            BitConverter.TryWriteBytes(payload, i);
            switch (spool.Append("t/a", payload, 1, false))
            {
                case SpoolAppendOutcome.Spooled: spooled++; break;
                case SpoolAppendOutcome.DroppedNewest: refused++; break;
                default: Assert.Fail("unexpected outcome"); break;
            }
        }

        Assert.Equal(refused, spool.DroppedFull);
        Assert.True(refused > 0);
        Assert.Equal(Enumerable.Range(0, spooled), TakeAll(spool).Select(m => BitConverter.ToInt32(m.Bytes)));
    }

    [Fact]
    public void Messages_older_than_the_limit_expire_and_are_counted()
    {
        using var spool = DiskSpool.Open(Settings() with { MaxAge = TimeSpan.FromHours(1) }, _time);
        spool.Append("t/a", Payload(0), 1, false);
        _time.Advance(TimeSpan.FromMinutes(50));
        spool.Append("t/a", Payload(1), 1, false);
        _time.Advance(TimeSpan.FromMinutes(20));

        Assert.Equal(["1"], TakeAll(spool).Select(m => m.Text));
        Assert.Equal(1, spool.Expired);
    }

    [Fact]
    public void The_enqueue_time_survives_recovery()
    {
        var appendedAt = _time.GetUtcNow();
        using (var spool = Open())
        {
            spool.Append("t/a", Payload(0), 1, false);
        }

        _time.Advance(TimeSpan.FromMinutes(5));
        using var reopened = Open();
        Assert.Equal(appendedAt, TakeAll(reopened).Single().EnqueuedAt);
    }

    [Fact]
    public void A_disk_that_refuses_writes_makes_appends_unavailable_until_a_retry_in_a_fresh_segment_works()
    {
        // The segment being written is /dev/full: every write fails with ENOSPC, as on a full disk.
        File.CreateSymbolicLink(Path.Combine(_folder.FullName, "00000000000000000000.seg"), "/dev/full");
        using var spool = Open();
        Assert.True(spool.IsWritable);

        Assert.Equal(SpoolAppendOutcome.Unavailable, spool.Append("t/a", Payload(0), 1, false));
        Assert.False(spool.IsWritable);
        Assert.Equal(1, spool.WriteFailures);
        Assert.NotNull(spool.LastError);
        // Within the wait the disk is not tried again (a full disk is not hammered per message).
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(SpoolAppendOutcome.Unavailable, spool.Append("t/a", Payload(1), 1, false));
        Assert.Equal(1, spool.WriteFailures);

        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(SpoolAppendOutcome.Spooled, spool.Append("t/a", Payload(2), 1, false));
        Assert.True(spool.IsWritable);
        Assert.Null(spool.LastError);
        Assert.Equal(["2"], TakeAll(spool).Select(m => m.Text));
    }

    [Fact]
    public void Files_are_private_to_the_daemon_user()
    {
        var inner = Path.Combine(_folder.FullName, "spool");
        using var spool = DiskSpool.Open(Settings() with { Directory = inner }, _time);
        spool.Append("t/a", Payload(0), 1, false);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(inner));
    }

    [Fact]
    public void Ids_keep_increasing_across_reopen_even_when_everything_was_delivered()
    {
        long lastId;
        using (var spool = Open())
        {
            spool.Append("t/a", Payload(0), 1, false);
            var message = TakeAll(spool).Single();
            spool.Acknowledge(message.Id);
            lastId = message.Id;
        }

        using var reopened = Open();
        Assert.Equal(0, reopened.Recovered);
        reopened.Append("t/a", Payload(1), 1, false);
        Assert.True(TakeAll(reopened).Single().Id > lastId);
    }

    private static byte[] Payload(int i) => Encoding.UTF8.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static List<Taken> TakeAll(DiskSpool spool)
    {
        var taken = new List<Taken>();
        while (spool.TryTake(out var message))
        {
            taken.Add(new Taken(message.Id, message.Topic, message.Qos, message.Retain, message.EnqueuedAt, message.Payload.ToArray()));
            DiskSpool.Return(message);
        }

        return taken;
    }

    private DiskSpoolSettings Settings() => new() { Directory = _folder.FullName, MaxBytes = 1024 * 1024 };

    private DiskSpool Open(long maxBytes = 1024 * 1024) => DiskSpool.Open(Settings() with { MaxBytes = maxBytes }, _time);

    private sealed record Taken(long Id, string Topic, byte Qos, bool Retain, DateTimeOffset EnqueuedAt, byte[] Bytes)
    {
        public string Text => Encoding.UTF8.GetString(Bytes);
    }
}
