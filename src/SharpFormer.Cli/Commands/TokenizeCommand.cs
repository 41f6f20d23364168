using System.CommandLine;
using System.Text.Json;
using SharpFormer.Tokenizers;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer tokenize</c>: shows how the model folder's tokenizer cuts a text (and an optional pair) into ids.</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Bert);
        var pair = new Option<string?>("--pair") { Description = "A second text (sentence pair: [CLS] A [SEP] B [SEP] for BERT)." };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncate to this many ids (special tokens included), longest text first." };
        var json = CommonOptions.Json();
        var text = new Argument<string>("text") { Description = "The text to tokenize (any string, the empty one included; put -- before it if it starts with '-')." };
        var cmd = new Command("tokenize", "Tokenize a text with the model folder's tokenizer.") { model, pair, maxLength, json, text };
        cmd.SetAction(r =>
        {
            int? max = r.GetValue(maxLength);
            if (max is < 1) throw new SharpFormerException($"--max-length must be at least 1 (got {max})");
            var tokenizer = AutoTokenizer.FromFolder(r.GetValue(model)!);
            var input = r.GetValue(text) ?? "";
            var pairText = r.GetValue(pair);
            var enc = tokenizer.Encode(input, pairText, max);
            var tokens = tokenizer.Tokenize(input).Concat(pairText is null ? [] : tokenizer.Tokenize(pairText)).ToArray();
            if (r.GetValue(json))
            {
                var obj = new
                {
                    tokens,
                    input_ids = enc.InputIds,
                    token_type_ids = enc.TokenTypeIds,
                    attention_mask = enc.AttentionMask,
                    offsets = enc.Offsets.Select(o => new[] { o.Start, o.End }).ToArray(),
                };
                Console.WriteLine(JsonSerializer.Serialize(obj, JsonOutput.Options));
                return 0;
            }
            Console.WriteLine($"{tokenizer.Kind}: {enc.Length} ids");
            Console.WriteLine($"{"#",4}  {"id",7}  {"type",4}  {"span",9}  token");
            for (int i = 0; i < enc.Length; i++)
            {
                var (s, e) = enc.Offsets[i];
                Console.WriteLine($"{i,4}  {enc.InputIds[i],7}  {enc.TokenTypeIds[i],4}  {$"{s}-{e}",9}  {enc.Tokens[i]}");
            }
            return 0;
        });
        return cmd;
    }
}
