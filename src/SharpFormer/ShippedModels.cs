namespace SharpFormer;

/// <summary>
/// The small Chinese models SharpFormer trains and ships in <c>models/</c> (see their model cards), used when a
/// command is given no <c>--model</c>. They are found next to the program (<c>&lt;app&gt;/models/NAME</c>, where the CLI's
/// build copies them) or in a <c>models/</c> folder of any parent directory (a repository checkout).
/// </summary>
public static class ShippedModels
{
    /// <summary>The GPT-2 that continues classical Chinese verse (MIT).</summary>
    public const string Gpt2 = "gpt2-chinese-poems-small";
    /// <summary>The pre-trained BERT (masked LM + next sentence), base of the task models (MIT).</summary>
    public const string Bert = "bert-chinese-small";
    /// <summary>The sentiment classifier: fine-tuned on ChnSentiCorp and online-shopping reviews, research/teaching use only.</summary>
    public const string Sentiment = "bert-chinese-small-sentiment";
    /// <summary>The CLUENER2020 entity tagger: fine-tuned on CLUENER2020, research/teaching use only.</summary>
    public const string Ner = "bert-chinese-small-ner";
    /// <summary>The question-pair classifier (same meaning or not): fine-tuned on LCQMC, AFQMC and STS-B pairs, research/teaching use only.</summary>
    public const string PairClassifier = "bert-chinese-small-lcqmc";
    /// <summary>The person/place/organisation tagger: fine-tuned on dh_msra, CLUENER2020 and Weibo NER, research/teaching use only.</summary>
    public const string NerCoarse = "bert-chinese-small-ner-coarse";
    /// <summary>The news-headline topic classifier (TNEWS, 15 topics), research/teaching use only.</summary>
    public const string Topic = "bert-chinese-small-tnews";
    /// <summary>The sentence-embedding model (contrastive training on question and caption pairs), research/teaching use only.</summary>
    public const string Embedding = "bert-chinese-small-embed";

    /// <summary>Every shipped model, in the order <c>serve</c> loads them by default.</summary>
    public static IReadOnlyList<string> All { get; } = [Gpt2, Bert, Sentiment, Ner, NerCoarse, PairClassifier, Topic, Embedding];

    /// <summary>The folder of a shipped model, or the path where it was expected (loading it then names the missing folder).</summary>
    public static string PathOf(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "models", name);
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        return Path.Combine(AppContext.BaseDirectory, "models", name);
    }
}
