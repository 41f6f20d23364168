using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using SharpFormer.Extensions.AI;
using SharpFormer.Server;

namespace SharpFormer.Tests;

/// <summary>One Kestrel serving a model of each kind (masked LM + NSP, tagger, pair classifier, chat decoder) and its OpenAPI document.</summary>
public sealed class OpenApiServerFixture : IAsyncLifetime
{
    readonly PairClassifierFolder _pairs = new();
    public SharpFormerServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new();
    public JsonNode Document { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var dirs = new[] { SharedPaths.Fixture("bert-tiny"), SharedPaths.Fixture("bert-tiny-ner"), _pairs.Dir, SharedPaths.Fixture("qwen2-tiny") };
        Server = new SharpFormerServer(dirs.Select(d => ServedModel.Load(d)).ToList(), new ServerOptions { Port = 0, MaxClientBatchSize = 4 });
        await Server.StartAsync();
        Http.BaseAddress = new Uri(Server.Address);
        Document = JsonNode.Parse(await Http.GetStringAsync("/openapi.json"))!;
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        _pairs.Dispose();
    }
}

/// <summary>
/// The OpenAPI document states the real shapes: every POST route documents its body (with an example the running server
/// accepts as it stands) and every route its 200 answer and error statuses; the answers the server gives match the
/// documented schemas; required fields and enumerations are exactly what the handlers require and accept.
/// </summary>
public class OpenApiTests(OpenApiServerFixture fx) : IClassFixture<OpenApiServerFixture>
{
    /// <summary>The fixture model each example that names a model is sent to (the examples name the shipped models).</summary>
    static readonly Dictionary<string, string> FixtureModel = new()
    {
        ["/v1/embeddings"] = "bert-tiny", ["/v1/completions"] = "qwen2-tiny", ["/v1/chat/completions"] = "qwen2-tiny",
    };

    IEnumerable<(string Path, string Method, JsonNode Operation)> Operations() =>
        fx.Document["paths"]!.AsObject().SelectMany(p => p.Value!.AsObject().Select(m => (p.Key, m.Key, m.Value!)));

    IEnumerable<(string Path, JsonNode Operation)> Posts() => Operations().Where(o => o.Method == "post").Select(o => (o.Path, o.Operation));

    static JsonNode BodySchema(JsonNode op) => op["requestBody"]!["content"]!["application/json"]!["schema"]!;

    JsonObject Example(string path, JsonNode op)
    {
        var example = op["requestBody"]!["content"]!["application/json"]!["example"]!.DeepClone().AsObject();
        if (example.ContainsKey("model")) example["model"] = FixtureModel[path];
        return example;
    }

