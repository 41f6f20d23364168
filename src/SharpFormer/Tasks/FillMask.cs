using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tasks;

/// <summary>One candidate for one [MASK]: HuggingFace fill-mask's <c>token</c>, <c>token_str</c>, <c>score</c>, <c>sequence</c>, plus the text with the mask replaced.</summary>
public sealed record MaskCandidate(int Token, string TokenStr, float Score, string Sequence, string Filled);

/// <summary>The candidates for one [MASK] at token position <see cref="TokenIndex"/> (character span Start..End in the text).</summary>
public sealed record MaskPrediction(int TokenIndex, int Start, int End, IReadOnlyList<MaskCandidate> Candidates);

/// <summary>A filling of every mask at once: chosen ids/strings per mask (left to right), the joint probability (chain rule over the fill order) and the filled text.</summary>
public sealed record JointFilling(IReadOnlyList<int> Tokens, IReadOnlyList<string> TokenStrs, float Probability, string Filled, string Sequence);

/// <summary>The fill-mask result of one text: each mask's candidates and, with two or more masks, the best joint fillings.</summary>
/// <param name="Text">The input text.</param>
/// <param name="Masks">Each [MASK]'s candidates, left to right.</param>
/// <param name="Joint">The best joint fillings (empty with a single mask).</param>
public sealed record FillMaskResult(string Text, IReadOnlyList<MaskPrediction> Masks, IReadOnlyList<JointFilling> Joint);

/// <summary>
/// Fill-mask (the MLM "cloze" task), exactly HuggingFace's <c>fill-mask</c> pipeline per mask: one forward pass,
/// softmax over the vocabulary at each [MASK], the top-k ids with <c>token_str = decode([id])</c> and
/// <c>sequence = decode(ids with that mask replaced, pads removed)</c> (special tokens skipped when the text has one
/// mask, kept when it has several, as HuggingFace does).
/// <para>
/// Several masks (a multi-character Chinese word needs one per character): besides each mask's own candidates (all
/// predicted from the same forward pass, i.e. independently of each other), <see cref="FillMaskResult.Joint"/> gives the
/// best joint fillings from a small beam search that fills the masks <b>one at a time, left to right</b>: every beam
/// is re-run with the masks filled so far, its next mask's top <c>beam</c> tokens extend it, and the <c>beam</c> best
/// partial fillings by summed log-probability survive. The joint probability is the product of the conditional
/// probabilities along that order. Special tokens ([CLS], [SEP], [PAD], [MASK], [UNK]) are never used in joint fillings.
/// </para>
/// </summary>
public sealed class FillMaskPipeline
{
    /// <summary>The encoder and tokenizer.</summary>
    public EncoderSession Session { get; }
    readonly int _maskId;
    readonly string _maskToken;
    readonly HashSet<int> _excludedInJoint;

    /// <summary>A pipeline over a session loaded with the masked-LM head.</summary>
    public FillMaskPipeline(EncoderSession session)
    {
        Session = session;
        _maskToken = session.Tokenizer.SpecialTokens.Named.GetValueOrDefault("mask_token") ?? "[MASK]";
        _maskId = session.RequireTokenId(_maskToken);
        _excludedInJoint = new[] { "[CLS]", "[SEP]", "[PAD]", "[UNK]", _maskToken }
            .Select(t => session.Tokenizer.TokenToId(t)).OfType<int>().ToHashSet();
    }

    /// <summary>Loads the model folder with its masked-LM head.</summary>
    public static FillMaskPipeline Load(string modelDir, int seed = 0, WeightPrecision precision = WeightPrecision.Float32) =>
        new(EncoderSession.Load(modelDir, BertHeads.MaskedLM, seed, precision));

    /// <summary>The mask token of the tokenizer (e.g. "[MASK]").</summary>
    public string MaskToken => _maskToken;

    /// <summary>Fills one text. <paramref name="beam"/> is the beam width of the joint search (default: topK); joint fillings are computed only with ≥ 2 masks.</summary>
    public FillMaskResult Predict(string text, int topK = 5, int? beam = null) => Predict([text], topK, beam)[0];

