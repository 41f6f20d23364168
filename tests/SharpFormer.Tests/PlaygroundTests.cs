using System.Net;
using System.Text;
using System.Text.Json;
using PuppeteerSharp;
using SharpFormer.AttentionViews;
using SharpFormer.Extensions.AI;
using SharpFormer.Models;
using SharpFormer.Server;
using SharpFormer.Tasks;

namespace SharpFormer.Tests;

/// <summary>
/// A real server on a free loopback port with the shipped models, and Debian's chromium (headless, driven over the
/// DevTools protocol by PuppeteerSharp with the system executable: nothing is downloaded) on its playground.
/// </summary>
public sealed class PlaygroundFixture : IAsyncLifetime
{
    const string ChromiumPath = "/usr/bin/chromium";

    public SharpFormerServer Server { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    public HttpClient Http { get; } = new();
    /// <summary>Where the screenshots go: the test results folder CI collects (TestResults/ at the repository root).</summary>
    public string Screenshots { get; } = Path.Combine(SharedPaths.Repo, "TestResults", "playground");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
            Assert.Fail($"Chromium is missing ({ChromiumPath}): run tests/install-test-deps.sh (installs Debian's chromium and fonts-noto-cjk)");
        var models = new[] { ShippedModels.Gpt2, ShippedModels.Bert, ShippedModels.Sentiment, ShippedModels.Ner }
            .Select(n => ServedModel.Load(ShippedModels.PathOf(n))).ToList();
        Server = new SharpFormerServer(models, new ServerOptions { Port = 0 });
        await Server.StartAsync();
        Http.BaseAddress = new Uri(Server.Address);
        Directory.CreateDirectory(Screenshots);
        Browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = ChromiumPath, Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task DisposeAsync()
    {
        await Browser.CloseAsync();
        Browser.Dispose();
        Http.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// Issue 17 §4, the web playground at <c>/</c>: typed into in headless Chromium, every card must show what the
/// library itself computes for the same input (fill-mask, sentiment, entities, attention weights, a greedy
/// continuation); screenshots are kept in TestResults/playground.
/// </summary>
public class PlaygroundTests(PlaygroundFixture fx) : IClassFixture<PlaygroundFixture>
{
    static string ModelDir(string name) => ShippedModels.PathOf(name);

    /// <summary>A page on the playground, ready (models listed); fails the test on any console error or page exception.</summary>
    async Task<(IPage Page, List<string> Errors)> Open()
    {
        var page = await fx.Browser.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = 1400, Height = 1000 });
        var errors = new List<string>();
        page.Console += (_, e) => { if (e.Message.Type == ConsoleType.Error) errors.Add(e.Message.Text); };
        page.PageError += (_, e) => errors.Add(e.Message);
        page.RequestFailed += (_, e) => errors.Add($"request failed: {e.Request.Url}");
        page.Request += (_, e) =>
        {
            if (!e.Request.Url.StartsWith(fx.Server.Address, StringComparison.Ordinal) && !e.Request.Url.StartsWith("data:", StringComparison.Ordinal))
                errors.Add($"request outside the server: {e.Request.Url}");
        };
        var response = await page.GoToAsync(fx.Server.Address + "/");
        Assert.Equal(HttpStatusCode.OK, response.Status);
        await page.WaitForSelectorAsync("body[data-ready=true]", new WaitForSelectorOptions { Timeout = 30_000 });
        return (page, errors);
    }

    static async Task TypeInto(IPage page, string selector, string text)
    {
        await page.EvaluateFunctionAsync("(s) => { const e = document.querySelector(s); e.value = ''; e.focus(); }", selector);
        await page.TypeAsync(selector, text);
    }

    async Task Shot(IPage page, string name, string? selector = null)
    {
        var file = Path.Combine(fx.Screenshots, name + ".png");
        if (selector is null) await page.ScreenshotAsync(file, new ScreenshotOptions { FullPage = true });
        else await (await page.QuerySelectorAsync(selector)).ScreenshotAsync(file);
        var png = await File.ReadAllBytesAsync(file);
        Assert.True(png.Length > 1000 && png[1] == (byte)'P' && png[2] == (byte)'N' && png[3] == (byte)'G', $"{file} is not a PNG");
    }

    static void AssertNoErrors(List<string> errors) => Assert.True(errors.Count == 0, "browser errors:\n" + string.Join("\n", errors));

    static readonly WaitForSelectorOptions Wait = new() { Timeout = 60_000 };

    [Fact]
    public async Task Playground_PageAndAssetsAreSelfContained()
    {
        foreach (var (path, type) in new[] { ("/", "text/html"), ("/playground/app.js", "text/javascript"), ("/playground/style.css", "text/css") })
        {
            using var r = await fx.Http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal(type, r.Content.Headers.ContentType?.MediaType);
            var body = await r.Content.ReadAsStringAsync();
            Assert.DoesNotContain("https://", body);
            Assert.DoesNotContain("http://", body.Replace("http://www.w3.org/2000/svg", ""));
            Assert.DoesNotContain("@import", body);
            Assert.DoesNotContain("@font-face", body);
            Assert.DoesNotContain("//cdn", body);
        }
        using var missing = await fx.Http.GetAsync("/playground/nothing.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("nothing.js", await missing.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Playground_FillMaskShowsTheLibraryTopToken()
    {
        const string text = "宝玉听了，便笑[MASK]：“你说的是。”";
        var expected = FillMaskPipeline.Load(ModelDir(ShippedModels.Bert)).Predict(text, 5).Masks[0].Candidates;
        var (page, errors) = await Open();
        await TypeInto(page, "#fill-text", text);
        await page.ClickAsync("#fill-run");
        var table = await page.WaitForSelectorAsync("#fill-out .mask-candidates", Wait);
        Assert.Equal(expected[0].TokenStr, await table.EvaluateFunctionAsync<string>("t => t.dataset.topToken"));
        var rows = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#fill-out .mask-candidates td:first-child')].map(td => td.textContent)");
        Assert.Equal(expected.Select(c => c.TokenStr), rows);
        // The sentence is shown with the blank filled by the best token.
        Assert.Equal(expected[0].TokenStr, await page.EvaluateExpressionAsync<string>("document.querySelector('#fill-out .filled b').textContent"));
        await Shot(page, "fill-mask", "#fill");
        AssertNoErrors(errors);
        await page.CloseAsync();
    }

    [Fact]
    public async Task Playground_SentimentShowsTheClassifierLabel()
    {
        var classifier = TextClassifier.Load(ModelDir(ShippedModels.Sentiment));
        var (page, errors) = await Open();
        var seen = new List<string>();
        foreach (var text in new[] { "房间干净，服务热情，下次还来。", "房间又脏又小，服务态度很差，再也不来了。" })
        {
            await TypeInto(page, "#sent-text", text);
            await page.EvaluateFunctionAsync("() => delete document.getElementById('sent-out').dataset.label");
            await page.ClickAsync("#sent-run");
            await page.WaitForSelectorAsync("#sent-out[data-label]", Wait);
            var label = await page.EvaluateExpressionAsync<string>("document.getElementById('sent-out').dataset.label");
            Assert.Equal(classifier.Classify(text).Label, label);
            Assert.Equal(label, await page.EvaluateExpressionAsync<string>("document.querySelector('#sent-out .verdict').textContent"));
            seen.Add(label);
        }
        Assert.Equal(["positive", "negative"], seen);
        await Shot(page, "sentiment", "#sentiment");
        AssertNoErrors(errors);
        await page.CloseAsync();
    }

    [Fact]
    public async Task Playground_EntitiesAreHighlightedAtTheirSpans()
    {
        const string text = "阿里巴巴的总部位于中国杭州市，马云是它的创始人之一。";
        var expected = TokenClassifier.Load(ModelDir(ShippedModels.Ner)).Predict(text, AggregationStrategy.Simple, decoding: TagDecoding.Bio).Entities;
        Assert.NotEmpty(expected);
        var (page, errors) = await Open();
        await TypeInto(page, "#ner-text", text);
        await page.ClickAsync("#ner-run");
        await page.WaitForSelectorAsync("#ner-out mark.ent", Wait);
        var marks = await page.EvaluateExpressionAsync<string[]>(
            "[...document.querySelectorAll('#ner-out mark.ent')].map(m => m.dataset.label + '|' + m.firstChild.textContent)");
        Assert.Equal(expected.Select(e => $"{e.Label}|{text[e.Start..e.End]}"), marks);
        // The highlighted line still reads as the whole text (labels aside).
        var line = await page.EvaluateExpressionAsync<string>(
            "(() => { const c = document.querySelector('#ner-out .ner-text').cloneNode(true); c.querySelectorAll('small').forEach(s => s.remove()); return c.textContent; })()");
        Assert.Equal(text, line);
        // Highlighted: the mark has a background colour.
        var background = await page.EvaluateExpressionAsync<string>("getComputedStyle(document.querySelector('#ner-out mark.ent')).backgroundColor");
        Assert.NotEqual("rgba(0, 0, 0, 0)", background);
        await Shot(page, "entities", "#ner");
        AssertNoErrors(errors);
        await page.CloseAsync();
    }

    [Fact]
    public async Task Playground_EncoderAttentionMatrixHasTokenLabelsAndTheModelsWeights()
    {
        const string text = "今天天气很好适合出门";
        var map = AttentionMap.Compute(ModelDir(ShippedModels.Bert), text);
        var (page, errors) = await Open();
        await page.SelectAsync("#enc-attn-model", ShippedModels.Bert);
        await TypeInto(page, "#enc-attn-text", text);
        await page.ClickAsync("#enc-attn-run");
        await page.WaitForSelectorAsync("#enc-attn-view[data-rendered='layer=0;head=0']", Wait);
        var xLabels = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#enc-attn-view svg.matrix text.xlabel')].map(t => t.textContent)");
        var yLabels = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#enc-attn-view svg.matrix text.ylabel')].map(t => t.textContent)");
        Assert.Equal(map.Labels, xLabels);
        Assert.Equal(map.Labels, yLabels);
        Assert.Equal(["[CLS]", "今"], xLabels[..2]);

        // Another layer and head: the page asks again and every cell's weight is the model's.
        await page.SelectAsync("#enc-attn-view .attn-layer", "2");
        await page.WaitForSelectorAsync("#enc-attn-view[data-rendered='layer=2;head=0']", Wait);
        await page.SelectAsync("#enc-attn-view .attn-head", "1");
        await page.WaitForSelectorAsync("#enc-attn-view[data-rendered='layer=2;head=1']", Wait);
        var cells = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#enc-attn-view svg.matrix rect title')].map(t => t.textContent)");
        Assert.Equal(map.Length * map.Length, cells.Length);
        for (int q = 0; q < map.Length; q++)
            for (int k = 0; k < map.Length; k++)
            {
                // Shown with 3 decimals (of the route's 5): within half a unit of the last digit shown.
                var cell = cells[q * map.Length + k];
                Assert.StartsWith($"{map.Labels[q]} → {map.Labels[k]}: ", cell);
                Assert.Equal(map.Weight(2, 1, q, k), double.Parse(cell[(cell.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture), 0.00051);
            }
        // The head view draws one token label per row on each side.
        Assert.Equal(2 * map.Length, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#enc-attn-view svg.headview text.tok').length"));
        await Shot(page, "encoder-attention", "#enc-attn");
        AssertNoErrors(errors);
        await page.CloseAsync();
    }

    [Fact]
    public async Task Playground_DecoderStreamsTheGreedyContinuationWithProbabilitiesAndItsCausalAttention()
    {
        const string prompt = "床前明月光";
        const int n = 8;
        var dir = ModelDir(ShippedModels.Gpt2);
        var served = fx.Server.Models[ShippedModels.Gpt2];
        var lm = AutoModel.LoadCausalLM(dir, WeightOptions.Inference());
        var promptIds = served.Tokenizer.EncodeForCausalLm(prompt);
        var options = GenerationOptions.FromModelFolder(dir) with { DoSample = false, MaxNewTokens = n, MaxLength = null };
        var expected = Generation.Generate(lm, [promptIds], options).Sequences[0].NewIds;

        var (page, errors) = await Open();
        await TypeInto(page, "#gen-prompt", prompt);
        await TypeInto(page, "#gen-max", n.ToString());
        await TypeInto(page, "#gen-temp", "0");
        await page.ClickAsync("#gen-run");
        await page.WaitForSelectorAsync("#gen-out[data-state=done]", Wait);
        var ids = await page.EvaluateExpressionAsync<int[]>("[...document.querySelectorAll('#gen-out .tok')].map(s => Number(s.dataset.id))");
        Assert.Equal(expected, ids);
        var probabilities = await page.EvaluateExpressionAsync<double[]>("[...document.querySelectorAll('#gen-out .tok')].map(s => Number(s.dataset.p))");
        Assert.All(probabilities, p => Assert.InRange(p, 1e-6, 1.0));
        // Greedy: each token is the most likely one, so the alternatives table (first token, selected) lists it first.
        var firstRow = await page.EvaluateExpressionAsync<string>("document.querySelector('#gen-detail tr:nth-child(2)').className");
        Assert.Equal("chosen", firstRow);
        Assert.True(await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#gen-detail tr').length") >= 6, "fewer than 5 alternatives shown");

        // The causal attention of prompt + continuation: one label per token, grey above the diagonal.
        await page.WaitForSelectorAsync("#dec-attn-view[data-rendered='layer=0;head=0']", Wait);
        var labels = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#dec-attn-view svg.matrix text.xlabel')].map(t => t.textContent)");
        var all = promptIds.Concat(expected).ToArray();
        var map = AttentionMap.OfDecoder(lm, served.Tokenizer, all, ShippedModels.Gpt2);
        Assert.Equal(map.Labels, labels);
        var fills = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#dec-attn-view svg.matrix rect')].map(r => r.getAttribute('fill'))");
        int t = all.Length;
        Assert.Equal(t * t, fills.Length);
        for (int q = 0; q < t; q++)
            for (int k = 0; k < t; k++)
                if (k > q) Assert.Equal("#e5e7eb", fills[q * t + k]);
                else Assert.NotEqual("#e5e7eb", fills[q * t + k]);
        await Shot(page, "decoder");
        await Shot(page, "decoder-generation", "#gen");
        AssertNoErrors(errors);
        await page.CloseAsync();
    }

    [Fact]
    public async Task Playground_EncoderAndDecoderSitSideBySideWithEveryCardFilled()
    {
        var (page, errors) = await Open();
        // Clicked through the DOM: a mouse click goes to coordinates measured just before, and a card that fills in
        // meanwhile moves the next button away from them (the click is lost and its card stays empty).
        foreach (var button in new[] { "#fill-run", "#sent-run", "#ner-run", "#enc-attn-run", "#gen-run" })
            await page.EvaluateFunctionAsync("(s) => document.querySelector(s).click()", button);
        foreach (var done in new[] { "#fill-out .mask-candidates", "#sent-out[data-label]", "#ner-out mark.ent", "#enc-attn-view[data-rendered]",
                                     "#gen-out[data-state=done]", "#dec-attn-view[data-rendered]" })
        {
            try { await page.WaitForSelectorAsync(done, Wait); }
            catch (WaitTaskTimeoutException)
            {
                // Say what the page showed instead (a card's error message), not only that the wait ran out.
                var card = done.Split(' ', '[')[0];
                var shown = await page.EvaluateExpressionAsync<string>($"document.querySelector('{card}').outerHTML.slice(0, 400)");
                Assert.Fail($"{done} did not appear within {Wait.Timeout} ms; {card} shows: {shown}; console: [{string.Join(" | ", errors)}]");
            }
        }
        // Side by side: the decoder column starts to the right of the encoder column, at the same height.
        var boxes = await page.EvaluateExpressionAsync<double[]>(
            "['encoder', 'decoder'].flatMap(id => { const r = document.getElementById(id).getBoundingClientRect(); return [r.left, r.right, r.top]; })");
        Assert.True(boxes[3] >= boxes[1], $"the decoder column (left {boxes[3]}) overlaps the encoder column (right {boxes[1]})");
        Assert.Equal(boxes[2], boxes[5], 1);
        // The default sampling settings are the model's generation_config (sampling, seeded): still one span per token.
        var tokens = await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#gen-out .tok').length");
        Assert.Equal(24, tokens);
        await Shot(page, "overview");
        AssertNoErrors(errors);
        await page.CloseAsync();
    }

    // ---- the JSON routes the page calls ------------------------------------------------------------------

    async Task<(HttpStatusCode Status, string Body)> Post(string path, string json)
    {
        using var r = await fx.Http.PostAsync("/playground/api/" + path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Playground_GenerateStreamsOneEventPerTokenWithSamplingProbabilitiesWithinTopK()
    {
        var (status, body) = await Post("generate", """{"prompt":"床前明月光","max_tokens":5,"temperature":0.8,"top_k":2,"seed":3,"alternatives":4}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var events = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e =>
        {
            var lines = e.Split('\n');
            return (Kind: lines[0]["event: ".Length..], Data: JsonDocument.Parse(lines[1]["data: ".Length..]).RootElement.Clone());
        }).ToList();
        Assert.Equal("prompt", events[0].Kind);
        Assert.Equal("done", events[^1].Kind);
        var tokens = events.Where(e => e.Kind == "token").Select(e => e.Data).ToList();
        Assert.Equal(5, tokens.Count);
        foreach (var tok in tokens)
        {
            var alts = tok.GetProperty("alternatives").EnumerateArray().ToList();
            Assert.Equal(4, alts.Count);
            // top-k 2: only the model's two most likely tokens can be drawn, and their sampling probabilities sum to 1.
            Assert.Equal(1.0, alts[0].GetProperty("sampled_p").GetDouble() + alts[1].GetProperty("sampled_p").GetDouble(), 4);
            Assert.All(alts.Skip(2), a => Assert.Equal(0.0, a.GetProperty("sampled_p").GetDouble()));
            Assert.Contains(alts.Take(2), a => a.GetProperty("id").GetInt32() == tok.GetProperty("id").GetInt32());
            Assert.True(alts[0].GetProperty("p").GetDouble() >= alts[1].GetProperty("p").GetDouble());
        }
        var all = events[^1].Data.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal(events[0].Data.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).Concat(tokens.Select(t => t.GetProperty("id").GetInt32())), all);
    }

    [Theory]
    [InlineData("fill-mask", """{"model":"bert-chinese-small","text":"没有空格"}""", "[MASK]")]
    [InlineData("fill-mask", """{"model":"bert-chinese-small-sentiment","text":"好[MASK]"}""", "not a masked-LM")]
    [InlineData("ner", """{"text":"  "}""", "'text' is empty")]
    [InlineData("attention", """{"model":"bert-chinese-small","text":"你好","layer":9}""", "'layer' 9 is out of range")]
    [InlineData("attention", """{"model":"bert-chinese-small","ids":[1,2]}""", "'ids' are for decoders")]
    [InlineData("generate", """{"prompt":"床前","top_k":-1}""", "'top_k' must be between")]
    [InlineData("generate", """{"prompt":"床前","temperature":5}""", "temperature must be between 0 and 2")]
    [InlineData("classify", """{"model":"bert-chinese-small","text":"好"}""", "not a sequence-classification")]
    public async Task Playground_BadRequestsGetTeiErrors(string route, string json, string message)
    {
        var (status, body) = await Post(route, json);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        using var doc = JsonDocument.Parse(body);
        Assert.Contains(message, doc.RootElement.GetProperty("error").GetString());
        Assert.Equal("validation", doc.RootElement.GetProperty("error_type").GetString());
    }
}
