using System.Text.Encodings.Web;
using System.Text.Json;

namespace SharpFormer.Cli;

public static class JsonOutput
{
    /// <summary>Compact JSON that keeps Chinese characters readable instead of \u-escaping them.</summary>
    public static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
