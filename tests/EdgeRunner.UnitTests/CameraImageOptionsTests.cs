using EdgeRunner.Service.Configuration;
using EdgeRunner.Service.Vision.Sources;
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
            ["front"] = new CameraOptions { Model = "m", Source = new ImagesSourceOptions { Path = AppContext.BaseDirectory, MaxPixels = maxPixels } },
        };
        var models = new ModelsOptions { ["m"] = new ModelOptions() };

        var result = new CamerasOptionsValidator(Microsoft.Extensions.Options.Options.Create(models)).Validate(null, cameras);

        Assert.True(result.Failed);
        Assert.Equal($"Cameras:front:Source:MaxPixels: must be between 1 and {Array.MaxLength / 4} (got {maxPixels})", Assert.Single(result.Failures!));
    }

    [Fact]
    public void The_default_is_8K_and_the_key_binds()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Cameras:front:Source:Kind"] = "Images", ["Cameras:front:Source:MaxPixels"] = "1000" }).Build();
        var errors = new List<string>();
        ConfigurationKeyChecker.CollectUnknownKeys(config.GetSection("Cameras"), typeof(CamerasOptions), errors);
        CameraSourceKinds.CollectKeyErrors(config.GetSection("Cameras"), errors);

        Assert.Empty(errors);
        Assert.Equal(7680L * 4320, new ImagesSourceOptions().MaxPixels);
        var source = Assert.IsType<ImagesSourceOptions>(CameraSourceKinds.Bind(config.GetSection("Cameras:front:Source")));
        Assert.Equal(1000, source.MaxPixels);
    }
}
