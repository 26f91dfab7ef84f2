using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>The daemon as a field engineer runs it: a camera <c>Source</c> key of another kind stops startup naming it.</summary>
public sealed class CameraSourceKindStartupTests
{
    private const int ExConfig = 78;

    [Fact]
    public async Task Source_key_of_another_camera_kind_from_the_environment_stops_startup_naming_it()
    {
        // "synthetic" is a Synthetic camera in the built-in appsettings.json; CredentialsFile is an Rtsp/HttpMjpeg key.
        await using var daemon = DaemonProcess.Start([], new Dictionary<string, string> { ["EDGERUNNER__Cameras__synthetic__Source__CredentialsFile"] = "/run/credentials/cam" });

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains("Cameras:synthetic:Source:CredentialsFile: not used by Kind Synthetic (it is for Rtsp and HttpMjpeg)", daemon.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_camera_kind_on_the_command_line_stops_startup_naming_the_key()
    {
        await using var daemon = DaemonProcess.Start(["--Cameras:synthetic:Source:Kind=Webcam"]);

        Assert.Equal(ExConfig, await daemon.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Contains("Cameras:synthetic:Source:Kind: unknown kind 'Webcam' (known: Synthetic, Images, File, V4l2, Rtsp, HttpMjpeg)", daemon.Stderr, StringComparison.Ordinal);
    }
}
