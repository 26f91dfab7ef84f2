using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using EdgeRunner.Service;
using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Vision.Sources;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EdgeRunner.UnitTests;

/// <summary>
/// <c>Cameras:{id}:Source</c> is bound to its Kind's own options type, and a key the Kind does not read (one of another
/// kind, or one no kind reads) is refused naming the full key, as other unknown keys are.
/// </summary>
public sealed partial class CameraSourceKindTests
{
    [Theory]
    [InlineData("V4l2", "CredentialsFile", "Cameras:front:Source:CredentialsFile: not used by Kind V4l2 (it is for Rtsp and HttpMjpeg)")]
    [InlineData("Rtsp", "InputFormat", "Cameras:front:Source:InputFormat: not used by Kind Rtsp (it is for V4l2)")]
    [InlineData("Synthetic", "Path", "Cameras:front:Source:Path: not used by Kind Synthetic (it is for Images, File, V4l2, Rtsp and HttpMjpeg)")]
    [InlineData("Images", "Width", "Cameras:front:Source:Width: not used by Kind Images (it is for Synthetic, File, V4l2, Rtsp and HttpMjpeg)")]
    [InlineData("File", "MaxPixels", "Cameras:front:Source:MaxPixels: not used by Kind File (it is for Images)")]
    [InlineData("HttpMjpeg", "RealTime", "Cameras:front:Source:RealTime: not used by Kind HttpMjpeg (it is for File)")]
    [InlineData("images", "Seed", "Cameras:front:Source:Seed: not used by Kind Images (it is for Synthetic)")]
    public void A_key_of_another_kind_is_refused_naming_the_key_and_its_kinds(string kind, string key, string expected)
    {
        var config = Config(("Cameras:front:Source:Kind", kind), ($"Cameras:front:Source:{key}", "1"));

        Assert.Equal([expected], KeyErrors(config));
    }

