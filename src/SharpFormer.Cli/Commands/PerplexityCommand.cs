using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer perplexity</c>: how well a GPT-2 model predicts a text (sliding window over long texts, HF's method).</summary>
public static class PerplexityCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Gpt2);
        var dtype = CommonOptions.DType();
        var stride = new Option<int?>("--stride") { Description = "Tokens between window starts for texts longer than the context (default n_positions / 2)." };
        var file = new Option<FileInfo?>("--file") { Description = "Read the text from this UTF-8 file instead of the argument." };
        var errors = TaskIo.Errors();
        var json = CommonOptions.Json();
        var text = new Argument<string?>("text") { Description = "The text to score (or use --file; put -- before it if it starts with '-').", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("perplexity", "Perplexity of a text under a causal language model: exp of the mean next-token negative log-likelihood.") { model, dtype, stride, file, errors, json, text };
        cmd.SetAction(r =>
        {
            var arg = r.GetValue(text);
            var path = r.GetValue(file);
            if (arg is not null && path is not null) throw new SharpFormerException("give the text either as an argument or with --file, not both");
            if (arg is null && path is null) throw new SharpFormerException("no text: give it as an argument or with --file FILE");
            var input = path is null ? arg! : TaskIo.ReadUserFile(() => Utf8Text.ReadAllText(path.FullName, r.ReplaceInvalid(errors)));
            if (input.Length == 0) throw new SharpFormerException("the text is empty");
            if (r.GetValue(stride) is int s0 && s0 < 1) throw new SharpFormerException($"--stride must be at least 1 (got {s0})");

            var dir = r.GetValue(model)!;
            var tokenizer = AutoTokenizer.FromFolder(dir);
            var lm = AutoModel.LoadCausalLM(dir, WeightOptions.Inference(r.Precision(dtype)));
            Warnings.ForInitialised(lm.InitialisedParameters);
            var res = Perplexity.Compute(lm, tokenizer, input, r.GetValue(stride));
            if (r.GetValue(json))
            {
                Console.WriteLine(TaskJson.Perplexity(res).ToJsonString(JsonOutput.Options));
                return 0;
            }
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine($"perplexity  {res.Perplexity.ToString("G8", inv)}");
            Console.WriteLine($"loss        {res.Loss.ToString("G8", inv)}");
            Console.WriteLine($"tokens      {res.Tokens}");
            Console.WriteLine($"windows     {res.Windows}");
            return 0;
        });
        return cmd;
    }
}
