using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace EdgeRunner.Models.Inference;

/// <summary>
/// The one rule for the files a model is made of (the .onnx file, its manifest, its label file): each
/// must be a regular file no larger than its limit, checked before it is opened, and read no further
/// than that limit. A path to <c>/dev/zero</c> otherwise hashes forever, a FIFO blocks the open until
/// a writer comes, and a directory surfaces as a misleading "does not exist".
/// </summary>
public static partial class ModelFiles
{
    /// <summary>The largest .onnx file accepted: 2 GiB, the protobuf limit ONNX models are bound by (larger models keep their weights in external data files).</summary>
    public const long MaxModelBytes = 2L * 1024 * 1024 * 1024;

    /// <summary>The largest manifest or label file accepted (16 MiB: a few thousand labels take kilobytes).</summary>
    public const long MaxTextBytes = 16L * 1024 * 1024;

    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const uint StatxSize = 0x200;
    private const int FileTypeMask = 0xF000;
    private const int ENOENT = 2;
    private const int EACCES = 13;
    private const int ENOTDIR = 20;
    private const int ENAMETOOLONG = 36;
    private const int ELOOP = 40;

    /// <summary>
    /// Why <paramref name="path"/> cannot be used as a file of at most <paramref name="maxBytes"/> bytes
    /// ("does not exist", "is a directory, not a regular file", "is a character device, not a regular
    /// file", "is 3221225472 bytes, more than the 2147483648 bytes allowed"), or null when it can.
    /// Never opens the file: a FIFO or a device is judged by its type alone.
    /// </summary>
    public static string? Problem(string path, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0)
        {
            return "is empty";
        }

        int type;
        long size;
        try
        {
            // statx's struct has the same layout on every architecture (unlike struct stat), so one
            // declaration serves x64 and arm64 boards alike.
            if (NativeMethods.Statx(AtFdCwd, path, 0, StatxType | StatxSize, out var status) != 0)
            {
                return Marshal.GetLastPInvokeError() switch
                {
                    ENOENT or ENOTDIR => "does not exist",
                    EACCES => "cannot be reached (permission denied on a folder of its path)",
                    ENAMETOOLONG => "is a path too long for the file system",
                    ELOOP => "is a loop of symbolic links",
                    var errno => $"cannot be examined: {Marshal.GetPInvokeErrorMessage(errno)}",
                };
            }

            type = status.Mode & FileTypeMask;
            size = (long)Math.Min(status.Size, long.MaxValue);
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            // A C library without statx (glibc before 2.28): what .NET itself can tell.
            if (Directory.Exists(path))
            {
                return "is a directory, not a regular file";
            }

            if (!File.Exists(path))
            {
                return "does not exist";
            }

            type = 0x8000;
            size = new FileInfo(path).Length;
        }

        var kind = type switch
        {
            0x8000 => null,
            0x4000 => "a directory",
            0x2000 => "a character device",
            0x6000 => "a block device",
            0x1000 => "a FIFO (named pipe)",
            0xC000 => "a socket",
            _ => "not a file",
        };
        if (kind is not null)
        {
            return kind == "not a file" ? "is not a regular file" : $"is {kind}, not a regular file";
        }

        return size > maxBytes
            ? string.Create(CultureInfo.InvariantCulture, $"is {size} bytes, more than the {maxBytes} bytes allowed")
            : null;
    }

    /// <summary>Lowercase hex SHA-256 of <paramref name="path"/>, reading at most <paramref name="maxBytes"/> bytes.</summary>
    /// <exception cref="IOException">The file cannot be read, or holds more than <paramref name="maxBytes"/> bytes (it grew since it was checked).</exception>
    /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
    public static string Sha256(string path, long maxBytes)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        ReadBounded(path, maxBytes, (chunk, length) => hash.AppendData(chunk, 0, length));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The bytes of <paramref name="path"/>, at most <paramref name="maxBytes"/> of them.</summary>
    /// <exception cref="IOException">The file cannot be read, or holds more than <paramref name="maxBytes"/> bytes.</exception>
    /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes)
    {
        using var buffer = new MemoryStream();
        ReadBounded(path, maxBytes, (chunk, length) => buffer.Write(chunk, 0, length));
        return buffer.ToArray();
    }

    private static void ReadBounded(string path, long maxBytes, Action<byte[], int> consume)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        var chunk = new byte[1 << 20];
        long total = 0;
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            total += read;
            if (total > maxBytes)
            {
                throw new IOException(string.Create(CultureInfo.InvariantCulture, $"'{path}' holds more than the {maxBytes} bytes allowed"));
            }

            consume(chunk, read);
        }
    }

    /// <summary>The head of Linux's <c>struct statx</c> (256 bytes): the type and permission bits, and the size.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    private struct StatxBuffer
    {
        [FieldOffset(28)]
        public ushort Mode;

        [FieldOffset(40)]
        public ulong Size;
    }

    private static partial class NativeMethods
    {
        [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Statx(int directoryFd, string path, int flags, uint mask, out StatxBuffer buffer);
    }
}
