using System.Text;
using SharpFormer.Checkpoints;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.AttentionViews;

/// <summary>Which kind of transformer produced an attention map: it decides who may attend to whom.</summary>
public enum AttentionKind
{
    /// <summary>Encoder (BERT): every token attends to every token, before and after it.</summary>
    Bidirectional,
    /// <summary>Decoder (GPT-2): position i attends to positions 0..i only.</summary>
    Causal,
}

/// <summary>
/// The attention probabilities of every layer and head of one model on one text, with the tokens they are
/// between. <see cref="Attentions"/> are the model's own output tensors (per layer [1, heads, T, T], batch
/// dimension kept as HuggingFace's <c>output_attentions=True</c> returns them); every view draws from them.
/// Layers, heads, query and key positions are 0-based.
/// </summary>
public sealed class AttentionMap
{
    /// <summary>The model's folder name, shown in titles and error messages.</summary>
    public required string ModelName { get; init; }
    /// <summary>config.json's model_type ("bert", "gpt2", "qwen2", "llama", …).</summary>
    public required string ModelType { get; init; }
    /// <summary>Whether the model is an encoder (bidirectional) or a decoder (causal).</summary>
    public required AttentionKind Kind { get; init; }
    /// <summary>The text the model read.</summary>
    public required string Text { get; init; }
    /// <summary>The token ids the model ran on, one per entry of <see cref="Tokens"/>.</summary>
    public required int[] InputIds { get; init; }
    /// <summary>The tokenizer's tokens (e.g. "[CLS]", "##ing", byte-level "Ġmy").</summary>
    public required string[] Tokens { get; init; }
    /// <summary>Readable labels for drawing: byte-level BPE pieces decoded to text (see <see cref="ReadableLabels"/>).</summary>
    public required string[] Labels { get; init; }
    /// <summary>Per layer [1, heads, T, T].</summary>
    public required IReadOnlyList<Tensor> Attentions { get; init; }
    /// <summary>Key positions that act as "sinks" in the summary statistics: [CLS]/[SEP] for BERT, the first token for GPT-2.</summary>
    public required int[] SinkPositions { get; init; }
    /// <summary>How the sink positions are named in reports: "[CLS]/[SEP]" or "first token".</summary>
    public required string SinkName { get; init; }

    /// <summary>Key/value heads: fewer than <see cref="Heads"/> with grouped-query attention, where query head h reads kv head h / (Heads / KvHeads).</summary>
    public int KvHeads { get; init; }

    /// <summary>How the heads share keys and values, for titles: "" for multi-head attention.</summary>
    public string HeadGrouping => KvHeads > 0 && KvHeads < Heads ? $"grouped-query: {Heads} query heads share {KvHeads} key/value heads" : "";

    /// <summary>The key/value head a query head reads (itself for multi-head attention).</summary>
    public int KvHeadOf(int head) => KvHeads > 0 && KvHeads < Heads ? head / (Heads / KvHeads) : head;

    /// <summary>Number of layers.</summary>
    public int Layers => Attentions.Count;
    /// <summary>Number of attention heads per layer.</summary>
    public int Heads => Attentions[0].Shape[1];
    /// <summary>Number of tokens (T).</summary>
    public int Length => Tokens.Length;
    /// <summary>True for a decoder's causal attention.</summary>
    public bool IsCausal => Kind == AttentionKind.Causal;
    /// <summary>"causal (decoder)" or "bidirectional (encoder)", for reports.</summary>
    public string KindName => IsCausal ? "causal (decoder)" : "bidirectional (encoder)";

    /// <summary>The attention of query <paramref name="query"/> over all keys, for one layer and head (sums to 1).</summary>
    public ReadOnlySpan<float> Row(int layer, int head, int query)
    {
        int t = Length;
        return Attentions[layer].Data.AsSpan(((head * t) + query) * t, t);
    }

