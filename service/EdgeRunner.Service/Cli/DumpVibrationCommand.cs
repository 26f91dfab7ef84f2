using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeRunner.Hardware.Sensors.Simulation;

namespace EdgeRunner.Service.Cli;

/// <summary>
/// <c>edgerunner dump vibration</c>: writes simulated 3-axis accelerometer streams (one machine
/// each) as CSV files <c>stream_NN.csv</c> (<c>t,ax,ay,az,state</c>; t in seconds, acceleration
/// in g, state = <see cref="MachineState"/> class id) plus a <c>meta.json</c> with the sample rate,
/// each stream's seed and the class names. Stream k uses seed <c>--seed + k</c>.
/// </summary>
internal static class DumpVibrationCommand
{
    private static readonly string[] ClassNames = ["normal", "imbalance", "bearing_wear", "looseness"];
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder (created).", Required = true };
        var seconds = new Option<double>("--seconds") { Description = "Seconds of signal per stream.", DefaultValueFactory = _ => 600 };
        var streams = new Option<int>("--streams") { Description = "Number of streams (machines); stream k uses seed --seed + k.", DefaultValueFactory = _ => 4 };
        var seed = new Option<int>("--seed") { Description = "Seed of the first stream.", DefaultValueFactory = _ => 1 };
        var rate = new Option<double>("--sample-rate") { Description = "Samples per second per axis.", DefaultValueFactory = _ => 200 };
        var command = new Command("vibration", "Simulated 3-axis vibration streams (CSV, g) with the true machine state of every sample.")
        {
            output, seconds, streams, seed, rate,
        };
        command.SetAction(parse => Run(
            parse.GetValue(output)!.FullName,
            parse.GetValue(seconds),
            parse.GetValue(streams),
            parse.GetValue(seed),
            parse.GetValue(rate)));
        return command;
    }

    private static int Run(string outputDirectory, double seconds, int streams, int seed, double sampleRate)
    {
        if (!(seconds > 0) || streams < 1 || streams > 1000 || !(sampleRate >= 20))
        {
            Console.Error.WriteLine("edgerunner dump vibration: --seconds must be > 0, --streams 1..1000, --sample-rate >= 20");
            return StartupException.ConfigError;
        }

        Directory.CreateDirectory(outputDirectory);
        var samples = (long)Math.Round(seconds * sampleRate);
        const int Block = 1000;
        var x = new float[Block];
        var y = new float[Block];
        var z = new float[Block];
        var truth = new MachineState[Block];
        var streamInfo = new List<object>(streams);
        var line = new StringBuilder(64);
        for (var k = 0; k < streams; k++)
        {
            var streamSeed = seed + k;
            var simulator = new VibrationSimulator(streamSeed, sampleRate);
            var name = $"stream_{k:D2}.csv";
            var counts = new long[ClassNames.Length];
            using (var writer = new StreamWriter(Path.Combine(outputDirectory, name), append: false, new UTF8Encoding(false), 1 << 16))
            {
                writer.NewLine = "\n";
                writer.WriteLine("t,ax,ay,az,state");
                for (long done = 0; done < samples; done += Block)
                {
                    var n = (int)Math.Min(Block, samples - done);
                    simulator.Read(x.AsSpan(0, n), y.AsSpan(0, n), z.AsSpan(0, n), truth.AsSpan(0, n));
                    for (var i = 0; i < n; i++)
                    {
                        line.Clear();
                        line.Append(CultureInfo.InvariantCulture, $"{(done + i) / sampleRate:0.#####},{x[i]:0.######},{y[i]:0.######},{z[i]:0.######},{(int)truth[i]}");
                        writer.WriteLine(line);
                        counts[(int)truth[i]]++;
                    }
                }
            }

            streamInfo.Add(new
            {
                file = name,
                seed = streamSeed,
                samples,
                shaft_speed_hz = Math.Round(simulator.ShaftSpeedHz, 4),
                bearing_defect_order = Math.Round(simulator.BearingDefectOrder, 4),
                resonance_hz = Math.Round(simulator.ResonanceHz, 3),
                samples_per_class = counts,
            });
        }

        var meta = new
        {
            sample_rate_hz = sampleRate,
            seconds,
            samples_per_stream = samples,
            first_seed = seed,
            seeds = Enumerable.Range(seed, streams).ToArray(),
            columns = new[] { "t", "ax", "ay", "az", "state" },
            units = "g",
            class_names = ClassNames,
            streams = streamInfo,
            command = $"edgerunner dump vibration --out {outputDirectory} --seconds {seconds.ToString(CultureInfo.InvariantCulture)} --streams {streams} --seed {seed} --sample-rate {sampleRate.ToString(CultureInfo.InvariantCulture)}",
        };
        File.WriteAllText(Path.Combine(outputDirectory, "meta.json"), JsonSerializer.Serialize(meta, JsonOptions) + "\n");
        Console.WriteLine($"wrote {streams} streams × {samples} samples to {outputDirectory}");
        return 0;
    }
}
