using Google.Protobuf;

namespace EdgeRunner.IntegrationTests.Infrastructure;

/// <summary>A tensor read from an ONNX TensorProto file (the backend node tests' input_N.pb / output_N.pb).</summary>
internal sealed record OnnxTensor(string Name, int DataType, long[] Dims, float[] Floats, long[] Longs)
{
    public const int Float = 1;
    public const int Int32 = 6;
    public const int Int64 = 7;

    public long Count => Dims.Aggregate(1L, (a, b) => a * b);
}

/// <summary>One node of a graph as read from a model file: its operator, inputs, outputs and raw attributes.</summary>
internal sealed record OnnxNode(string OpType, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyList<ByteString> Attributes)
{
    /// <summary>An INT attribute's value, if the node has it.</summary>
    public long? IntAttribute(string name)
    {
        foreach (var raw in Attributes)
        {
            string? attributeName = null;
            long? value = null;
            var input = raw.CreateCodedInput();
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1: attributeName = input.ReadString(); break;
                    case 3: value = input.ReadInt64(); break;
                    default: input.SkipLastField(); break;
                }
            }

            if (attributeName == name)
            {
                return value;
            }
        }

        return null;
    }
}

/// <summary>What a test needs from a ModelProto: opset, graph inputs/outputs, nodes.</summary>
internal sealed record OnnxModel(long IrVersion, IReadOnlyList<(string Domain, long Version)> Opsets, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyList<OnnxNode> Nodes);

/// <summary>
/// Reads and writes the few ONNX protobuf messages the tests need (field numbers from onnx/onnx.proto),
/// on Google.Protobuf's wire-format reader and writer: TensorProto files of the ONNX backend node
/// tests, the node list of their models, and small graphs built from those nodes.
/// </summary>
internal static class OnnxProto
{
    public static OnnxTensor ReadTensor(string path) => ReadTensor(ByteString.CopyFrom(File.ReadAllBytes(path)));

    public static OnnxTensor ReadTensor(ByteString bytes)
    {
        var name = string.Empty;
        var dataType = 0;
        var dims = new List<long>();
        var floats = new List<float>();
        var longs = new List<long>();
        ByteString? raw = null;
        var input = bytes.CreateCodedInput();
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            var packed = WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited;
            switch (field)
            {
                case 1: ReadRepeated(input, packed, s => dims.Add(s.ReadInt64())); break;
                case 2: dataType = input.ReadInt32(); break;
                case 4: ReadRepeated(input, packed, s => floats.Add(s.ReadFloat())); break;
                case 5: ReadRepeated(input, packed, s => longs.Add(s.ReadInt32())); break;
                case 7: ReadRepeated(input, packed, s => longs.Add(s.ReadInt64())); break;
                case 8: name = input.ReadString(); break;
                case 9: raw = input.ReadBytes(); break;
                default: input.SkipLastField(); break;
            }
        }

