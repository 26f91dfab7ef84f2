using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using EdgeRunner.IntegrationTests.Infrastructure;
using EdgeRunner.Service.Mqtt;
using EdgeRunner.Service.Publishing.Spool;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeRunner.IntegrationTests;

/// <summary>
/// Store-and-forward through the daemon (a simulated machine on the bundled vibration LSTM, real mosquitto,
/// a subscriber with a persistent session like a cloud bridge): results of an outage, of a daemon killed
/// with SIGKILL during an outage, and of a disk that refuses writes all arrive, in order, judged by the
/// stream's own <c>seq</c> (one per step, from 0 at every start).
/// </summary>
public sealed class SpoolTests
{
    private const string ResultPath = "sensors/pump/result";

    [Fact]
    public async Task Results_of_a_broker_outage_arrive_complete_and_in_order_through_the_spool()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("spool", ct, persistentBroker: true);
        var probe = await scenario.ProbeAsync(ResultPath, ct, persistentClientId: "bridge-" + scenario.DeviceId);
        var host = await scenario.StartHostAsync(Sections(scenario), ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();
        var outbox = Assert.IsType<SpoolOutbox>(host.Services.GetRequiredService<IMqttOutbox>());
        await probe.WaitForAsync(m => Seq(m) >= 2, TimeSpan.FromSeconds(60), ct);

        await scenario.RestartBrokerAsync(ct, downFor: TimeSpan.FromSeconds(5));
        await probe.ReconnectAsync(TimeSpan.FromSeconds(10), ct);
        var lastBeforeOutage = probe.Seen.Max(Seq);
        await probe.WaitForAsync(m => Seq(m) >= lastBeforeOutage + 25, TimeSpan.FromSeconds(90), ct);
        await host.StopAsync(ct);

        var seqs = probe.Seen.Select(Seq).ToList();
        var distinct = seqs.Distinct().ToList();
        // Every step from the first to the last, in order; a duplicate (resent after a lost PUBACK) is allowed and reported.
        Assert.Equal(Enumerable.Range(0, distinct.Count).Select(i => (long)i), distinct);
        TestContext.Current.TestOutputHelper?.WriteLine($"{distinct.Count} results, {seqs.Count - distinct.Count} duplicates, {publisher.Connects} connections");
        Assert.True(publisher.Connects >= 2);
        Assert.Equal(0, publisher.Dropped);
        Assert.Equal(0, outbox.Spool.DroppedFull);
        Assert.True(outbox.Spool.Acknowledged >= distinct.Count, $"{outbox.Spool.Acknowledged} acknowledged in the spool");
    }

    [Fact]
    public async Task Results_spooled_before_a_kill_9_during_an_outage_arrive_after_both_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("spoolkill", ct, persistentBroker: true);
        var probe = await scenario.ProbeAsync(ResultPath, ct, persistentClientId: "bridge-" + scenario.DeviceId);
        var config = scenario.WriteConfig(Sections(scenario));
        var first = scenario.StartProcess(["--config", config]);
        await probe.WaitForAsync(m => Seq(m) >= 2, TimeSpan.FromSeconds(90), ct);

        // The broker goes down; while it is down the daemon keeps stepping into its spool, then dies by SIGKILL.
        var restart = scenario.RestartBrokerAsync(ct, downFor: TimeSpan.FromSeconds(8));
        await Task.Delay(TimeSpan.FromSeconds(5), ct);
        using (var process = Process.GetProcessById(first.Id))
        {
            process.Kill();
            await process.WaitForExitAsync(ct);
        }

        await restart;
        await probe.ReconnectAsync(TimeSpan.FromSeconds(10), ct);
        var lastBeforeOutage = probe.Seen.Max(Seq);
        var second = scenario.StartProcess(["--config", config]);
        // The first boot's backlog comes first; then the second boot starts again at 0.
        await probe.WaitForAsync(m => Seq(m) == 3 && probe.Seen.Count(x => Seq(x) == 3) >= 2, TimeSpan.FromSeconds(90), ct);
        var recoveredLine = await WaitForLogAsync(second, "undelivered results from before the start", ct);
        second.Terminate();
        await second.WaitForExitAsync(TimeSpan.FromSeconds(30), ct);

        var seqs = probe.Seen.Select(Seq).ToList();
        var restartIndex = Enumerable.Range(1, seqs.Count - 1).First(i => seqs[i] < seqs[i - 1] && seqs[i] == 0);
        var firstBoot = seqs.Take(restartIndex).Distinct().ToList();
        Assert.Equal(Enumerable.Range(0, firstBoot.Count).Select(i => (long)i), firstBoot);
        Assert.True(firstBoot[^1] > lastBeforeOutage, $"results of the outage delivered after the restart (last before: {lastBeforeOutage}, first boot up to {firstBoot[^1]})");
        // What the second start found in the spool is exactly what arrived of the first boot after the outage began
        // (give or take what was acknowledged but not yet recorded as such when the process died: resent, never lost).
        var recovered = long.Parse(recoveredLine.Split(" undelivered", 2)[0].Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(recovered >= firstBoot[^1] - lastBeforeOutage, $"{recovered} recovered, {firstBoot[^1] - lastBeforeOutage} first-boot results after the outage began: {recoveredLine}");
    }

