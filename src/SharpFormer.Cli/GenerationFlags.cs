using System.CommandLine;
using SharpFormer.Tasks;

namespace SharpFormer.Cli;

/// <summary>The sampling and length options of <c>generate</c> and <c>chat</c>, and how they override generation_config.json.</summary>
public sealed class GenerationFlags
{
    readonly Option<int?> _maxNewTokens = new("--max-new-tokens") { Description = "Generate at most this many tokens (wins over --max-length)." };
    readonly Option<int?> _maxLength = new("--max-length") { Description = "Prompt + generated tokens at most (HuggingFace's max_length; default from generation_config.json, else 20)." };
    readonly Option<bool> _greedy = new("--greedy") { Description = "Greedy decoding (always the most likely token), whatever generation_config.json says." };
    readonly Option<float?> _temperature = new("--temperature") { Description = "Sample with this temperature (> 0); implies sampling." };
    readonly Option<int?> _topK = new("--top-k") { Description = "Sample from the K most likely tokens (0 = off; HF's default 50 when sampling); implies sampling." };
    readonly Option<float?> _topP = new("--top-p") { Description = "Nucleus sampling: the smallest set of tokens with probability ≥ P, P in (0, 1]; implies sampling." };
    readonly Option<float?> _repetitionPenalty = new("--repetition-penalty") { Description = "Penalise every token already in the text: score < 0 ? score·R : score/R (1 = off)." };
    readonly Option<int?> _noRepeat = new("--no-repeat-ngram-size") { Description = "Never repeat an n-gram of this size (0 = off)." };
    readonly Option<int?> _seed = new("--seed") { Description = "Seed for sampling: the same seed gives the same text run to run." };

    /// <summary>The options, to add to a command.</summary>
    public IEnumerable<Option> All => [_maxNewTokens, _maxLength, _greedy, _temperature, _topK, _topP, _repetitionPenalty, _noRepeat, _seed];

    /// <summary>
    /// generation_config.json of <paramref name="modelDir"/> (HF's defaults where it is silent), then the flags;
    /// <paramref name="defaultMaxNewTokens"/> applies when neither the flags nor the file limit the length. Validated.
    /// </summary>
    public GenerationOptions Build(ParseResult r, string modelDir, int? defaultMaxNewTokens = null)
    {
        var o = GenerationOptions.FromModelFolder(modelDir);
        if (defaultMaxNewTokens is int d && o.MaxNewTokens is null && o.MaxLength is null) o = o with { MaxNewTokens = d };
        bool samplingFlag = r.GetValue(_temperature) is not null || r.GetValue(_topK) is not null || r.GetValue(_topP) is not null;
        if (r.GetValue(_greedy))
        {
            if (samplingFlag) throw new SharpFormerException("--greedy cannot be combined with --temperature, --top-k or --top-p (they only apply to sampling)");
            o = o with { DoSample = false };
        }
        else if (samplingFlag) o = o with { DoSample = true };
        if (r.GetValue(_maxNewTokens) is int mnt) o = o with { MaxNewTokens = mnt };
        if (r.GetValue(_maxLength) is int ml) o = o with { MaxLength = ml, MaxNewTokens = r.GetValue(_maxNewTokens) };
        if (r.GetValue(_temperature) is float t) o = o with { Temperature = t };
        if (r.GetValue(_topK) is int k) o = o with { TopK = k };
        if (r.GetValue(_topP) is float p) o = o with { TopP = p };
        if (r.GetValue(_repetitionPenalty) is float rp) o = o with { RepetitionPenalty = rp };
        if (r.GetValue(_noRepeat) is int nr) o = o with { NoRepeatNgramSize = nr };
        if (r.GetValue(_seed) is int s) o = o with { Seed = s };
        o.Validate();                                          // option errors before the model is loaded
        return o;
    }
}
