using BenchmarkDotNet.Attributes;
using EdgeRunner.Service.Publishing.Spool;
using Microsoft.Data.Sqlite;

namespace EdgeRunner.Benchmarks;

/// <summary>
/// The store-and-forward workload, one operation = 1,000 results of 500 bytes on 10 topics: append each,
/// take each back for sending, acknowledge each (its PUBACK). The segment log (<see cref="DiskSpool"/>) against
/// SQLite in WAL mode doing the same (insert; select in id order; delete by id), at the same durability:
/// "Interval" = written to the kernel per message, fsync about once a second (<c>FlushInterval</c> 1 s;
/// SQLite <c>synchronous=NORMAL</c>, which fsyncs the WAL at checkpoints only); "EveryMessage" = fsync per
/// message (<c>FlushInterval</c> 0; SQLite <c>synchronous=FULL</c>). The spool folder lives under the
/// benchmark's temporary folder on the same disk as the tests.
/// </summary>
[MemoryDiagnoser]
public class SpoolBenchmarks : IDisposable
{
    private const int Messages = 1000;
    private readonly byte[] _payload = new byte[500];
    private readonly string[] _topics = Enumerable.Range(0, 10).Select(i => $"edgerunner/bench/vision/cam{i}/result").ToArray();
    private string _folder = "";
    private DiskSpool? _spool;
    private SqliteConnection? _sqlite;
    private SqliteCommand? _insert;
    private SqliteCommand? _select;
    private SqliteCommand? _delete;

    [Params("Interval", "EveryMessage")]
    public string Durability { get; set; } = "Interval";

    [GlobalSetup]
    public void Setup()
    {
        Random.Shared.NextBytes(_payload);
        _folder = Directory.CreateTempSubdirectory("edgerunner-spool-bench-").FullName;
        _spool = DiskSpool.Open(
            new DiskSpoolSettings
            {
                Directory = Path.Combine(_folder, "log"),
                MaxBytes = 256L * 1024 * 1024,
                FlushInterval = Durability == "Interval" ? TimeSpan.FromSeconds(1) : TimeSpan.Zero,
            },
            TimeProvider.System);

        _sqlite = new SqliteConnection($"Data Source={Path.Combine(_folder, "spool.db")};Pooling=False");
        _sqlite.Open();
        Execute("PRAGMA journal_mode=WAL;");
        Execute(Durability == "Interval" ? "PRAGMA synchronous=NORMAL;" : "PRAGMA synchronous=FULL;");
        Execute("CREATE TABLE spool (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, qos INTEGER NOT NULL, enqueued INTEGER NOT NULL, payload BLOB NOT NULL);");
        _insert = _sqlite.CreateCommand();
        _insert.CommandText = "INSERT INTO spool (topic, qos, enqueued, payload) VALUES ($topic, 1, $enqueued, $payload);";
        _insert.Parameters.Add("$topic", SqliteType.Text);
        _insert.Parameters.Add("$enqueued", SqliteType.Integer);
        _insert.Parameters.Add("$payload", SqliteType.Blob);
        _insert.Prepare();
        _select = _sqlite.CreateCommand();
        _select.CommandText = "SELECT id, topic, payload FROM spool ORDER BY id LIMIT $limit;";
        _select.Parameters.AddWithValue("$limit", Messages);
        _select.Prepare();
        _delete = _sqlite.CreateCommand();
        _delete.CommandText = "DELETE FROM spool WHERE id = $id;";
        _delete.Parameters.Add("$id", SqliteType.Integer);
        _delete.Prepare();
    }

    [GlobalCleanup]
    public void Dispose()
    {
        GC.SuppressFinalize(this);
        _spool?.Dispose();
        _insert?.Dispose();
        _select?.Dispose();
        _delete?.Dispose();
        _sqlite?.Dispose();
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Benchmark(Baseline = true, Description = "segment log: 1,000 x (append, take, ack)")]
    public long SegmentLog()
    {
        var spool = _spool!;
        for (var i = 0; i < Messages; i++)
        {
            spool.Append(_topics[i % _topics.Length], _payload, 1, false);
        }

        long delivered = 0;
        while (spool.TryTake(out var message))
        {
            spool.Acknowledge(message.Id);
            delivered += message.PayloadLength;
            DiskSpool.Return(message);
        }

        spool.FlushIfDue();
        return delivered;
    }

    [Benchmark(Description = "SQLite WAL: 1,000 x (insert, select, delete)")]
    public long Sqlite()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < Messages; i++)
        {
            _insert!.Parameters[0].Value = _topics[i % _topics.Length];
            _insert.Parameters[1].Value = now;
            _insert.Parameters[2].Value = _payload;
            _insert.ExecuteNonQuery();
        }

        var ids = new List<long>(Messages);
        long delivered = 0;
        using (var reader = _select!.ExecuteReader())
        {
            while (reader.Read())
            {
                ids.Add(reader.GetInt64(0));
                _ = reader.GetString(1);
                delivered += ((byte[])reader.GetValue(2)).Length;
            }
        }

        foreach (var id in ids)
        {
            _delete!.Parameters[0].Value = id;
            _delete.ExecuteNonQuery();
        }

        return delivered;
    }

    private void Execute(string sql)
    {
        using var command = _sqlite!.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