    async Task<(HttpStatusCode Status, string? MediaType, string Body)> Post(string path, JsonNode body)
    {
        using var response = await fx.Http.PostAsync(path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public void Every_POST_route_documents_its_body_an_example_and_every_route_its_answers()
    {
        var posts = Posts().ToList();
        Assert.Equal(17, posts.Count);   // 3 OpenAI, 4 TEI, 5 tasks, 5 playground
        foreach (var (path, op) in posts)
        {
            var properties = BodySchema(op)["properties"]?.AsObject();
            Assert.True(properties is { Count: > 0 }, $"POST {path}: the body schema has no properties");
            foreach (var (name, schema) in properties!)
                Assert.False(string.IsNullOrWhiteSpace(schema!["description"]?.GetValue<string>()), $"POST {path}: '{name}' has no description");
            Assert.NotNull(op["requestBody"]!["content"]!["application/json"]!["example"]);
        }
        foreach (var (path, method, op) in Operations())
        {
            var responses = op["responses"]!.AsObject();
            var ok = responses["200"]?["content"]?.AsObject();
            Assert.True(ok is { Count: > 0 } && ok.All(c => c.Value!["schema"] is not null), $"{method} {path}: the 200 answer has no schema");
            foreach (var (status, response) in responses.Where(r => r.Key != "200"))
            {
                var schema = Resolve(response!["content"]!["application/json"]!["schema"]!);
                // Each family's error shape: OpenAI's {"error": {message, type, param, code}} under /v1, TEI's {"error", "error_type"} elsewhere.
                if (path.StartsWith("/v1/", StringComparison.Ordinal))
                    Assert.Equal(["code", "message", "param", "type"], schema["properties"]!["error"]!["required"]!.AsArray().Select(n => n!.GetValue<string>()).Order());
                else if (path != "/health")
                    Assert.Equal(["error", "error_type"], schema["required"]!.AsArray().Select(n => n!.GetValue<string>()).Order());
            }
        }
        var rerank = fx.Document["paths"]!["/rerank"]!["post"]!["responses"]!.AsObject();
        Assert.Equal(["200", "404", "413", "422", "424", "429", "503"], rerank.Select(r => r.Key));
        Assert.NotNull(rerank["429"]!["headers"]!["Retry-After"]);
        var embeddings = fx.Document["paths"]!["/v1/embeddings"]!["post"]!["responses"]!.AsObject();
        Assert.Equal(["200", "400", "404", "413", "429", "500", "503"], embeddings.Select(r => r.Key));
        Assert.Contains(fx.Document["paths"]!["/info"]!["get"]!["parameters"]!.AsArray(), p => p!["name"]!.GetValue<string>() == "model" && p["in"]!.GetValue<string>() == "query");
    }

    [Fact]
    public async Task Every_example_is_accepted_as_it_stands_and_every_json_answer_matches_its_documented_schema()
    {
        foreach (var (path, op) in Posts())
        {
            var example = Example(path, op);
            Assert.Empty(SchemaErrors(BodySchema(op), example, $"POST {path} example"));
            var (status, mediaType, body) = await Post(path, example);
            Assert.True((int)status is >= 200 and < 300, $"POST {path} {example.ToJsonString()}: {(int)status} {body}");
            var documented = op["responses"]!["200"]!["content"]![mediaType!];
            Assert.True(documented is not null, $"POST {path} answered {mediaType}, which its 200 does not document");
            if (mediaType == "application/json") Assert.Empty(SchemaErrors(documented!["schema"]!, JsonNode.Parse(body), $"POST {path} answer"));
            else Assert.StartsWith(path == "/playground/api/generate" ? "event: " : "data: ", body);
        }
        foreach (var (path, method, op) in Operations().Where(o => o.Method == "get" && o.Path is not ("/metrics" or "/health")))
        {
            var url = path.Replace("{id}", "qwen2-tiny");
            using var response = await fx.Http.GetAsync(url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var schema = op["responses"]!["200"]!["content"]!["application/json"]!["schema"]!;
            Assert.Empty(SchemaErrors(schema, JsonNode.Parse(await response.Content.ReadAsStringAsync()), $"GET {url} answer"));
        }
        var (_, _, batch) = await Post("/fill-mask", new JsonObject { ["inputs"] = new JsonArray("今天[MASK]气", "[MASK][MASK]很好") });
        Assert.Empty(SchemaErrors(fx.Document["paths"]!["/fill-mask"]!["post"]!["responses"]!["200"]!["content"]!["application/json"]!["schema"]!, JsonNode.Parse(batch), "a batch"));
    }

    [Fact]
    public async Task Leaving_out_a_required_field_is_refused_with_a_documented_status()
    {
        int checkedFields = 0;
        foreach (var (path, op) in Posts())
        {
            foreach (var name in BodySchema(op)["required"]?.AsArray().Select(n => n!.GetValue<string>()) ?? [])
            {
                var example = Example(path, op);
                example.Remove(name);
                var (status, _, body) = await Post(path, example);
                Assert.True((int)status is >= 400 and < 500, $"POST {path} without '{name}': {(int)status} {body}");
                Assert.NotNull(op["responses"]![((int)status).ToString()]);
                Assert.Contains(name, body);
                checkedFields++;
            }
        }
        Assert.True(checkedFields >= 15, $"only {checkedFields} required fields");
        Assert.Equal(["input"], RequiredOf("/v1/embeddings"));
        Assert.Equal(["query", "texts"], RequiredOf("/rerank"));
        Assert.Equal(["messages"], RequiredOf("/v1/chat/completions"));
    }

    string[] RequiredOf(string path) => BodySchema(fx.Document["paths"]![path]!["post"]!)["required"]!.AsArray().Select(n => n!.GetValue<string>()).Order().ToArray();

    [Theory]
    [InlineData("/v1/embeddings", "encoding_format", new[] { "float", "base64" }, "int8", 400)]
    [InlineData("/ner", "aggregation_strategy", new[] { "none", "simple", "first", "average", "max" }, "longest", 422)]
    public async Task A_body_enum_lists_exactly_the_values_the_handler_accepts(string path, string field, string[] values, string outside, int refused)
    {
        var op = fx.Document["paths"]![path]!["post"]!;
        var documented = BodySchema(op)["properties"]![field]!["enum"]!.AsArray().Select(v => v!.GetValue<string>()).ToArray();
        Assert.Equal(values, documented);
        foreach (var value in documented.Append(outside))
        {
            var example = Example(path, op);
            example[field] = value;
            var (status, _, body) = await Post(path, example);
            Assert.True(value == outside ? (int)status == refused : status == HttpStatusCode.OK, $"{field} = {value}: {(int)status} {body}");
        }
        Assert.NotNull(op["responses"]![refused.ToString()]);
    }

    [Fact]
    public async Task Attentions_format_parameter_lists_exactly_json_and_html()
    {
        var op = fx.Document["paths"]!["/attention"]!["post"]!;
        var format = Assert.Single(op["parameters"]!.AsArray(), p => p!["name"]!.GetValue<string>() == "format")!;
        Assert.Equal("query", format["in"]!.GetValue<string>());
        Assert.Equal(["json", "html"], format["schema"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>()));
        var example = Example("/attention", op);
        Assert.Equal((HttpStatusCode.OK, "application/json"), (await Post("/attention?format=json", example)) is var j ? (j.Status, j.MediaType) : default);
        Assert.Equal((HttpStatusCode.OK, "text/html"), (await Post("/attention?format=html", example)) is var h ? (h.Status, h.MediaType) : default);
        Assert.NotNull(op["responses"]!["200"]!["content"]!["text/html"]);
        var (status, _, body) = await Post("/attention?format=xml", example);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Contains("'format'", body);
        Assert.NotNull(op["responses"]!["422"]);
    }

    /// <summary>A schema, or the one its $ref names under components.</summary>
    JsonNode Resolve(JsonNode schema) => schema["$ref"]?.GetValue<string>() is { } id
        ? fx.Document["components"]!["schemas"]![id["#/components/schemas/".Length..]]!
        : schema;

    /// <summary>
    /// Where <paramref name="value"/> departs from <paramref name="schema"/> (the JSON Schema subset the document uses:
    /// type, properties, required, items, additionalProperties, oneOf, anyOf, enum, minItems, maxItems).
    /// </summary>
    List<string> SchemaErrors(JsonNode schema, JsonNode? value, string at)
    {
        schema = Resolve(schema);
        var errors = new List<string>();
        if (schema["oneOf"] is JsonArray one)
        {
            int matches = one.Count(s => SchemaErrors(s!, value, at).Count == 0);
            if (matches != 1) errors.Add($"{at}: matches {matches} of oneOf's {one.Count} alternatives");
            return errors;
        }
        if (schema["anyOf"] is JsonArray any)
        {
            if (!any.Any(s => SchemaErrors(s!, value, at).Count == 0)) errors.Add($"{at}: matches none of anyOf");
            return errors;
        }
        var types = schema["type"] switch
        {
            JsonArray a => a.Select(t => t!.GetValue<string>()).ToArray(),
            JsonValue v => [v.GetValue<string>()],
            _ => [],
        };
        string kind = value switch
        {
            null => "null",
            JsonObject => "object",
            JsonArray => "array",
            JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.String => "string",
            JsonValue v when v.GetValueKind() is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False => "boolean",
            _ => double.IsInteger(value.GetValue<double>()) ? "integer" : "number",
        };
        if (types.Length > 0 && !types.Contains(kind) && !(kind == "integer" && types.Contains("number")))
        {
            errors.Add($"{at}: {kind}, documented {string.Join("|", types)}");
            return errors;
        }
        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, value))) errors.Add($"{at}: {value?.ToJsonString()} is not in its enum");
        if (value is JsonObject o)
        {
            foreach (var name in schema["required"]?.AsArray().Select(n => n!.GetValue<string>()) ?? [])
                if (!o.ContainsKey(name)) errors.Add($"{at}: '{name}' is missing");
            var properties = schema["properties"]?.AsObject();
            foreach (var (name, v) in o)
            {
                if (properties?[name] is { } p) errors.AddRange(SchemaErrors(p, v, $"{at}.{name}"));
                else if (schema["additionalProperties"] is JsonObject extra) errors.AddRange(SchemaErrors(extra, v, $"{at}.{name}"));
                else if (properties is not null) errors.Add($"{at}: '{name}' is not documented");
            }
        }
        if (value is JsonArray items)
        {
            if (schema["minItems"]?.GetValue<int>() is int min && items.Count < min) errors.Add($"{at}: {items.Count} items < {min}");
            if (schema["maxItems"]?.GetValue<int>() is int max && items.Count > max) errors.Add($"{at}: {items.Count} items > {max}");
            if (schema["items"] is { } item) for (int i = 0; i < items.Count; i++) errors.AddRange(SchemaErrors(item, items[i], $"{at}[{i}]"));
        }
        return errors;
    }
}
