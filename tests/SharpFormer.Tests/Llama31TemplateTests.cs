using System.Text.Json;
using SharpFormer.Templates;

namespace SharpFormer.Tests;

/// <summary>Llama 3.1's chat template (tools, tool calls, built-in tools, raise_exception) against Jinja2's own renders (TestData/README.md).</summary>
public class Llama31TemplateTests
{
    static readonly Lazy<JsonElement> Data = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "tests", "SharpFormer.Tests", "TestData", "llama31_chat_template.json");
            if (File.Exists(path))
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                return doc.RootElement.Clone();
            }
        }
        throw new FileNotFoundException("tests/SharpFormer.Tests/TestData/llama31_chat_template.json not found above " + AppContext.BaseDirectory);
    });

    public static TheoryData<string> CaseIds()
    {
        var data = new TheoryData<string>();
        foreach (var c in Data.Value.GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("id").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void RendersAsJinja(string id)
    {
        var c = Data.Value.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("id").GetString() == id);
        var template = JinjaTemplate.Parse(Data.Value.GetProperty("template").GetString()!);
        var variables = c.GetProperty("variables").EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        var functions = new Dictionary<string, Func<IReadOnlyList<object?>, object?>>
        {
            ["raise_exception"] = args => throw new JinjaException("raised: " + args[0]),
        };
        if (c.TryGetProperty("error", out var error))
            Assert.Equal("raised: " + error.GetString(), Assert.Throws<JinjaException>(() => template.Render(variables, functions)).Message);
        else
            Assert.Equal(c.GetProperty("rendered").GetString(), template.Render(variables, functions));
    }
}
