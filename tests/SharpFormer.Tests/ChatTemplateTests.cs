using System.Text.Json;
using SharpFormer.Templates;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>Chat templates against transformers 4.40.2's apply_chat_template (tokenizers/qwen2_chat_template.json).</summary>
public class ChatTemplateTests
{
    static readonly Lazy<ITokenizer> Tok = new(() => AutoTokenizer.FromFolder(SharedPaths.Fixture("qwen2-tiny")));
    static readonly Lazy<JsonElement> Fixture = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture("tokenizers", "qwen2_chat_template.json")));
        return doc.RootElement.Clone();
    });

    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var t in Fixture.Value.GetProperty("templates").EnumerateObject())
            foreach (var c in t.Value.GetProperty("cases").EnumerateArray())
                foreach (var gen in new[] { false, true }) data.Add(t.Name, c.GetProperty("id").GetString()!, gen);
        return data;
    }

    [Fact]
    public void FixtureHas8ConversationsFor2Templates()
    {
        var templates = Fixture.Value.GetProperty("templates");
        Assert.Equal(["qwen2_instruct", "downloaded_finetune"], templates.EnumerateObject().Select(t => t.Name));
        Assert.All(templates.EnumerateObject(), t => Assert.Equal(8, t.Value.GetProperty("cases").GetArrayLength()));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RendersByteForByte(string templateName, string caseId, bool addGenerationPrompt)
    {
        var t = Fixture.Value.GetProperty("templates").GetProperty(templateName);
        var c = t.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("id").GetString() == caseId);
        var expected = c.GetProperty(addGenerationPrompt ? "add_generation_prompt_true" : "add_generation_prompt_false");
        var template = ChatTemplate.FromSource(t.GetProperty("chat_template").GetString()!, Tok.Value);
        string rendered = template.Render(c.GetProperty("messages"), addGenerationPrompt);
        Assert.Equal(expected.GetProperty("rendered").GetString(), rendered);
        Assert.Equal(expected.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()), template.Encode(rendered));
    }

    [Fact]
    public void FolderTemplateIsQwen2Instructs()
    {
        var template = ChatTemplate.FromFolder(SharedPaths.Fixture("qwen2-tiny"), Tok.Value);
        Assert.Equal(Fixture.Value.GetProperty("templates").GetProperty("qwen2_instruct").GetProperty("chat_template").GetString(), template.Source);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n",
                     template.Render([new ChatMessage("user", "你好")], addGenerationPrompt: true));
    }

    [Theory]
    [InlineData("[{\"content\": \"hi\"}]", "message 0 has no \"role\" string")]
    [InlineData("[{\"role\": \"user\"}]", "message 0 has no \"content\"")]
    [InlineData("{\"role\": \"user\"}", "messages must be a JSON list")]
    public void BadConversationIsAOneLineError(string json, string message)
    {
        var template = ChatTemplate.FromFolder(SharedPaths.Fixture("qwen2-tiny"), Tok.Value);
        using var doc = JsonDocument.Parse(json);
        var e = Assert.Throws<SharpFormerException>(() => template.Render(doc.RootElement, false));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void FolderWithoutTemplateIsAnError()
    {
        var e = Assert.Throws<SharpFormerException>(() => ChatTemplate.FromFolder(SharedPaths.Fixture("gpt2-tiny"), AutoTokenizer.FromFolder(SharedPaths.Fixture("gpt2-tiny"))));
        Assert.Contains("no chat_template", e.Message);
    }
}