    /// <summary>Fills every text (see the single-text overload); <paramref name="progress"/> receives the number of texts done.</summary>
    public FillMaskResult[] Predict(IReadOnlyList<string> texts, int topK = 5, int? beam = null, IProgress<int>? progress = null)
    {
        if (topK < 1) throw new SharpFormerException($"top-k must be at least 1 (got {topK})");
        int beamWidth = beam ?? topK;
        if (beamWidth < 1) throw new SharpFormerException($"the beam width must be at least 1 (got {beamWidth})");
        var encodings = texts.Select((t, i) =>
        {
            var e = Session.EncodeChecked(t, what: texts.Count == 1 ? "the text" : $"text {i + 1}");
            if (!e.InputIds.Contains(_maskId))
                throw new SharpFormerException($"{(texts.Count == 1 ? "the text" : $"text {i + 1}")} has no mask token {_maskToken}; write {_maskToken} where a token should be predicted");
            return e;
        }).ToList();
        int v = Session.Config.VocabSize;
        var perMask = Session.RunBatched(encodings, BertHeads.MaskedLM, (o, row, item) =>
        {
            var enc = encodings[item];
            int t = o.PredictionLogits!.Shape[1];
            var masks = new List<MaskPrediction>();
            bool single = enc.InputIds.Count(id => id == _maskId) == 1;
            for (int j = 0; j < enc.Length; j++)
            {
                if (enc.InputIds[j] != _maskId) continue;
                var probs = EncoderSession.SoftmaxOf(o.PredictionLogits.Data.AsSpan((row * t + j) * v, v));
                var cands = TopK(probs, topK, null).Select(id => Candidate(texts[item], enc, j, id, probs[id], single)).ToList();
                masks.Add(new MaskPrediction(j, enc.Offsets[j].Start, enc.Offsets[j].End, cands));
            }
            return masks;
        });
        var results = new FillMaskResult[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            var joint = perMask[i].Count >= 2 ? JointSearch(texts[i], encodings[i], perMask[i], beamWidth, topK) : [];
            results[i] = new FillMaskResult(texts[i], perMask[i], joint);
            progress?.Report(i + 1);
        }
        return results;
    }

    MaskCandidate Candidate(string text, Encoding enc, int position, int id, float score, bool single)
    {
        var ids = (int[])enc.InputIds.Clone();
        ids[position] = id;
        string tokenStr = Session.Tokenizer.Decode([id]);
        string sequence = Session.Tokenizer.Decode(ids, skipSpecialTokens: single);
        return new MaskCandidate(id, tokenStr, score, sequence, Splice(text, enc, [(position, id)]));
    }

    /// <summary>The original text with each mask's character span replaced by its token (a "##" continuation loses its prefix).</summary>
    string Splice(string text, Encoding enc, IEnumerable<(int Position, int Id)> fills)
    {
        var sb = new System.Text.StringBuilder();
        int last = 0;
        foreach (var (pos, id) in fills.OrderBy(f => enc.Offsets[f.Position].Start))
        {
            var (s, e) = enc.Offsets[pos];
            sb.Append(text, last, s - last);
            var tok = Session.Tokenizer.IdToToken(id);
            sb.Append(tok.StartsWith("##", StringComparison.Ordinal) && tok.Length > 2 ? tok[2..] : tok);
            last = e;
        }
        sb.Append(text, last, text.Length - last);
        return sb.ToString();
    }

    /// <summary>Indices of the k largest values, largest first (ties: lower index first).</summary>
    internal static int[] TopK(float[] p, int k, HashSet<int>? excluded)
    {
        k = Math.Min(k, p.Length);
        var heap = new PriorityQueue<int, (float, int)>(k + 1, Comparer<(float P, int I)>.Create((a, b) => a.P != b.P ? a.P.CompareTo(b.P) : b.I.CompareTo(a.I)));
        for (int i = 0; i < p.Length; i++)
        {
            if (excluded is not null && excluded.Contains(i)) continue;
            heap.Enqueue(i, (p[i], i));
            if (heap.Count > k) heap.Dequeue();
        }
        var result = new int[heap.Count];
        for (int i = result.Length - 1; i >= 0; i--) result[i] = heap.Dequeue();
        return result;
    }

    List<JointFilling> JointSearch(string text, Encoding enc, IReadOnlyList<MaskPrediction> masks, int beamWidth, int topK)
    {
        int v = Session.Config.VocabSize;
        var beams = new List<(int[] Ids, double LogP, List<int> Chosen)> { ((int[])enc.InputIds.Clone(), 0.0, new List<int>()) };
        foreach (var mask in masks)
        {
            int pos = mask.TokenIndex;
            var o = Session.Forward(Session.Collate(beams.Select(b => b.Ids).ToList(), beams.Select(_ => enc.TokenTypeIds).ToList()), BertHeads.MaskedLM);
            int t = o.PredictionLogits!.Shape[1];
            var next = new List<(int[] Ids, double LogP, List<int> Chosen)>();
            for (int b = 0; b < beams.Count; b++)
            {
                var probs = EncoderSession.SoftmaxOf(o.PredictionLogits.Data.AsSpan((b * t + pos) * v, v));
                foreach (var id in TopK(probs, beamWidth, _excludedInJoint))
                {
                    var ids = (int[])beams[b].Ids.Clone();
                    ids[pos] = id;
                    next.Add((ids, beams[b].LogP + Math.Log(Math.Max(probs[id], 1e-30f)), [.. beams[b].Chosen, id]));
                }
            }
            beams = next.OrderByDescending(n => n.LogP).Take(beamWidth).ToList();
        }
        return beams.Take(topK).Select(b => new JointFilling(
            b.Chosen, b.Chosen.Select(id => Session.Tokenizer.Decode([id])).ToList(), (float)Math.Exp(b.LogP),
            Splice(text, enc, masks.Select((m, i) => (m.TokenIndex, b.Chosen[i]))),
            Session.Tokenizer.Decode(b.Ids, skipSpecialTokens: true))).ToList();
    }
}
