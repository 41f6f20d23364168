using System.CommandLine;
using System.Text.Json;
using SharpFormer.Checkpoints;
using SharpFormer.Models;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer forward</c>: runs the model on id inputs and saves every activation, named as the fixtures name them.</summary>
public static class ForwardCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var dtype = CommonOptions.DType();
        var inputs = new Option<FileInfo>("--inputs") { Description = "JSON: {\"cases\": {\"NAME\": {\"input_ids\": [[...]], \"token_type_ids\", \"attention_mask\", \"position_ids\"}}}.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "The safetensors file to write (atomically).", Required = true }.Checked();
        var cmd = new Command("forward", "Run the model on token ids and save hidden states, attentions and logits to a safetensors file.") { model, dtype, inputs, output };
        cmd.SetAction(r =>
        {
            var cases = ReadCases(r.GetValue(inputs)!.FullName);
            var dir = r.GetValue(model)!;
            var writer = new SafeTensorsWriter();
            switch (ModelConfig.Load(dir))
            {
                case BertConfig:
                    var bert = BertModel.Load(dir, weights: WeightOptions.Inference(r.Precision(dtype)));
                    Warnings.ForInitialised(bert.InitialisedParameters);
                    foreach (var (name, c) in cases) WriteBert(writer, name, bert.Forward(c, outputHiddenStates: true, outputAttentions: true));
                    break;
                default:
                    var lm = AutoModel.LoadCausalLM(dir, WeightOptions.Inference(r.Precision(dtype)));
                    Warnings.ForInitialised(lm.InitialisedParameters);
                    foreach (var (name, c) in cases)
                    {
                        if (c.TokenTypeIds is not null) throw new SharpFormerException($"case '{name}': a causal LM takes no token_type_ids");
                        WriteCausalLM(writer, name, lm.Forward(c.InputIds, c.AttentionMask, c.PositionIds, outputHiddenStates: true, outputAttentions: true));
                    }
                    break;
            }
            writer.Save(r.GetValue(output)!.FullName);
            Console.WriteLine($"wrote {cases.Count} case(s) to {r.GetValue(output)!.FullName}");
            return 0;
        });
        return cmd;
    }

    static void WriteBert(SafeTensorsWriter w, string name, BertOutputs o)
    {
        for (int i = 0; i < o.HiddenStates.Count; i++) w.Add($"{name}.hidden_states.{i}", o.HiddenStates[i]);
        for (int i = 0; i < o.Attentions.Count; i++) w.Add($"{name}.attentions.{i}", o.Attentions[i]);
        w.Add($"{name}.last_hidden_state", o.LastHiddenState);
        if (o.PoolerOutput is not null) w.Add($"{name}.pooler_output", o.PoolerOutput);
        if (o.PredictionLogits is not null) w.Add($"{name}.prediction_logits", o.PredictionLogits);
        if (o.SeqRelationshipLogits is not null) w.Add($"{name}.seq_relationship_logits", o.SeqRelationshipLogits);
        if (o.Logits is not null) w.Add($"{name}.logits", o.Logits);
    }

    static void WriteCausalLM(SafeTensorsWriter w, string name, CausalLMOutputs o)
    {
        w.Add($"{name}.logits", o.Logits);
        for (int i = 0; i < o.HiddenStates.Count; i++) w.Add($"{name}.hidden_states.{i}", o.HiddenStates[i]);
        for (int i = 0; i < o.Attentions.Count; i++) w.Add($"{name}.attentions.{i}", o.Attentions[i]);
        for (int i = 0; i < o.Presents.Count; i++)
        {
            w.Add($"{name}.present.{i}.key", o.Presents[i].Key);
            w.Add($"{name}.present.{i}.value", o.Presents[i].Value);
        }
    }

    /// <summary>Reads the named cases; any other fields (texts, tensor lists) are ignored, so goldens.json files work as they are.</summary>
    internal static List<(string Name, BertInputs Inputs)> ReadCases(string path)
    {
        if (!File.Exists(path)) throw new SharpFormerException($"{path}: file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(Utf8Text.ReadAllBytes(path)); }
        catch (JsonException e) { throw new SharpFormerException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object ||
                !(doc.RootElement.TryGetProperty("cases", out var cases) || doc.RootElement.TryGetProperty("prompts", out cases)) ||
                cases.ValueKind != JsonValueKind.Object)
                throw new SharpFormerException($"{path}: expected an object {{\"cases\": {{\"NAME\": {{\"input_ids\": [[...]]}}}}}}");
            var list = new List<(string, BertInputs)>();
            foreach (var c in cases.EnumerateObject())
            {
                if (!c.Value.TryGetProperty("input_ids", out var ids))
                    throw new SharpFormerException($"{path}: case '{c.Name}' has no input_ids");
                var inputIds = Matrix(path, c.Name, "input_ids", ids)!;
                list.Add((c.Name, new BertInputs(inputIds,
                    Optional(c.Value, "token_type_ids"), Optional(c.Value, "attention_mask"), Optional(c.Value, "position_ids"))));
            }
            if (list.Count == 0) throw new SharpFormerException($"{path}: no cases");
            return list;

            int[][]? Optional(JsonElement e, string field) => e.TryGetProperty(field, out var v) ? Matrix(path, "", field, v) : null;
        }
    }

    static int[][] Matrix(string path, string caseName, string field, JsonElement e)
    {
        try
        {
            // Accept [[...], ...] (a batch) or [...] (one sequence).
            if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() > 0 && e[0].ValueKind == JsonValueKind.Number)
                return [e.EnumerateArray().Select(x => x.GetInt32()).ToArray()];
            var rows = e.EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToArray();
            if (rows.Length == 0 || rows.Any(r => r.Length != rows[0].Length))
                throw new SharpFormerException($"{path}: case '{caseName}' {field} must be a non-empty rectangular [batch, length] array");
            return rows;
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException)
        {
            throw new SharpFormerException($"{path}: case '{caseName}' {field} must be an array of arrays of integers");
        }
    }
}
