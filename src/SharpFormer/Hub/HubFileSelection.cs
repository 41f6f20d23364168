using System.Text.RegularExpressions;

namespace SharpFormer.Hub;

/// <summary>
/// Which files of a repository a download fetches: by default only what SharpFormer loads (config, generation config,
/// tokenizer files, chat template, top-level <c>*.safetensors</c> and their index, narrowed to <c>model*.safetensors</c>
/// when the repo has those, so a Mistral-style <c>consolidated.safetensors</c> copy is skipped; <c>pytorch_model*.bin</c>
/// only when there are no safetensors), never TF/Flax/ONNX/msgpack/h5 copies; <c>--include</c> globs add files to that.
/// </summary>
public static class HubFileSelection
{
    static readonly HashSet<string> Always =
    [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "chat_template.jinja",
    ];

    /// <summary>The config and tokenizer files a model folder is looked up for (a repository has some of them).</summary>
    public static IReadOnlyCollection<string> Expected => Always;

    /// <summary>Fails naming <paramref name="endpoint"/> when it lists a file name that could leave the model folder (empty, <c>.</c> or <c>..</c> parts).</summary>
    public static void CheckSafe(IEnumerable<string> files, string endpoint, string repoId)
    {
        foreach (var f in files)
            if (f.Split('/').Any(part => part is "" or "." or ".."))
                throw new SharpFormerException($"{endpoint} listed an unsafe file name '{f}' in {repoId}");
    }

    /// <summary>The files of <paramref name="repoFiles"/> to download, in the repository's order.</summary>
    public static IReadOnlyList<string> Select(IReadOnlyList<string> repoFiles, IReadOnlyList<string> includes)
    {
        bool TopLevel(string f) => !f.Contains('/');
        bool Safetensors(string f) => TopLevel(f) && f.EndsWith(".safetensors", StringComparison.Ordinal);
        bool ModelShard(string f) => Safetensors(f) && f.StartsWith("model", StringComparison.Ordinal);
        bool hasSafetensors = repoFiles.Any(Safetensors), hasModelShards = repoFiles.Any(ModelShard);
        var globs = includes.Select(GlobRegex).ToList();
        return repoFiles.Where(f =>
            globs.Any(g => g.IsMatch(f))
            || TopLevel(f) && (Always.Contains(f)
                               || (hasModelShards ? ModelShard(f) : Safetensors(f))
                               || f.EndsWith(".safetensors.index.json", StringComparison.Ordinal)
                               || !hasSafetensors && f.StartsWith("pytorch_model", StringComparison.Ordinal)
                                                  && (f.EndsWith(".bin", StringComparison.Ordinal) || f.EndsWith(".bin.index.json", StringComparison.Ordinal))))
            .ToList();
    }

    /// <summary>A glob as Python's fnmatch reads it: <c>*</c> any run of characters (slashes included), <c>?</c> one, <c>[...]</c> a set.</summary>
    public static Regex GlobRegex(string glob)
    {
        var pattern = new System.Text.StringBuilder("^");
        for (int i = 0; i < glob.Length; i++)
        {
            char c = glob[i];
            int close = c == '[' ? glob.IndexOf(']', i + 1) : -1;
            if (c == '*') pattern.Append(".*");
            else if (c == '?') pattern.Append('.');
            else if (close > i + 1)
            {
                var set = glob[(i + 1)..close];
                pattern.Append('[').Append(set.StartsWith('!') ? "^" + Regex.Escape(set[1..]) : Regex.Escape(set)).Append(']');
                i = close;
            }
            else pattern.Append(Regex.Escape(c.ToString()));
        }
        return new Regex(pattern.Append('$').ToString(), RegexOptions.CultureInvariant);
    }
}
