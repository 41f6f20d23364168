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
        var flags = new GenerationFlags();
        var numReturn = new Option<int?>("--num-return-sequences") { Description = "How many continuations to sample (needs sampling when > 1)." };
        var chat = new Option<bool>("--chat") { Description = "Treat the prompt as a user message: render it with the model's chat template (and --system) and print the assistant's reply." };
        var system = new Option<string?>("--system") { Description = "With --chat: a system message before the user's." };
        var json = CommonOptions.Json();
        var prompt = new Argument<string[]>("prompt") { Description = "The prompt (words are joined with spaces; put -- before it if it starts with '-').", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("generate", "Continue a prompt with a causal language model (GPT-2, Qwen2, Llama, Mistral), streaming the generated text.")
        {
            model, dtype, numReturn, chat, system, json, prompt,
        };
        foreach (var option in flags.All) cmd.Options.Add(option);
        cmd.SetAction(r =>
        {
            var dir = r.GetValue(model)!;
            var text = string.Join(' ', r.GetValue(prompt) ?? []);
            if (text.Length == 0) throw new SharpFormerException("the prompt is empty");

            var o = flags.Build(r, dir, r.GetValue(chat) ? ChatCommand.DefaultMaxNewTokens : null);
            if (r.GetValue(numReturn) is int n) o = o with { NumReturnSequences = n };
            o.Validate();
            if (r.GetValue(system) is not null && !r.GetValue(chat)) throw new SharpFormerException("--system needs --chat");
            if (r.GetValue(chat))
            {
                if (o.NumReturnSequences > 1) throw new SharpFormerException("--chat returns one reply: --num-return-sequences must be 1");
                return ChatCommand.OneShot(dir, r.Precision(dtype), r.GetValue(system), text, o, r.GetValue(json));
            }

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