    [Fact]
    public void A_key_no_kind_reads_is_unknown_with_the_kinds_own_keys()
    {
        var config = Config(("Cameras:front:Source:Kind", "Rtsp"), ("Cameras:front:Source:Pasword", "x"));

        var error = Assert.Single(KeyErrors(config));

        Assert.StartsWith("Cameras:front:Source:Pasword: unknown key (known keys for Kind Rtsp: Kind, ", error, StringComparison.Ordinal);
        Assert.Contains("CredentialsFile", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_a_Kind_the_source_is_Synthetic_and_checked_as_such()
    {
        var config = Config(("Cameras:front:Source:Width", "320"), ("Cameras:front:Source:Loop", "false"));

        Assert.Equal(["Cameras:front:Source:Loop: not used by Kind Synthetic (it is for Images and File)"], KeyErrors(config));
        var valid = Config(("Cameras:front:Source:Width", "320"));
        Assert.Empty(KeyErrors(valid));
        var source = Assert.IsType<SyntheticSourceOptions>(CameraSourceKinds.Bind(valid.GetSection("Cameras:front:Source")));
        Assert.Equal(320, source.Width);
    }

    [Fact]
    public void A_kind_that_is_none_is_refused_with_the_known_kinds()
    {
        var config = Config(("Cameras:front:Source:Kind", "Webcam"));

        Assert.Equal(["Cameras:front:Source:Kind: unknown kind 'Webcam' (known: Synthetic, Images, File, V4l2, Rtsp, HttpMjpeg)"], KeyErrors(config));
        var ex = Assert.Throws<InvalidOperationException>(() => CameraSourceKinds.Bind(config.GetSection("Cameras:front:Source")));
        Assert.StartsWith("Cameras:front:Source:Kind: unknown kind 'Webcam'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_nested_value_under_a_kinds_key_is_reported_by_the_generic_check()
    {
        var config = Config(("Cameras:front:Source:Kind", "V4l2"), ("Cameras:front:Source:CaptureFps:Max", "30"));

        Assert.Equal(["Cameras:front:Source:CaptureFps: is a single value (Double); it has no key 'Max'"], KeyErrors(config));
    }

    [Fact]
    public void Every_kind_binds_its_own_keys_to_its_own_type()
    {
        var config = Config(
            ("Cameras:syn:Source:Seed", "7"),
            ("Cameras:img:Source:Kind", "Images"), ("Cameras:img:Source:Path", "/srv/images"), ("Cameras:img:Source:MaxPixels", "100"),
            ("Cameras:vid:Source:Kind", "File"), ("Cameras:vid:Source:Path", "/srv/a.mp4"), ("Cameras:vid:Source:Loop", "false"), ("Cameras:vid:Source:RealTime", "false"),
            ("Cameras:usb:Source:Kind", "V4l2"), ("Cameras:usb:Source:Path", "/dev/video0"), ("Cameras:usb:Source:InputFormat", "Mjpeg"), ("Cameras:usb:Source:CaptureFps", "30"),
            ("Cameras:ip:Source:Kind", "RTSP"), ("Cameras:ip:Source:Path", "rtsp://cam/1"), ("Cameras:ip:Source:CredentialsFile", "/run/credentials/cam"), ("Cameras:ip:Source:Width", "320"),
            ("Cameras:web:Source:Kind", "HttpMjpeg"), ("Cameras:web:Source:Path", "http://cam/video"), ("Cameras:web:Source:Height", "240"));
        Assert.Empty(KeyErrors(config));

        var cameras = new CamerasOptions();
        foreach (var id in new[] { "syn", "img", "vid", "usb", "ip", "web" })
        {
            cameras[id] = new CameraOptions();
        }

        CameraSourceKinds.BindSources(config.GetSection("Cameras"), cameras);

        Assert.Equal(7, Assert.IsType<SyntheticSourceOptions>(cameras["syn"].Source).Seed);
        Assert.Equal(100, Assert.IsType<ImagesSourceOptions>(cameras["img"].Source).MaxPixels);
        var video = Assert.IsType<FileSourceOptions>(cameras["vid"].Source);
        Assert.False(video.Loop);
        Assert.False(video.RealTime);
        var usb = Assert.IsType<V4l2SourceOptions>(cameras["usb"].Source);
        Assert.Equal(("/dev/video0", "Mjpeg", 30d), (usb.Path, usb.InputFormat, usb.CaptureFps));
        var ip = Assert.IsType<RtspSourceOptions>(cameras["ip"].Source);
        Assert.Equal(("Rtsp", "/run/credentials/cam", 320), (ip.Kind, ip.CredentialsFile, ip.Width));
        Assert.Equal(240, Assert.IsType<HttpMjpegSourceOptions>(cameras["web"].Source).Height);
    }

    [Theory]
    [InlineData("Rtsp", "http://cam/1", "Cameras:front:Source:Path: must be an rtsp:// or rtsps:// URL")]
    [InlineData("HttpMjpeg", "rtsp://cam/1", "Cameras:front:Source:Path: must be an http:// or https:// URL")]
    [InlineData("V4l2", "", "Cameras:front:Source:Path: is required for Kind V4l2 (a device such as /dev/video0)")]
    [InlineData("File", "", "Cameras:front:Source:Path: is required for Kind File (a video file)")]
    [InlineData("Images", "", "Cameras:front:Source:Path: is required for Kind Images")]
    public void Each_kind_validates_its_own_keys(string kind, string path, string expected)
    {
        var config = Config(("Cameras:front:Model", "m"), ("Cameras:front:Source:Kind", kind), ("Cameras:front:Source:Path", path));

        var failures = Validate(config);

        Assert.Equal([expected], failures);
    }

    [Fact]
    public void The_host_level_check_refuses_a_foreign_key_before_any_value_check()
    {
        var config = Config(("Cameras:front:Model", "nope"), ("Cameras:front:Source:Kind", "V4l2"), ("Cameras:front:Source:Path", "/dev/video0"), ("Cameras:front:Source:CredentialsFile", "/x"));
        using var host = EdgeRunnerHost.Build(config);

        var errors = EdgeRunnerHost.FindConfigurationErrors(config, host.Services);

        Assert.Equal(["Cameras:front:Source:CredentialsFile: not used by Kind V4l2 (it is for Rtsp and HttpMjpeg)"], errors);
    }

    [Fact]
    public void The_host_binds_each_source_to_its_kind_and_resolves_its_paths()
    {
        var config = Config(
            ("Models:m:Path", "x.onnx"),
            ("Cameras:front:Model", "m"), ("Cameras:front:Source:Kind", "Images"), ("Cameras:front:Source:Path", "."), ("Cameras:front:Source:Loop", "false"));
        using var host = EdgeRunnerHost.Build(config);

        var cameras = host.Services.GetRequiredService<IOptions<CamerasOptions>>().Value;

        var source = Assert.IsType<ImagesSourceOptions>(cameras["front"].Source);
        Assert.False(source.Loop);
        Assert.Equal(Environment.CurrentDirectory, source.Path);
    }

    [Fact]
    public void The_keys_of_each_kind_match_the_readme_both_ways()
    {
        var documented = ReadmeSourceKeys();

        // Every key of every kind is documented, every documented key is some kind's.
        Assert.Equal(
            CameraSourceKinds.KeysByKind.Values.SelectMany(k => k.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal),
            documented.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, kinds) in documented)
        {
            var inCode = CameraSourceKinds.Names.Where(k => CameraSourceKinds.KeysByKind[k].ContainsKey(key)).ToHashSet();
            Assert.True(kinds.SetEquals(inCode), $"Source:{key}: docs/cameras.md says {string.Join(", ", kinds)}; the kinds' options say {string.Join(", ", inCode)}");
        }
    }

    /// <summary>
    /// The <c>Source:*</c> rows of docs/cameras.md's <c>Cameras:{id}</c> table (a row may name several keys, <c>`Source:Width` / `Height`</c>),
    /// each with the kinds its default and meaning name in backticks.
    /// </summary>
    private static Dictionary<string, HashSet<string>> ReadmeSourceKeys([CallerFilePath] string path = "")
    {
        var readme = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, "..", "..", "docs", "cameras.md"));
        var lines = File.ReadAllLines(readme);
        var start = Array.FindIndex(lines, l => l.StartsWith("## `Cameras:{id}`", StringComparison.Ordinal));
        Assert.True(start >= 0, "docs/cameras.md has no ## `Cameras:{id}` section");
        var rows = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(start + 1).SkipWhile(l => !l.StartsWith('|')).TakeWhile(l => l.StartsWith('|')))
        {
            var cells = line.Split('|');
            if (!cells[1].TrimStart().StartsWith("`Source:", StringComparison.Ordinal))
            {
                continue;
            }

            var kinds = Backticked().Matches(cells[2] + cells[3]).Select(m => m.Groups[1].Value).Where(CameraSourceKinds.Names.Contains).ToHashSet();
            foreach (var key in Backticked().Matches(cells[1]).Select(m => m.Groups[1].Value.Replace("Source:", string.Empty, StringComparison.Ordinal)))
            {
                rows.Add(key, kinds);
            }
        }

        return rows;
    }

    [GeneratedRegex(@"`([\w:]+)`")]
    private static partial Regex Backticked();

    private static IConfigurationRoot Config(params (string Key, string? Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    /// <summary>The key-level checks of the Cameras section, as EdgeRunnerHost.FindConfigurationErrors runs them.</summary>
    private static List<string> KeyErrors(IConfiguration config)
    {
        var errors = new List<string>();
        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection(CamerasOptions.SectionName), typeof(CamerasOptions), errors);
        CameraSourceKinds.CollectKeyErrors(config.GetSection(CamerasOptions.SectionName), errors);
        return errors;
    }

    private static IEnumerable<string> Validate(IConfiguration config)
    {
        var cameras = new CamerasOptions();
        config.GetSection(CamerasOptions.SectionName).Bind(cameras);
        CameraSourceKinds.BindSources(config.GetSection(CamerasOptions.SectionName), cameras);
        var models = new ModelsOptions { ["m"] = new ModelOptions() };
        return new CamerasOptionsValidator(Options.Create(models)).Validate(null, cameras).Failures ?? [];
    }
}
