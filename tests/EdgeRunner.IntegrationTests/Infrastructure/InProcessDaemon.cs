using EdgeRunner.Service;
using Microsoft.Extensions.Hosting;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>The daemon's host built and started in the test process from a configuration file, after the same checks the daemon makes.</summary>
internal static class InProcessDaemon
{
    public static async Task<IHost> StartAsync(string configFile, CancellationToken cancellationToken)
    {
        var configuration = EdgeRunnerHost.BuildConfiguration(configFile, []);
        var host = EdgeRunnerHost.Build(configuration);
        try
        {
            Assert.Empty(EdgeRunnerHost.FindConfigurationErrors(configuration, host.Services));
            await host.StartAsync(cancellationToken);
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }
}
