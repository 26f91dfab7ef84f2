namespace EdgeRunner.Service;

/// <summary>Folders of the daemon's state (checkpoints, the spool): created 0700 whatever the umask.</summary>
internal static class PrivateDirectory
{
    /// <summary>rwx for the daemon's user only.</summary>
    public const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>
    /// Creates <paramref name="directory"/> and any missing parents 0700. Folders that already exist keep their
    /// mode: the daemon changes only what it creates.
    /// </summary>
    public static void Ensure(string directory)
    {
        // One level at a time, outermost first: Directory.CreateDirectory(path, mode) gives the mode to the
        // last level only, and the parents it creates would follow the umask (0777 under umask 000).
        var missing = new Stack<string>();
        for (var level = Path.GetFullPath(directory); !Directory.Exists(level); level = Path.GetDirectoryName(level)!)
        {
            missing.Push(level);
            if (Path.GetDirectoryName(level) is null)
            {
                break;
            }
        }

        while (missing.TryPop(out var level))
        {
            Directory.CreateDirectory(level, Mode);
        }
    }
}
