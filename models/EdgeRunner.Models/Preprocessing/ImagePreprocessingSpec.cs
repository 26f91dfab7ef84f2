namespace EdgeRunner.Models.Preprocessing;

/// <summary>How the source image is fitted to the model's input size.</summary>
public enum ResizeMode
{
    /// <summary>Scale each axis independently to the input size (aspect ratio not kept).</summary>
    Stretch,

    /// <summary>Scale so the shorter side equals <see cref="ImagePreprocessingSpec.ResizeShorterSide"/>, then crop the centre (ImageNet style).</summary>
    CenterCrop,

    /// <summary>Scale to fit inside the input keeping the aspect ratio, pad the rest with <see cref="ImagePreprocessingSpec.PadValue"/> (YOLO style).</summary>
    Letterbox,
}

/// <summary>Channel order the model expects.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue.</summary>
    Rgb,

    /// <summary>Blue, green, red (OpenCV-trained models).</summary>
    Bgr,
}

/// <summary>Tensor memory layout.</summary>
public enum TensorLayout
{
    /// <summary>[N, C, H, W].</summary>
    Nchw,

    /// <summary>[N, H, W, C].</summary>
    Nhwc,
}

/// <summary>
/// Everything needed to turn 8-bit pixels into a model's float input:
/// <c>value = (pixel * Scale - Mean[c]) / Std[c]</c> after resizing.
/// </summary>
public sealed record ImagePreprocessingSpec
{
    /// <summary>Model input width in pixels.</summary>
    public required int Width { get; init; }

    /// <summary>Model input height in pixels.</summary>
    public required int Height { get; init; }

    /// <summary>How the image is fitted.</summary>
    public ResizeMode Resize { get; init; } = ResizeMode.Stretch;

    /// <summary>For <see cref="ResizeMode.CenterCrop"/>: the shorter side after resizing, before cropping (0 = crop size, i.e. no extra margin).</summary>
    public int ResizeShorterSide { get; init; }

    /// <summary>Padding value in pixel units (0–255) for <see cref="ResizeMode.Letterbox"/>.</summary>
    public float PadValue { get; init; } = 114;

    /// <summary>Channel order of the tensor.</summary>
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;

    /// <summary>Tensor layout.</summary>
    public TensorLayout Layout { get; init; } = TensorLayout.Nchw;

    /// <summary>Multiplier applied to the 0–255 pixel value first (1/255 for 0–1 inputs).</summary>
    public float Scale { get; init; } = 1f / 255f;

    /// <summary>Per-channel mean subtracted after scaling, in tensor channel order.</summary>
    public IReadOnlyList<float> Mean { get; init; } = [0f, 0f, 0f];

    /// <summary>Per-channel standard deviation divided by after subtracting the mean, in tensor channel order.</summary>
    public IReadOnlyList<float> Std { get; init; } = [1f, 1f, 1f];

    /// <summary>The tensor shape this spec produces for batch size 1.</summary>
    public long[] TensorShape() => Layout == TensorLayout.Nchw ? [1, 3, Height, Width] : [1, Height, Width, 3];
}
