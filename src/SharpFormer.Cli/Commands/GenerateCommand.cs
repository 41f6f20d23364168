using System.CommandLine;
using System.Text.Json;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer generate</c>: continues a prompt with a GPT-2 model (HuggingFace generate() semantics), streaming the text.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model(ShippedModels.Gpt2);
        var dtype = CommonOptions.DType();
        var maxNewTokens = new Option<int?>("--max-new-tokens") { Description = "Generate at most this many tokens (wins over --max-length)." };
        var maxLength = new Option<int?>("--max-length") { Description = "Prompt + generated tokens at most (HuggingFace's max_length; default from generation_config.json, else 20)." };
        var greedy = new Option<bool>("--greedy") { Description = "Greedy decoding (always the most likely token), whatever generation_config.json says." };
        var temperature = new Option<float?>("--temperature") { Description = "Sample with this temperature (> 0); implies sampling." };
        var topK = new Option<int?>("--top-k") { Description = "Sample from the K most likely tokens (0 = off; HF's default 50 when sampling); implies sampling." };
        var topP = new Option<float?>("--top-p") { Description = "Nucleus sampling: the smallest set of tokens with probability ≥ P, P in (0, 1]; implies sampling." };
        var repetitionPenalty = new Option<float?>("--repetition-penalty") { Description = "Penalise every token already in the text: score < 0 ? score·R : score/R (1 = off)." };
        var noRepeat = new Option<int?>("--no-repeat-ngram-size") { Description = "Never repeat an n-gram of this size (0 = off)." };
        var seed = new Option<int?>("--seed") { Description = "Seed for sampling: the same seed gives the same text run to run." };
        var numReturn = new Option<int?>("--num-return-sequences") { Description = "How many continuations to sample (needs sampling when > 1)." };
        var json = CommonOptions.Json();
        var prompt = new Argument<string[]>("prompt") { Description = "The prompt (words are joined with spaces; put -- before it if it starts with '-').", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("generate", "Continue a prompt with a causal language model (GPT-2, Qwen2, Llama, Mistral), streaming the generated text.")
        {
            model, dtype, maxNewTokens, maxLength, greedy, temperature, topK, topP, repetitionPenalty, noRepeat, seed, numReturn, json, prompt,
        };
        cmd.SetAction(r =>
        {
            var dir = r.GetValue(model)!;
            var text = string.Join(' ', r.GetValue(prompt) ?? []);
            if (text.Length == 0) throw new SharpFormerException("the prompt is empty");

            // generation_config.json first (HF's defaults where it is silent), then the flags.
            var o = GenerationOptions.FromModelFolder(dir);
            bool samplingFlag = r.GetValue(temperature) is not null || r.GetValue(topK) is not null || r.GetValue(topP) is not null;
            if (r.GetValue(greedy))
            {
                if (samplingFlag) throw new SharpFormerException("--greedy cannot be combined with --temperature, --top-k or --top-p (they only apply to sampling)");
                o = o with { DoSample = false };
            }
            else if (samplingFlag) o = o with { DoSample = true };
            if (r.GetValue(maxNewTokens) is int mnt) o = o with { MaxNewTokens = mnt };
            if (r.GetValue(maxLength) is int ml) o = o with { MaxLength = ml, MaxNewTokens = r.GetValue(maxNewTokens) };
            if (r.GetValue(temperature) is float t) o = o with { Temperature = t };
            if (r.GetValue(topK) is int k) o = o with { TopK = k };
            if (r.GetValue(topP) is float p) o = o with { TopP = p };
            if (r.GetValue(repetitionPenalty) is float rp) o = o with { RepetitionPenalty = rp };
            if (r.GetValue(noRepeat) is int nr) o = o with { NoRepeatNgramSize = nr };
            if (r.GetValue(seed) is int s) o = o with { Seed = s };
            if (r.GetValue(numReturn) is int n) o = o with { NumReturnSequences = n };
            o.Validate();                                          // option errors before the model is loaded

            var tokenizer = AutoTokenizer.FromFolder(dir);
            var lm = AutoModel.LoadCausalLM(dir, WeightOptions.Inference(r.Precision(dtype)));
            Warnings.ForInitialised(lm.InitialisedParameters);
            bool asJson = r.GetValue(json);
            bool stream = !asJson && o.NumReturnSequences == 1;
            var stdout = Console.Out;
            var result = Generation.Generate(lm, tokenizer, text, o, stream ? (_, chunk) => { stdout.Write(chunk); stdout.Flush(); } : null);
            if (result.MaxLengthNotAbovePrompt)
                Console.Error.WriteLine($"warning: max_length is not longer than the prompt ({result.PromptIds[0].Length} tokens); generated one token as HuggingFace does. Use --max-new-tokens.");
            if (result.StoppedAtContextLimit)
                Console.Error.WriteLine($"warning: stopped at the model's context of {lm.Shape.ContextLength} positions.");

            if (asJson)
            {
                var obj = new
                {
                    prompt_ids = result.PromptIds[0],
                    sequences = result.Sequences.Select(q => new { new_ids = q.NewIds, text = q.Text }).ToArray(),
                };
                Console.WriteLine(JsonSerializer.Serialize(obj, JsonOutput.Options));
            }
            else if (stream) Console.WriteLine();
            else
                for (int i = 0; i < result.Sequences.Count; i++)
                {
                    if (i > 0) Console.WriteLine();
                    Console.WriteLine($"=== sequence {i + 1} ===");
                    Console.WriteLine(result.Sequences[i].Text);
                }
            return 0;
        });
        return cmd;
    }
}
