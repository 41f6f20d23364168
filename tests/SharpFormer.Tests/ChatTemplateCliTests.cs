using System.Text.Json;

namespace SharpFormer.Tests;

/// <summary><c>sharpformer chat-template</c> end to end on qwen2-tiny.</summary>
public sealed class ChatTemplateCliTests : IDisposable
{
    static string Qwen2Tiny => SharedPaths.Fixture("qwen2-tiny");
    readonly DirectoryInfo _tmp = Directory.CreateTempSubdirectory("sf-chat-cli-");

    public void Dispose() => _tmp.Delete(true);

    string Write(string name, string content)
    {
        var path = Path.Combine(_tmp.FullName, name);
        File.WriteAllText(path, content);
        return path;
    }

    static JsonElement MultiTurn()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture("tokenizers", "qwen2_chat_template.json")));
        return doc.RootElement.GetProperty("templates").GetProperty("qwen2_instruct").GetProperty("cases")
            .EnumerateArray().Single(c => c.GetProperty("id").GetString() == "multi_turn").Clone();
    }

    /// <summary>Runs chat-template on the fixture's multi-turn conversation; returns the fixture case and the output.</summary>
    (JsonElement Case, string Stdout) RunMultiTurn(params string[] options)
    {
        var c = MultiTurn();
        var r = CliHarness.Run(["chat-template", "--model", Qwen2Tiny, "--messages", Write("conv.json", c.GetProperty("messages").GetRawText()), .. options]);
        Assert.Equal(0, r.ExitCode);
        return (c, r.Stdout);
    }

    [Fact]
    public void PrintsThePromptExactly()
    {
        var (c, stdout) = RunMultiTurn("--add-generation-prompt");
        Assert.Equal(c.GetProperty("add_generation_prompt_true").GetProperty("rendered").GetString(), stdout);
    }

    [Fact]
    public void JsonHasTextAndIds()
    {
        var (c, stdout) = RunMultiTurn("--json");
        using var doc = JsonDocument.Parse(stdout);
        var expected = c.GetProperty("add_generation_prompt_false");
        Assert.Equal(expected.GetProperty("rendered").GetString(), doc.RootElement.GetProperty("text").GetString());
        Assert.Equal(expected.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()), doc.RootElement.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()));
    }

    [Fact]
    public void BadInputIsAOneLineError()
    {
        CliHarness.AssertOneLineError(CliHarness.Run("chat-template", "--model", SharedPaths.Fixture("gpt2-tiny"), "--messages", Write("a.json", "[]")), "no chat_template");
        CliHarness.AssertOneLineError(CliHarness.Run("chat-template", "--model", Qwen2Tiny, "--messages", Write("b.json", "[{\"role\": ")), "not valid JSON");
        CliHarness.AssertOneLineError(CliHarness.Run("chat-template", "--model", Qwen2Tiny, "--messages", Write("c.json", "[{\"role\": \"user\"}]")), "message 0 has no \"content\"");
        CliHarness.AssertOneLineError(CliHarness.Run("chat-template", "--model", Qwen2Tiny, "--messages", Write("d.json", "[{\"content\": \"hi\"}]")), "message 0 has no \"role\"");
        CliHarness.AssertOneLineError(CliHarness.Run("chat-template", "--model", Qwen2Tiny, "--messages", Path.Combine(_tmp.FullName, "none.json")), "not found");
    }
}