    [Fact]
    public async Task A_spool_the_disk_refuses_keeps_results_in_memory_says_degraded_and_recovers_in_a_fresh_segment()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("spoolfull", ct);
        var sections = Sections(scenario);
        // The segment the spool will write is /dev/full: every write fails with ENOSPC, as on a full disk.
        var spoolFolder = Path.Combine(scenario.Folder, "state", MqttOutboxes.SpoolFolderName);
        Directory.CreateDirectory(spoolFolder);
        File.CreateSymbolicLink(Path.Combine(spoolFolder, "00000000000000000000.seg"), "/dev/full");
        var probe = await scenario.ProbeTopicAsync($"edgerunner/{scenario.DeviceId}/#", ct);
        var host = await scenario.StartHostAsync(sections, ct);
        var publisher = host.Services.GetRequiredService<MqttPublisher>();

        var status = scenario.Topic("status");
        await probe.WaitForAsync(m => m.Topic == status && m.Payload == "degraded", TimeSpan.FromSeconds(60), ct);
        var detail = JsonDocument.Parse(probe.Seen.Last(m => m.Topic == status + "/detail").Payload).RootElement;
        Assert.Contains("spool", detail.GetProperty("reason").GetString(), StringComparison.Ordinal);
        // The pipelines go on: results keep arriving through memory.
        var resultTopic = scenario.Topic(ResultPath);
        await probe.WaitForAsync(m => m.Topic == resultTopic && Seq(m) >= 5, TimeSpan.FromSeconds(60), ct);
        // After its retry wait the spool writes a fresh segment: online again, and nothing lost across the switches.
        var degradedAt = probe.Seen.ToList().FindIndex(m => m.Topic == status && m.Payload == "degraded");
        await SeenAsync(probe, seen => seen.Skip(degradedAt).Any(m => m.Topic == status && m.Payload == "online"), ct);
        var afterRecovery = probe.Seen.Where(m => m.Topic == resultTopic).Max(Seq);
        await probe.WaitForAsync(m => m.Topic == resultTopic && Seq(m) >= afterRecovery + 3, TimeSpan.FromSeconds(60), ct);
        await host.StopAsync(ct);
        var results = probe.Seen.Where(m => m.Topic == resultTopic).Select(Seq).Distinct().ToList();
        Assert.Equal(Enumerable.Range(0, results.Count).Select(i => (long)i), results);
        Assert.Null(publisher.DegradedReason);
        Assert.True(File.Exists(Path.Combine(spoolFolder, "00000000000000000001.seg")), "the spool went on in a fresh segment");
    }

    [Fact]
    public async Task Check_config_never_opens_or_creates_the_spool_of_the_daemon()
    {
        // check-config may run as root beside the running service: a spool folder it created would be root's.
        var ct = TestContext.Current.CancellationToken;
        await using var scenario = await DaemonScenario.StartAsync("spoolcheck", ct);
        var config = scenario.WriteConfig(Sections(scenario));
        var check = scenario.StartProcess(["check-config", "--config", config]);
        Assert.Equal(0, await check.WaitForExitAsync(TimeSpan.FromSeconds(120), ct));
        Assert.False(Directory.Exists(Path.Combine(scenario.Folder, "state", MqttOutboxes.SpoolFolderName)), check.Stdout);
    }

    private static JsonObject Sections(DaemonScenario scenario) => new()
    {
        ["Models"] = new JsonObject { ["m"] = new JsonObject { ["Manifest"] = BundledModels.ManifestPath("vibration-lstm") } },
        ["Sensors"] = new JsonObject { ["pump"] = new JsonObject { ["Model"] = "m", ["Source"] = new JsonObject { ["Kind"] = "SimulatedVibration" } } },
        ["State"] = new JsonObject { ["Directory"] = Path.Combine(scenario.Folder, "state") },
    };

    private static async Task SeenAsync(MqttProbe probe, Func<IReadOnlyList<ReceivedMessage>, bool> condition, CancellationToken ct)
    {
        for (var i = 0; i < 900 && !condition(probe.Seen); i++)
        {
            await Task.Delay(100, ct);
        }

        Assert.True(condition(probe.Seen), "not seen: " + string.Join(" | ", probe.Seen.TakeLast(20).Select(m => m.Topic + " " + m.Payload)));
    }

    private static long Seq(ReceivedMessage m) => JsonDocument.Parse(m.Payload).RootElement.GetProperty("seq").GetInt64();

    private static async Task<string> WaitForLogAsync(DaemonProcess daemon, string text, CancellationToken ct)
    {
        for (var i = 0; i < 600; i++)
        {
            var line = daemon.Stdout.Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (line is not null)
            {
                return line;
            }

            await Task.Delay(100, ct);
        }

        throw new TimeoutException($"no log line with '{text}':\n{daemon.Stdout}\n{daemon.Stderr}");
    }
}
