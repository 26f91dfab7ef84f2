using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>
/// A pseudo-terminal pair standing in for a serial device: the test writes the device's output to the
/// master side, the code under test opens <see cref="SlavePath"/> as it would open /dev/ttyUSB0.
/// </summary>
internal sealed class PseudoTerminal : IDisposable
{
    private readonly FileStream _master;

    private PseudoTerminal(FileStream master, string slavePath)
    {
        _master = master;
        SlavePath = slavePath;
    }

    /// <summary>The terminal's device path (/dev/pts/N).</summary>
    public string SlavePath { get; }

    public static PseudoTerminal Open()
    {
        const int ReadWriteNoControllingTerminal = 0x2 | 0x100; // O_RDWR | O_NOCTTY
        var fd = NativeMethods.PosixOpenpt(ReadWriteNoControllingTerminal);
        Assert.True(fd >= 0, $"posix_openpt failed: errno {Marshal.GetLastPInvokeError()}");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        Assert.True(NativeMethods.Grantpt(fd) == 0 && NativeMethods.Unlockpt(fd) == 0, $"grantpt/unlockpt failed: errno {Marshal.GetLastPInvokeError()}");
        var name = new byte[128];
        Assert.Equal(0, NativeMethods.PtsnameR(fd, name, name.Length));
        var slave = Encoding.ASCII.GetString(name, 0, Array.IndexOf(name, (byte)0));
        return new PseudoTerminal(new FileStream(handle, FileAccess.ReadWrite, bufferSize: 0), slave);
    }

    /// <summary>Writes what the device prints.</summary>
    public void Write(string text) => _master.Write(Encoding.ASCII.GetBytes(text));

    /// <summary>Writes what the device prints.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) => _master.WriteAsync(bytes, cancellationToken);

    /// <summary>Closing the master hangs up the terminal: the slave side sees the device go away.</summary>
    public void Dispose() => _master.Dispose();

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "posix_openpt", SetLastError = true)]
        internal static extern int PosixOpenpt(int flags);

        [DllImport("libc", EntryPoint = "grantpt", SetLastError = true)]
        internal static extern int Grantpt(int fd);

        [DllImport("libc", EntryPoint = "unlockpt", SetLastError = true)]
        internal static extern int Unlockpt(int fd);

        [DllImport("libc", EntryPoint = "ptsname_r", SetLastError = true)]
        internal static extern int PtsnameR(int fd, byte[] buffer, nint length);
    }
}