    /// <summary>The weight query position <paramref name="query"/> gives key position <paramref name="key"/> in one layer and head.</summary>
    public float Weight(int layer, int head, int query, int key) => Row(layer, head, query)[key];

    /// <summary>One head's [T, T] matrix (query rows, key columns) as a copy.</summary>
    public float[,] Matrix(int layer, int head)
    {
        int t = Length;
        var m = new float[t, t];
        for (int q = 0; q < t; q++)
        {
            var row = Row(layer, head, q);
            for (int k = 0; k < t; k++) m[q, k] = row[k];
        }
        return m;
    }

    /// <summary>Throws a one-line <see cref="SharpFormerException"/> when <paramref name="layer"/> is not a layer of the model.</summary>
    public void CheckLayer(int layer)
    {
        if (layer < 0 || layer >= Layers)
            throw new SharpFormerException($"--layer {layer} is out of range: {ModelName} has {Layers} layers (0..{Layers - 1})");
    }

    /// <summary>Throws a one-line <see cref="SharpFormerException"/> when <paramref name="head"/> is not a head of the model.</summary>
    public void CheckHead(int head)
    {
        if (head < 0 || head >= Heads)
            throw new SharpFormerException($"--head {head} is out of range: {ModelName} has {Heads} heads per layer (0..{Heads - 1})");
    }

    /// <summary>
    /// Tokenizes <paramref name="text"/> as the model reads it (BERT: [CLS] text [SEP]; GPT-2: the plain ids),
    /// runs the model once with <c>output_attentions</c> and keeps every layer's probabilities.
    /// </summary>
    public static AttentionMap Compute(string modelDir, string text)
    {
        RequireText(text);
        var config = ModelConfig.Load(modelDir);
        var tokenizer = AutoTokenizer.FromFolder(modelDir);
        var name = ModelNameOf(modelDir);
        if (config is BertConfig)
            return OfEncoder(BertModel.Load(modelDir, weights: WeightOptions.Inference()), tokenizer, text, name);
        return OfDecoder(AutoModel.LoadCausalLM(modelDir, WeightOptions.Inference()), tokenizer, DecoderIds(tokenizer, text), name, text);
    }

    /// <summary>The plain ids a decoder reads for <paramref name="text"/> (no special tokens), refusing an empty text or one that gives no tokens.</summary>
    public static int[] DecoderIds(ITokenizer tokenizer, string text)
    {
        RequireText(text);
        var ids = tokenizer.EncodeForCausalLm(text);
        return ids.Length > 0 ? ids : throw new SharpFormerException("the text gives no tokens");
    }

    static void RequireText(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new SharpFormerException("the text is empty: give a text to look at");
    }

    /// <summary>The attentions of a loaded BERT encoder over <paramref name="text"/> ([CLS] text [SEP]); <paramref name="name"/> titles the views.</summary>
    public static AttentionMap OfEncoder(BertModel model, ITokenizer tokenizer, string text, string name)
    {
        RequireText(text);
        var enc = tokenizer.Encode(text);
        if (enc.Length > model.Config.MaxPositionEmbeddings)
            throw new SharpFormerException($"the text has {enc.Length} tokens, more than {name} takes ({model.Config.MaxPositionEmbeddings}); shorten it");
        var o = model.Forward(new BertInputs([enc.InputIds], [enc.TokenTypeIds], [enc.AttentionMask]), outputAttentions: true);
        var named = tokenizer.SpecialTokens.Named;
        string cls = named.GetValueOrDefault("cls_token") ?? "[CLS]", sep = named.GetValueOrDefault("sep_token") ?? "[SEP]";
        var sinks = Enumerable.Range(0, enc.Length).Where(i => enc.Tokens[i] == cls || enc.Tokens[i] == sep).ToArray();
        return new AttentionMap
        {
            ModelName = name, ModelType = "bert", Kind = AttentionKind.Bidirectional, Text = text,
            InputIds = enc.InputIds, Tokens = enc.Tokens, Labels = enc.Tokens.ToArray(),
            Attentions = o.Attentions, SinkPositions = sinks, SinkName = $"{cls}/{sep}",
        };
    }

