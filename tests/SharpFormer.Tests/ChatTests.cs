using System.Diagnostics;
using System.Text.Json;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Templates;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>
/// Chat on qwen2-tiny (Qwen2-Instruct's template, greedy generation_config): the library's <see cref="ChatModel"/> and
/// <see cref="ChatSession"/>, <c>generate --chat</c> and the <c>chat</c> REPL end to end.
/// </summary>
public class ChatTests
{
    static string Dir => SharedPaths.Fixture("qwen2-tiny");
    static readonly Lazy<ChatModel> Chat = new(() => ChatModel.Load(Dir, WeightOptions.Inference()));
    static GenerationOptions Options(int maxNew) => GenerationOptions.FromModelFolder(Dir) with { MaxNewTokens = maxNew };

    /// <summary>Greedy continuation by full forwards and argmax (no KV cache, no logits processors): an independent reference.</summary>
    static int[] ArgmaxLoop(ICausalLM model, int[] prompt, int steps, IReadOnlyList<int> eos)
    {
        var ids = prompt.ToList();
        var produced = new List<int>();
        for (int i = 0; i < steps; i++)
        {
            var logits = model.Forward([ids.ToArray()], allLogits: false, outputPresents: false).Logits.Data;
            int best = 0;
            for (int v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
            produced.Add(best);
            ids.Add(best);
            if (eos.Contains(best)) break;
        }
        return produced.ToArray();
    }

    [Fact]
    public void Reply_renders_the_template_and_continues_greedily()
    {
        var fixture = JsonDocument.Parse(File.ReadAllBytes(SharedPaths.Fixture("tokenizers", "qwen2_chat_template.json"))).RootElement
            .GetProperty("templates").GetProperty("qwen2_instruct").GetProperty("cases")[0];
        var messages = fixture.GetProperty("messages").EnumerateArray()
            .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
        var expected = fixture.GetProperty("add_generation_prompt_true");
        var chunks = new List<string>();
        var reply = Chat.Value.Reply(messages, Options(8), chunks.Add);
        Assert.Equal(expected.GetProperty("rendered").GetString(), reply.Prompt);
        Assert.Equal(expected.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()), reply.PromptIds);
        var eos = GenerationOptions.FromModelFolder(Dir).EosTokenIds!;
        Assert.Equal(ArgmaxLoop(Chat.Value.Model, reply.PromptIds, 8, eos), reply.NewIds);
        Assert.Equal(reply.Text, string.Concat(chunks));
        Assert.Equal(Chat.Value.Tokenizer.DecodeForCausalLm(reply.NewIds), reply.Text);
    }

    [Fact]
    public async Task Streamed_reply_equals_the_whole_reply_and_stops_when_cancelled()
    {
        List<ChatMessage> messages = [new("user", "你好")];
        var whole = Chat.Value.Reply(messages, Options(10));
        var streamed = new List<string>();
        GenerationFinish? finish = null;
        await foreach (var u in Chat.Value.ReplyStreamAsync(messages, Options(10))) { streamed.Add(u.Text); finish = u.Finish ?? finish; }
        Assert.Equal(whole.Text, string.Concat(streamed));
        Assert.Equal(new GenerationFinish(whole.StoppedOnEos ? "stop" : "length", whole.PromptIds.Length, whole.NewIds.Length), finish);

        using var cts = new CancellationTokenSource();
        int received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in Chat.Value.ReplyStreamAsync(messages, Options(100), cancellationToken: cts.Token))
                if (++received == 1) cts.Cancel();
        });
        Assert.True(received < 100);
    }

    [Fact]
    public void Session_keeps_history_resets_and_sends_the_system_message()
    {
        var session = new ChatSession(Chat.Value, Options(6));
        var first = session.Send("你好");
        Assert.Equal(2, session.Messages.Count);
        var second = session.Send("再见");
        // The second prompt is the whole conversation: the first exchange, then the new message.
        var history = new[] { new ChatMessage("user", "你好"), new ChatMessage("assistant", first.Text), new ChatMessage("user", "再见") };
        Assert.Equal(Chat.Value.Template.Render(history, addGenerationPrompt: true), second.Prompt);
        session.Reset();
        Assert.Empty(session.Messages);
        Assert.Equal(first.NewIds, session.Send("你好").NewIds);
        session.Reset();
        session.SystemPrompt = "Be brief.";
        var withSystem = session.Send("你好");
        Assert.StartsWith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好", withSystem.Prompt);
    }

    [Fact]
    public void Generate_chat_json_matches_the_library()
    {
        var r = CliHarness.Run("generate", "--chat", "--json", "--model", Dir, "--system", "你是助手", "--max-new-tokens", "5", "--", "你好");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var o = JsonDocument.Parse(r.Stdout).RootElement;
        var reply = Chat.Value.Reply([new("system", "你是助手"), new("user", "你好")], Options(5));
        Assert.Equal(reply.Prompt, o.GetProperty("prompt").GetString());
        Assert.Equal(reply.PromptIds, o.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(reply.NewIds, o.GetProperty("new_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(reply.Text, o.GetProperty("text").GetString());
    }

    static CliHarness.Result Repl(string input, params string[] args)
    {
        var psi = CliHarness.StartInfo(["chat", "--model", Dir, .. args]);
        psi.RedirectStandardInput = true;
        psi.StandardInputEncoding = new System.Text.UTF8Encoding(false);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(input);
        p.StandardInput.Close();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("chat did not finish"); }
        return new CliHarness.Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Chat_repl_streams_each_reply_and_follows_its_commands()
    {
        var r = Repl("你好\n再见\n/reset\n你好\n/system Be brief.\n你好\n/exit\nnot read\n", "--max-new-tokens", "6");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var session = new ChatSession(Chat.Value, Options(6));
        var first = session.Send("你好").Text;
        var second = session.Send("再见").Text;
        session.Reset();
        Assert.Equal(first, session.Send("你好").Text);
        session.SystemPrompt = "Be brief.";
        var withSystem = session.Send("你好").Text;
        Assert.Equal($"{first}\n{second}\n{first}\n{withSystem}\n", r.Stdout);
        Assert.Contains("(conversation reset)", r.Stderr);
        Assert.Contains("(system message set)", r.Stderr);
    }

    [Fact]
    public void Chat_errors_are_one_line()
    {
        var unknown = Repl("/bogus\n");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("unknown command /bogus", unknown.Stderr);
        // A conversation longer than qwen2-tiny's 128 positions: one error line, the session goes on to the next message.
        var tooLong = Repl(string.Concat(Enumerable.Repeat("人工智能", 200)) + "\n你好\n", "--max-new-tokens", "2");
        Assert.Equal(1, tooLong.ExitCode);
        Assert.Single(tooLong.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:") && l.Contains("context"));
        Assert.Equal(new ChatSession(Chat.Value, Options(2)).Send("你好").Text + "\n", tooLong.Stdout);   // only the second message's reply
        CliHarness.AssertOneLineError(CliHarness.Run("generate", "--chat", "--model", SharedPaths.Fixture("gpt2-tiny"), "--", "hi"), "no chat_template");
        CliHarness.AssertOneLineError(CliHarness.Run("generate", "--system", "x", "--model", Dir, "--", "hi"), "--system needs --chat");
    }
}
