using System.CommandLine;
using System.Text.Json;
using SharpFormer.Templates;
using SharpFormer.Tokenizers;

namespace SharpFormer.Cli.Commands;

/// <summary><c>sharpformer chat-template</c>: the prompt a chat model sees for a conversation, rendered by the folder's template.</summary>
public static class ChatTemplateCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var messages = new Option<string>("--messages") { Description = "A JSON file with the list of {\"role\", \"content\"} messages.", Required = true };
        var addPrompt = new Option<bool>("--add-generation-prompt") { Description = "Open the assistant's turn at the end (what generation needs)." };
        var json = CommonOptions.Json();
        var cmd = new Command("chat-template", "Render a conversation with the model folder's chat template, exactly as transformers' apply_chat_template.")
            { model, messages, addPrompt, json };
        cmd.SetAction(r =>
        {
            string dir = r.GetValue(model)!, path = r.GetValue(messages)!;
            if (!File.Exists(path)) throw new SharpFormerException($"{path}: messages file not found");
            JsonDocument doc;
            try { doc = JsonDocument.Parse(Utf8Text.ReadAllBytes(path)); }
            catch (JsonException e) { throw new SharpFormerException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
            using (doc)
            {
                var tokenizer = AutoTokenizer.FromFolder(dir);
                var template = ChatTemplate.FromFolder(dir, tokenizer);
                string text = template.Render(doc.RootElement, r.GetValue(addPrompt));
                if (r.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(new { text, input_ids = template.Encode(text) }, JsonOutput.Options));
                    return 0;
                }
                var stdout = Console.OpenStandardOutput();
                stdout.Write(System.Text.Encoding.UTF8.GetBytes(text));      // exactly the prompt: no added newline
                stdout.Flush();
                return 0;
            }
        });
        return cmd;
    }
}
