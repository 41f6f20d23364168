using System.Globalization;
using System.Text.Json.Nodes;

namespace SharpFormer.Tasks;

/// <summary>
/// The JSON shapes of the encoder and decoder tasks' results (HuggingFace's pipeline keys where there is one), shared by
/// the command line's <c>--json</c> output and the HTTP server so both say the same thing.
/// </summary>
public static class TaskJson
{
    /// <summary>A float as a JSON number: float32 printed shortest-round-trip (no spurious double digits).</summary>
    public static double Round(float v) => double.Parse(v.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>Floats as a JSON array (see <see cref="Round"/>).</summary>
    public static JsonArray Floats(IEnumerable<float> values) => new(values.Select(v => (JsonNode)JsonValue.Create(Round(v))).ToArray());

    /// <summary>Marks an object as the output of a randomly initialised head (<paramref name="untrained"/>: the note, or null).</summary>
    static JsonObject Note(JsonObject o, string? untrained)
    {
        if (untrained is not null) { o["head_untrained"] = true; o["note"] = untrained; }
        return o;
    }

    /// <summary>Fill-mask: the text, each mask's candidates (<c>token</c>, <c>token_str</c>, <c>score</c>, <c>sequence</c>), the best filling and the joint fillings.</summary>
    public static JsonObject FillMask(FillMaskResult res, string? untrained = null)
    {
        var o = new JsonObject
        {
            ["text"] = res.Text,
            ["masks"] = new JsonArray(res.Masks.Select(m => (JsonNode)new JsonObject
            {
                ["index"] = m.TokenIndex, ["start"] = m.Start, ["end"] = m.End,
                ["candidates"] = new JsonArray(m.Candidates.Select(c => (JsonNode)new JsonObject
                {
                    ["token"] = c.Token, ["token_str"] = c.TokenStr, ["score"] = Round(c.Score), ["sequence"] = c.Sequence, ["filled"] = c.Filled,
                }).ToArray()),
            }).ToArray()),
            ["filled"] = BestFilling(res),
        };
        if (res.Joint.Count > 0)
            o["joint"] = new JsonArray(res.Joint.Select(j => (JsonNode)new JsonObject
            {
                ["tokens"] = new JsonArray(j.Tokens.Select(t => (JsonNode)JsonValue.Create(t)).ToArray()),
                ["token_strs"] = new JsonArray(j.TokenStrs.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
                ["probability"] = Round(j.Probability), ["filled"] = j.Filled, ["sequence"] = j.Sequence,
            }).ToArray());
        return Note(o, untrained);
    }

    /// <summary>The best filling: the top joint filling with several masks, else the top candidate.</summary>
    public static string BestFilling(FillMaskResult res) => res.Joint.Count > 0 ? res.Joint[0].Filled : res.Masks[0].Candidates[0].Filled;

    /// <summary>Next-sentence prediction: the pair, P(B follows A), the decision and the logits.</summary>
    public static JsonObject NextSentence(NextSentenceResult res, string? untrained = null) => Note(new JsonObject
    {
        ["text"] = res.First, ["text_pair"] = res.Second, ["is_next_probability"] = Round(res.IsNextProbability),
        ["is_next"] = res.IsNext, ["logits"] = Floats(res.Logits),
    }, untrained);

    /// <summary>NER: the text, its entities and, for a long text, the number of windows.</summary>
    public static JsonObject Ner(NerResult res, string? untrained = null)
    {
        var o = new JsonObject
        {
            ["text"] = res.Text,
            ["entities"] = new JsonArray(res.Entities.Select(e => (JsonNode)Entity(e)).ToArray()),
        };
        if (res.Windows > 1) o["windows"] = res.Windows;
        return Note(o, untrained);
    }

    /// <summary>HuggingFace's keys: "entity" + "index" per token (aggregation none), "entity_group" for groups.</summary>
    public static JsonObject Entity(Entity e)
    {
        var o = new JsonObject();
        if (e.IsGroup) o["entity_group"] = e.Label; else o["entity"] = e.Label;
        o["score"] = Round(e.Score);
        if (!e.IsGroup) { o["index"] = e.Index; o["token"] = e.Token; }
        o["word"] = e.Word;
        o["start"] = e.Start;
        o["end"] = e.End;
        return o;
    }

    /// <summary>Perplexity: exp(loss), the loss, the tokens scored and the windows used.</summary>
    public static JsonObject Perplexity(PerplexityResult res) => new()
    {
        ["perplexity"] = res.Perplexity, ["loss"] = res.Loss, ["tokens"] = res.Tokens, ["windows"] = res.Windows,
    };
}
