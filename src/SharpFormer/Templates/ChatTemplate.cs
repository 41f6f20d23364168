using System.Text.Json;
using System.Text.Json.Nodes;
using SharpFormer.Tokenizers;

namespace SharpFormer.Templates;

/// <summary>One message of a conversation, as <c>apply_chat_template</c> takes it.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A model folder's chat template (tokenizer_config.json <c>chat_template</c>) applied as transformers 4.40.2's
/// <c>apply_chat_template</c> does: rendered by <see cref="JinjaTemplate"/> with <c>messages</c>,
/// <c>add_generation_prompt</c>, the tokenizer's special tokens (<c>bos_token</c>, <c>eos_token</c>, …,
/// <c>additional_special_tokens</c>) and <c>raise_exception</c>; the ids are the rendered text encoded without
/// added special tokens (special-token text in it becomes the special ids).
/// </summary>
public sealed class ChatTemplate
{
    readonly JinjaTemplate _template;
    readonly ITokenizer _tokenizer;
    readonly string _where;

    /// <summary>The template's source.</summary>
    public string Source { get; }

    ChatTemplate(string source, ITokenizer tokenizer, string where)
    {
        Source = source;
        _tokenizer = tokenizer;
        _where = where;
        try { _template = JinjaTemplate.Parse(source); }
        catch (JinjaException e) { throw new SharpFormerException($"{where}: chat_template {e.Message}"); }
    }

    /// <summary>A template given as text, with the tokenizer whose special tokens it sees and which encodes its output.</summary>
    public static ChatTemplate FromSource(string source, ITokenizer tokenizer) => new(source, tokenizer, "chat template");

    /// <summary>The chat template of a model folder (a string, or the "default" entry of a list of named templates).</summary>
    public static ChatTemplate FromFolder(string dir, ITokenizer tokenizer)
    {
        string path = Path.Combine(dir, "tokenizer_config.json");
        var config = TokenizerConfig.ReadJson(path) ?? throw new SharpFormerException($"{dir}: no tokenizer_config.json, so no chat_template");
        string source = config["chat_template"] switch
        {
            JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
            JsonArray list => list.OfType<JsonObject>().FirstOrDefault(t => TokenizerConfig.TokenName(t["name"]) == "default")?["template"]?.GetValue<string>()
                              ?? throw new SharpFormerException($"{path}: chat_template is a list without a \"default\" template"),
            null => throw new SharpFormerException($"{path}: no chat_template (this model has no chat format)"),
            _ => throw new SharpFormerException($"{path}: chat_template must be a string or a list of {{name, template}}"),
        };
        return new ChatTemplate(source, tokenizer, path);
    }

    /// <summary>Renders a conversation given as a JSON list of message objects (each with "role" and "content"; other keys are passed on).</summary>
    public string Render(JsonElement messages, bool addGenerationPrompt)
    {
        if (messages.ValueKind != JsonValueKind.Array) throw new SharpFormerException("messages must be a JSON list of {\"role\", \"content\"} objects");
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object) throw new SharpFormerException($"message {i} is not an object with \"role\" and \"content\"");
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String) throw new SharpFormerException($"message {i} has no \"role\" string");
            if (!m.TryGetProperty("content", out _)) throw new SharpFormerException($"message {i} has no \"content\"");
            i++;
        }
        var variables = new Dictionary<string, JsonElement>();
        var special = _tokenizer.SpecialTokens;
        foreach (var (name, token) in special.Named) variables[name] = JsonSerializer.SerializeToElement(token);
        if (special.Additional.Count > 0) variables["additional_special_tokens"] = JsonSerializer.SerializeToElement(special.Additional);
        variables["messages"] = messages;
        variables["add_generation_prompt"] = JsonSerializer.SerializeToElement(addGenerationPrompt);
        var functions = new Dictionary<string, Func<IReadOnlyList<object?>, object?>>
        {
            ["raise_exception"] = args => throw new JinjaException($"raised: {(args.Count > 0 ? Py.Str(args[0]) : "")}"),
        };
        try { return _template.Render(variables, functions); }
        catch (JinjaException e) { throw new SharpFormerException($"{_where}: chat_template {e.Message}"); }
    }

    /// <summary>Renders a conversation of plain messages.</summary>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt) =>
        Render(JsonSerializer.SerializeToElement(messages.Select(m => new Dictionary<string, string> { ["role"] = m.Role, ["content"] = m.Content })), addGenerationPrompt);

    /// <summary>The ids of a rendered prompt: <c>tok.encode(rendered, add_special_tokens=False)</c>.</summary>
    public int[] Encode(string rendered) =>
        _tokenizer.Tokenize(rendered).Select(t => _tokenizer.TokenToId(t) ?? throw new SharpFormerException($"token \"{t}\" is not in the vocabulary")).ToArray();
}
