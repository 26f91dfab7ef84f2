using System.Globalization;

namespace EdgeRunner.Models.Postprocessing;

/// <summary>
/// Class names by class id. Reads one label per line; ImageNet synset lines
/// ("n01443537 goldfish, Carassius auratus") become their first common name ("goldfish").
/// </summary>
public sealed class LabelSet
{
    private readonly string[] _names;

    private LabelSet(string[] names) => _names = names;

    /// <summary>Number of labels.</summary>
    public int Count => _names.Length;

    /// <summary>Label of class <paramref name="classId"/>, or "class_N" beyond the list.</summary>
    public string this[int classId] => (uint)classId < (uint)_names.Length ? _names[classId] : Fallback(classId);

    /// <summary>Loads labels from <paramref name="path"/>, a regular file of at most <see cref="Inference.ModelFiles.MaxTextBytes"/> bytes.</summary>
    /// <exception cref="IOException">The file is not a regular file within the limit, or cannot be read.</exception>
    public static LabelSet Load(string path)
    {
        if (Inference.ModelFiles.Problem(path, Inference.ModelFiles.MaxTextBytes) is { } problem)
        {
            throw new IOException($"Label file '{path}' {problem}.");
        }

        var text = System.Text.Encoding.UTF8.GetString(Inference.ModelFiles.ReadAllBytes(path, Inference.ModelFiles.MaxTextBytes));
        // As File.ReadAllLines: a byte-order mark is not part of the first label.
        var lines = text.TrimStart('\uFEFF').ReplaceLineEndings("\n").Split('\n');
        // Trailing blank lines are not classes.
        var count = lines.Length;
        while (count > 0 && string.IsNullOrWhiteSpace(lines[count - 1]))
        {
            count--;
        }

        var names = new string[count];
        for (var i = 0; i < count; i++)
        {
            names[i] = Parse(lines[i]);
        }

        return new LabelSet(names);
    }

    /// <summary>Labels given directly (e.g. from a model manifest).</summary>
    public static LabelSet FromNames(IEnumerable<string> names) => new([.. names]);

    /// <summary>Labels "class_0" … "class_{count-1}" for models without a label file.</summary>
    public static LabelSet Numbered(int count)
    {
        var names = new string[count];
        for (var i = 0; i < count; i++)
        {
            names[i] = Fallback(i);
        }

        return new LabelSet(names);
    }

    internal static string Parse(string line)
    {
        var text = line.Trim();
        // WordNet id: 'n' followed by 8 digits, then the names.
        if (text.Length > 10 && text[0] == 'n' && text[9] == ' ' && text.AsSpan(1, 8).IndexOfAnyExceptInRange('0', '9') < 0)
        {
            text = text[10..];
            var comma = text.IndexOf(',', StringComparison.Ordinal);
            if (comma > 0)
            {
                text = text[..comma];
            }
        }

        return text.Trim();
    }

    private static string Fallback(int classId) => "class_" + classId.ToString(CultureInfo.InvariantCulture);
}
