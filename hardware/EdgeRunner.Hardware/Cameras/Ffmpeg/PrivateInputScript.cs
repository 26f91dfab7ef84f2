using System.Security.Cryptography;

namespace EdgeRunner.Hardware.Cameras.Ffmpeg;

/// <summary>
/// A file only this user can read (0600) in a fresh directory only this user can enter (0700), for a secret
/// that must reach a child process without its command line. Nothing is written until <see cref="Write"/>;
/// <see cref="Delete"/> removes the file and the directory (idempotent, never throws).
/// </summary>
internal sealed class PrivateInputScript
{
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Chooses the paths under <paramref name="root"/> (a random directory name, so nobody can prepare it in advance).</summary>
    public PrivateInputScript(string root, string fileName)
    {
        DirectoryPath = Path.Combine(root, "edgerunner-ffmpeg-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)));
        FilePath = Path.Combine(DirectoryPath, fileName);
    }

    /// <summary>The private directory.</summary>
    public string DirectoryPath { get; }

    /// <summary>The file in it.</summary>
    public string FilePath { get; }

    /// <summary>Creates the directory (0700) and the file (0600, never following or reusing an existing one) with <paramref name="content"/>.</summary>
    /// <exception cref="FrameSourceException">The directory or file cannot be created as required.</exception>
    public void Write(string content)
    {
        try
        {
            // mkdir fails on an existing path: nothing another user created (or linked) in a shared /tmp is used.
            if (Directory.Exists(DirectoryPath) || File.Exists(DirectoryPath))
            {
                throw new IOException($"'{DirectoryPath}' already exists");
            }

            var directory = Directory.CreateDirectory(DirectoryPath, DirectoryMode);
            if (directory.LinkTarget is not null || (File.GetUnixFileMode(DirectoryPath) & ~DirectoryMode) != 0)
            {
                throw new IOException($"'{DirectoryPath}' is not a private directory");
            }

            var options = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = FileMode };
            using var stream = new FileStream(FilePath, options);
            using var writer = new StreamWriter(stream);
            writer.Write(content);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Delete();
            throw new FrameSourceException($"Cannot write ffmpeg's private input script under '{Path.GetDirectoryName(DirectoryPath)}': {ex.Message}", ex);
        }
    }

    /// <summary>Removes the file and the directory; missing ones are fine.</summary>
    public void Delete()
    {
        try
        {
            File.Delete(FilePath);
            if (Directory.Exists(DirectoryPath))
            {
                Directory.Delete(DirectoryPath);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: the content is readable by this user only, and the runtime directory is cleared by systemd.
        }
    }
}