    /// <summary>
    /// The attentions of a loaded decoder over token ids (e.g. a prompt and what was generated from it, exactly as
    /// generated); <paramref name="text"/> is the text they stand for (default: the ids decoded).
    /// </summary>
    public static AttentionMap OfDecoder(ICausalLM model, ITokenizer tokenizer, int[] ids, string name, string? text = null)
    {
        if (ids.Length == 0) throw new SharpFormerException("no tokens to look at");
        if (ids.Length > model.Shape.ContextLength)
            throw new SharpFormerException($"the text has {ids.Length} tokens, more than {name} takes ({model.Shape.ContextLength}); shorten it");
        var o = model.Forward([ids], outputAttentions: true, allLogits: false, outputPresents: false);
        return new AttentionMap
        {
            ModelName = name, ModelType = model.Config.ModelType, Kind = AttentionKind.Causal, Text = text ?? tokenizer.DecodeForCausalLm(ids),
            InputIds = ids, Tokens = ids.Select(tokenizer.IdToToken).ToArray(), Labels = ReadableLabels(tokenizer, ids),
            Attentions = o.Attentions, SinkPositions = [0], SinkName = "first token", KvHeads = model.Shape.KvHeads,
        };
    }

    /// <summary>The model folder's name, as titles show it.</summary>
    public static string ModelNameOf(string modelDir) =>
        Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd(Path.DirectorySeparatorChar)) is { Length: > 0 } n ? n : modelDir;

    /// <summary>
    /// Labels people can read for byte-level BPE tokens: each token's bytes decoded in the context of the whole
    /// text. A token holding only part of a character's UTF-8 bytes shows that character with "…" on the side
    /// where the rest of its bytes are (e.g. 工 split in two tokens: "工…", "…工"). Spaces show as "␣".
    /// WordPiece tokens are returned as they are.
    /// </summary>
    public static string[] ReadableLabels(ITokenizer tokenizer, int[] ids)
    {
        if (tokenizer is not Gpt2Tokenizer g) return ids.Select(tokenizer.IdToToken).ToArray();
        var starts = new int[ids.Length + 1];
        var bytes = new List<byte>();
        for (int i = 0; i < ids.Length; i++)
        {
            starts[i] = bytes.Count;
            if (g.IsSpecial(ids[i])) continue;
            bytes.AddRange(g.TokenBytes(ids[i]).ToArray());
        }
        starts[ids.Length] = bytes.Count;
        // Characters of the whole byte string with their byte ranges (invalid bytes become U+FFFD one byte each).
        var chars = new List<(int Start, int End, string Text)>();
        var all = bytes.ToArray();
        for (int p = 0; p < all.Length;)
        {
            var status = System.Text.Rune.DecodeFromUtf8(all.AsSpan(p), out var rune, out int used);
            if (used <= 0) used = 1;
            chars.Add((p, p + used, status == System.Buffers.OperationStatus.Done ? rune.ToString() : "\uFFFD"));
            p += used;
        }
        var labels = new string[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            if (g.IsSpecial(ids[i])) { labels[i] = tokenizer.IdToToken(ids[i]); continue; }
            int s = starts[i], e = starts[i + 1];
            var sb = new StringBuilder();
            foreach (var c in chars)
            {
                if (c.End <= s || c.Start >= e) continue;
                if (c.Start < s) sb.Append('…');
                sb.Append(c.Text switch { " " => "␣", "\n" => "⏎", "\t" => "⇥", _ => c.Text });
                if (c.End > e) sb.Append('…');
            }
            labels[i] = sb.Length > 0 ? sb.ToString() : tokenizer.IdToToken(ids[i]);
        }
        return labels;
    }
}
