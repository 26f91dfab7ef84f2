using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;

namespace EdgeRunner.Service.Publishing.Spool;

/// <summary>The two kinds of record in a spool segment.</summary>
internal enum SpoolRecordKind : byte
{
    /// <summary>A message to deliver: id, time, QoS, retain flag, topic, payload.</summary>
    Message = 1,

    /// <summary>A message delivered (or expired): its id. Never deleted before the message it names.</summary>
    Acknowledgement = 2,
}

/// <summary>
/// The on-disk layout of one record, little-endian: <c>[u32 body length][u32 CRC-32 of body][body]</c>.
/// A message body is <c>[u8 kind=1][i64 id][i64 enqueued, Unix ms][u8 QoS][u8 flags: 1 = retain]
/// [u16 topic length][topic, UTF-8][payload]</c>; an acknowledgement body is <c>[u8 kind=2][i64 id]</c>.
/// The CRC tells a torn write (a crash or power cut in the middle of an append) from a record, so recovery
/// keeps every whole record before it and discards the rest of that segment.
/// </summary>
internal static class SpoolRecordFormat
{
    /// <summary>Bytes of the length and CRC before each body.</summary>
    public const int HeaderLength = 8;

    /// <summary>Bytes of a message body before its topic.</summary>
    public const int MessageFixedLength = 1 + 8 + 8 + 1 + 1 + 2;

    /// <summary>Bytes of an acknowledgement body.</summary>
    public const int AcknowledgementBodyLength = 1 + 8;

    /// <summary>Longest topic a record holds (MQTT's own limit).</summary>
    public const int MaxTopicBytes = ushort.MaxValue;

    /// <summary>Largest body accepted when reading: anything longer is damage, not a record.</summary>
    public const int MaxBodyLength = 64 * 1024 * 1024;

    /// <summary>Whole record length (header and body) of a message.</summary>
    public static int MessageRecordLength(int topicBytes, int payloadLength) =>
        HeaderLength + MessageFixedLength + topicBytes + payloadLength;

    /// <summary>Writes a message record into <paramref name="destination"/> (exactly <see cref="MessageRecordLength"/> bytes).</summary>
    public static int WriteMessage(Span<byte> destination, long id, long enqueuedUnixMs, byte qos, bool retain, string topic, ReadOnlySpan<byte> payload)
    {
        var body = destination[HeaderLength..];
        body[0] = (byte)SpoolRecordKind.Message;
        BinaryPrimitives.WriteInt64LittleEndian(body[1..], id);
        BinaryPrimitives.WriteInt64LittleEndian(body[9..], enqueuedUnixMs);
        body[17] = qos;
        body[18] = retain ? (byte)1 : (byte)0;
        var topicBytes = Encoding.UTF8.GetBytes(topic, body[MessageFixedLength..]);
        BinaryPrimitives.WriteUInt16LittleEndian(body[19..], checked((ushort)topicBytes));
        payload.CopyTo(body[(MessageFixedLength + topicBytes)..]);
        var bodyLength = MessageFixedLength + topicBytes + payload.Length;
        WriteHeader(destination, bodyLength);
        return HeaderLength + bodyLength;
    }

    /// <summary>Writes an acknowledgement record of <paramref name="id"/>; returns its length.</summary>
    public static int WriteAcknowledgement(Span<byte> destination, long id)
    {
        var body = destination[HeaderLength..];
        body[0] = (byte)SpoolRecordKind.Acknowledgement;
        BinaryPrimitives.WriteInt64LittleEndian(body[1..], id);
        WriteHeader(destination, AcknowledgementBodyLength);
        return HeaderLength + AcknowledgementBodyLength;
    }

    /// <summary>
    /// Reads the header at the start of <paramref name="header"/>: false when it cannot begin a record
    /// (zero or oversized length: a torn or damaged tail).
    /// </summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> header, out int bodyLength, out uint crc)
    {
        bodyLength = BinaryPrimitives.ReadInt32LittleEndian(header);
        crc = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        return bodyLength is >= AcknowledgementBodyLength and <= MaxBodyLength;
    }

    /// <summary>True when <paramref name="body"/> matches its header's CRC.</summary>
    public static bool BodyIsIntact(ReadOnlySpan<byte> body, uint crc) => Crc32.HashToUInt32(body) == crc;

    private static void WriteHeader(Span<byte> destination, int bodyLength)
    {
        BinaryPrimitives.WriteInt32LittleEndian(destination, bodyLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Crc32.HashToUInt32(destination.Slice(HeaderLength, bodyLength)));
    }
}
