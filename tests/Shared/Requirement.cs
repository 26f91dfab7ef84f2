namespace EdgeRunner.Tests.Shared;

/// <summary>
/// What a test needs from the machine (a program, a reference file, a committed model). On a
/// developer's machine a missing prerequisite skips the test with its reason; under CI
/// (<c>CI=true</c>) and in <c>tests/run.sh</c> (<c>EDGERUNNER_TESTS_STRICT=1</c>) it fails, so a broken
/// install step or a renamed reference file turns the run red instead of quietly green.
/// </summary>
internal static class Requirement
{
    /// <summary>Whether a missing prerequisite fails the test instead of skipping it.</summary>
    public static bool Strict { get; } =
        IsTrue(Environment.GetEnvironmentVariable("CI")) || IsTrue(Environment.GetEnvironmentVariable("EDGERUNNER_TESTS_STRICT"));

    /// <summary>Skips (or, when <see cref="Strict"/>, fails) the test when <paramref name="met"/> is false.</summary>
    public static void That(bool met, string reason)
    {
        if (met)
        {
            return;
        }

        if (Strict)
        {
            Assert.Fail($"missing prerequisite (a failure under CI and tests/run.sh): {reason}");
        }

        Assert.Skip(reason);
    }

    /// <summary>Requires an executable file at <paramref name="path"/>.</summary>
    public static void Program(string path, string package) =>
        That(File.Exists(path), $"{path} is not installed (tests/run.sh installs the Debian package '{package}').");

    private static bool IsTrue(string? value) =>
        value is not null && (value == "1" || value.Equals("true", StringComparison.OrdinalIgnoreCase) || value.Equals("yes", StringComparison.OrdinalIgnoreCase));
}
