using System.Collections.Concurrent;
using System.Text;

namespace SharpFormer.Tokenizers;

/// <summary>
/// The BPE model of HuggingFace <c>tokenizers</c> and of the slow GPT-2/Qwen2 tokenizers: a word's characters start
/// as one symbol each, and the adjacent pair of lowest merge rank is merged (every occurrence, left to right) until
/// no pair has a rank. Merges are keyed by the two symbols' ids; results are cached per word (thread-safe, bounded).
/// </summary>
internal sealed class BpeModel
{
    const int CacheCapacity = 10_000;                           // as tokenizers' BPE cache

    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<long, (int Rank, int Merged)> _merges;
    readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    readonly bool _ignoreMerges;

    /// <summary>token → id of the model's vocabulary.</summary>
    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    /// <param name="vocab">token → id.</param>
    /// <param name="merges">merge pairs in rank order.</param>
    /// <param name="ignoreMerges">A word that is itself in the vocabulary is one token (Llama 3's <c>ignore_merges</c>).</param>
    /// <param name="where">The file, for messages.</param>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, bool ignoreMerges, string where)
    {
        _vocab = vocab;
        _ignoreMerges = ignoreMerges;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (l, r) = merges[rank];
            if (!vocab.TryGetValue(l, out int li) || !vocab.TryGetValue(r, out int ri) || !vocab.TryGetValue(l + r, out int mi))
                throw new SharpFormerException($"{where}: merge {rank} \"{l} {r}\" uses or makes a token that is not in the vocabulary");
            _merges.TryAdd(Key(li, ri), (rank, mi));            // a repeated merge keeps its first (lowest) rank
        }
    }

    static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>The ids of one pre-tokenized word (already in the model's alphabet).</summary>
    public int[] Encode(string word)
    {
        if (_cache.TryGetValue(word, out var hit)) return hit;
        var ids = _ignoreMerges && _vocab.TryGetValue(word, out int whole) ? [whole] : Merge(word);
        if (_cache.Count < CacheCapacity) _cache.TryAdd(word, ids);
        return ids;
    }

    int[] Merge(string word)
    {
        var symbols = new List<int>(word.Length);
        foreach (var rune in word.EnumerateRunes())
        {
            // A character outside the vocabulary (impossible with the byte-level alphabet) has no id and is dropped,
            // as tokenizers does without an unk_token.
            if (_vocab.TryGetValue(rune.ToString(), out int id)) symbols.Add(id);
        }
        while (symbols.Count > 1)
        {
            int bestRank = int.MaxValue, bestMerged = -1;
            long bestKey = 0;
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                long key = Key(symbols[i], symbols[i + 1]);
                if (_merges.TryGetValue(key, out var m) && m.Rank < bestRank) (bestRank, bestMerged, bestKey) = (m.Rank, m.Merged, key);
            }
            if (bestMerged < 0) break;
            int w = 0;
            for (int i = 0; i < symbols.Count; i++)
            {
                if (i + 1 < symbols.Count && Key(symbols[i], symbols[i + 1]) == bestKey) { symbols[w++] = bestMerged; i++; }
                else symbols[w++] = symbols[i];
            }
            symbols.RemoveRange(w, symbols.Count - w);
        }
        return symbols.ToArray();
    }
}
