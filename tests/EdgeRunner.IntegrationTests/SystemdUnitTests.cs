using System.Diagnostics;
using System.Globalization;
using EdgeRunner.IntegrationTests.Infrastructure;

namespace EdgeRunner.IntegrationTests;

/// <summary>The shipped unit, sysusers and tmpfiles files, checked offline by systemd's own tools (systemd/check.sh).</summary>
public sealed class SystemdUnitTests
{
    [Fact]
    public async Task Unit_verifies_clean_with_exposure_at_most_2_5_and_sysusers_tmpfiles_apply()
    {
        Requirement.Program("/usr/bin/systemd-analyze", "systemd");
        var start = new ProcessStartInfo("sh", [Path.Combine(TestPaths.RepositoryRoot, "systemd", "check.sh"), "2.5"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);

        Assert.True(process.ExitCode == 0, $"systemd/check.sh exited {process.ExitCode}:\n{await stdout}\n{await stderr}");
        var output = await stdout;
        Assert.Contains("systemd-analyze verify: clean", output, StringComparison.Ordinal);
        var exposure = System.Text.RegularExpressions.Regex.Match(output, @"exposure ([0-9.]+) \(at most 2\.5\)");
        Assert.True(exposure.Success, output);
        Assert.InRange(double.Parse(exposure.Groups[1].Value, CultureInfo.InvariantCulture), 0, 2.5);
        Assert.Contains("user edgerunner in video gpio i2c spi dialout audio", output, StringComparison.Ordinal);
    }
}