        if (raw is not null)
        {
            var span = raw.Span;
            switch (dataType)
            {
                case OnnxTensor.Float:
                    floats.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(span).ToArray());
                    break;
                case OnnxTensor.Int32:
                    longs.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(span).ToArray().Select(v => (long)v));
                    break;
                case OnnxTensor.Int64:
                    longs.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(span).ToArray());
                    break;
                default:
                    throw new NotSupportedException($"TensorProto '{name}': raw data of type {dataType}");
            }
        }

        return new OnnxTensor(name, dataType, [.. dims], [.. floats], [.. longs]);
    }

    public static OnnxModel ReadModel(string path)
    {
        long irVersion = 0;
        var opsets = new List<(string, long)>();
        var inputs = new List<string>();
        var outputs = new List<string>();
        var nodes = new List<OnnxNode>();
        var model = new CodedInputStream(File.ReadAllBytes(path));
        uint tag;
        while ((tag = model.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: irVersion = model.ReadInt64(); break;
                case 7: ReadGraph(model.ReadBytes(), inputs, outputs, nodes); break;
                case 8: opsets.Add(ReadOpset(model.ReadBytes())); break;
                default: model.SkipLastField(); break;
            }
        }

        return new OnnxModel(irVersion, opsets, inputs, outputs, nodes);
    }

    /// <summary>A ModelProto with one graph. Dimensions: a number, or a string for a symbolic dimension.</summary>
    public static byte[] WriteModel(
        long irVersion,
        IEnumerable<(string Domain, long Version)> opsets,
        IEnumerable<OnnxNode> nodes,
        IEnumerable<OnnxTensor> initializers,
        IEnumerable<(string Name, int ElementType, object[] Dims)> inputs,
        IEnumerable<(string Name, int ElementType, object[] Dims)> outputs)
    {
        var graph = Message(w =>
        {
            foreach (var node in nodes)
            {
                w.WriteTag(1, WireFormat.WireType.LengthDelimited);
                w.WriteBytes(Message(n =>
                {
                    foreach (var i in node.Inputs)
                    {
                        n.WriteTag(1, WireFormat.WireType.LengthDelimited);
                        n.WriteString(i);
                    }

                    foreach (var o in node.Outputs)
                    {
                        n.WriteTag(2, WireFormat.WireType.LengthDelimited);
                        n.WriteString(o);
                    }

                    n.WriteTag(4, WireFormat.WireType.LengthDelimited);
                    n.WriteString(node.OpType);
                    foreach (var a in node.Attributes)
                    {
                        n.WriteTag(5, WireFormat.WireType.LengthDelimited);
                        n.WriteBytes(a);
                    }

                    if (node.Domain.Length > 0)
                    {
                        n.WriteTag(7, WireFormat.WireType.LengthDelimited);
                        n.WriteString(node.Domain);
                    }
                }));
            }

            w.WriteTag(2, WireFormat.WireType.LengthDelimited);
            w.WriteString("test_graph");
            foreach (var t in initializers)
            {
                w.WriteTag(5, WireFormat.WireType.LengthDelimited);
                w.WriteBytes(WriteTensor(t));
            }

            foreach (var (field, list) in new[] { (11, inputs), (12, outputs) })
            {
                foreach (var (name, elementType, dims) in list)
                {
                    w.WriteTag(field, WireFormat.WireType.LengthDelimited);
                    w.WriteBytes(ValueInfo(name, elementType, dims));
                }
            }
        });

        return Message(w =>
        {
            w.WriteTag(1, WireFormat.WireType.Varint);
            w.WriteInt64(irVersion);
            w.WriteTag(2, WireFormat.WireType.LengthDelimited);
            w.WriteString("edgerunner-tests");
            w.WriteTag(7, WireFormat.WireType.LengthDelimited);
            w.WriteBytes(graph);
            foreach (var (domain, version) in opsets)
            {
                w.WriteTag(8, WireFormat.WireType.LengthDelimited);
                w.WriteBytes(Message(o =>
                {
                    o.WriteTag(1, WireFormat.WireType.LengthDelimited);
                    o.WriteString(domain);
                    o.WriteTag(2, WireFormat.WireType.Varint);
                    o.WriteInt64(version);
                }));
            }
        }).ToByteArray();
    }

    /// <summary>An INT attribute (AttributeProto type 2).</summary>
    public static ByteString IntAttribute(string name, long value) => Message(a =>
    {
        a.WriteTag(1, WireFormat.WireType.LengthDelimited);
        a.WriteString(name);
        a.WriteTag(3, WireFormat.WireType.Varint);
        a.WriteInt64(value);
        a.WriteTag(20, WireFormat.WireType.Varint);
        a.WriteInt32(2);
    });

    private static ByteString WriteTensor(OnnxTensor t) => Message(w =>
    {
        foreach (var d in t.Dims)
        {
            w.WriteTag(1, WireFormat.WireType.Varint);
            w.WriteInt64(d);
        }

        w.WriteTag(2, WireFormat.WireType.Varint);
        w.WriteInt32(t.DataType);
        w.WriteTag(8, WireFormat.WireType.LengthDelimited);
        w.WriteString(t.Name);
        var raw = t.DataType == OnnxTensor.Float
            ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Floats.AsSpan()).ToArray()
            : System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Longs.AsSpan()).ToArray();
        w.WriteTag(9, WireFormat.WireType.LengthDelimited);
        w.WriteBytes(ByteString.CopyFrom(raw));
    });

    private static ByteString ValueInfo(string name, int elementType, object[] dims) => Message(v =>
    {
        v.WriteTag(1, WireFormat.WireType.LengthDelimited);
        v.WriteString(name);
        v.WriteTag(2, WireFormat.WireType.LengthDelimited);
        v.WriteBytes(Message(type =>
        {
            type.WriteTag(1, WireFormat.WireType.LengthDelimited);
            type.WriteBytes(Message(tensor =>
            {
                tensor.WriteTag(1, WireFormat.WireType.Varint);
                tensor.WriteInt32(elementType);
                tensor.WriteTag(2, WireFormat.WireType.LengthDelimited);
                tensor.WriteBytes(Message(shape =>
                {
                    foreach (var d in dims)
                    {
                        shape.WriteTag(1, WireFormat.WireType.LengthDelimited);
                        shape.WriteBytes(Message(dim =>
                        {
                            if (d is string param)
                            {
                                dim.WriteTag(2, WireFormat.WireType.LengthDelimited);
                                dim.WriteString(param);
                            }
                            else
                            {
                                dim.WriteTag(1, WireFormat.WireType.Varint);
                                dim.WriteInt64(Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture));
                            }
                        }));
                    }
                }));
            }));
        }));
    });

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var memory = new MemoryStream();
        using (var output = new CodedOutputStream(memory, leaveOpen: true))
        {
            write(output);
        }

        return ByteString.CopyFrom(memory.ToArray());
    }

    private static void ReadGraph(ByteString bytes, List<string> inputs, List<string> outputs, List<OnnxNode> nodes)
    {
        var graph = bytes.CreateCodedInput();
        uint tag;
        while ((tag = graph.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: nodes.Add(ReadNode(graph.ReadBytes())); break;
                case 11: inputs.Add(ReadValueInfoName(graph.ReadBytes())); break;
                case 12: outputs.Add(ReadValueInfoName(graph.ReadBytes())); break;
                default: graph.SkipLastField(); break;
            }
        }
    }

    private static OnnxNode ReadNode(ByteString bytes)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new List<ByteString>();
        string opType = string.Empty, domain = string.Empty;
        var node = bytes.CreateCodedInput();
        uint tag;
        while ((tag = node.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: inputs.Add(node.ReadString()); break;
                case 2: outputs.Add(node.ReadString()); break;
                case 4: opType = node.ReadString(); break;
                case 5: attributes.Add(node.ReadBytes()); break;
                case 7: domain = node.ReadString(); break;
                default: node.SkipLastField(); break;
            }
        }

        return new OnnxNode(opType, domain, inputs, outputs, attributes);
    }

    private static string ReadValueInfoName(ByteString bytes)
    {
        var info = bytes.CreateCodedInput();
        uint tag;
        while ((tag = info.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == 1)
            {
                return info.ReadString();
            }

            info.SkipLastField();
        }

        return string.Empty;
    }

    private static (string, long) ReadOpset(ByteString bytes)
    {
        var opset = bytes.CreateCodedInput();
        string domain = string.Empty;
        long version = 0;
        uint tag;
        while ((tag = opset.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: domain = opset.ReadString(); break;
                case 2: version = opset.ReadInt64(); break;
                default: opset.SkipLastField(); break;
            }
        }

        return (domain, version);
    }

    private static void ReadRepeated(CodedInputStream input, bool packed, Action<CodedInputStream> read)
    {
        if (!packed)
        {
            read(input);
            return;
        }

        var values = input.ReadBytes().CreateCodedInput();
        while (!values.IsAtEnd)
        {
            read(values);
        }
    }
}
