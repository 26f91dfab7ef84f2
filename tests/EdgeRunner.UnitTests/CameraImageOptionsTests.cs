using EdgeRunner.Service.Configuration;
using Microsoft.Extensions.Configuration;

namespace EdgeRunner.UnitTests;

/// <summary><c>Cameras:{id}:Source:MaxPixels</c> is a known key, bounded so that an RGBA frame of that many pixels fits one array.</summary>
public sealed class CameraImageOptionsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(600_000_000)]
    public void An_impossible_MaxPixels_is_refused_naming_the_key(long maxPixels)
    {
        var cameras = new CamerasOptions
        {
            ["front"] = new CameraOptions { Model = "m", Source = new FrameSourceOptions { Kind = FrameSourceKind.Images, Path = AppContext.BaseDirectory, MaxPixels = maxPixels } },
        };
        var models = new ModelsOptions { ["m"] = new ModelOptions() };

        var result = new CamerasOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, cameras);

        Assert.True(result.Failed);
        Assert.Equal($"Cameras:front:Source:MaxPixels: must be between 1 and {Array.MaxLength / 4} (got {maxPixels})", Assert.Single(result.Failures!));
    }

    [Fact]
    public void The_default_is_8K_and_the_key_binds()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Cameras:front:Source:MaxPixels"] = "1000" }).Build();
        var errors = new List<string>();
        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection("Cameras"), typeof(CamerasOptions), errors);

        Assert.Empty(errors);
        Assert.Equal(7680L * 4320, new FrameSourceOptions().MaxPixels);
        Assert.Equal(1000, config.GetSection("Cameras").Get<CamerasOptions>()!["front"].Source.MaxPixels);
    }
}
