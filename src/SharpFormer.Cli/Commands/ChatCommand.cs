using System.CommandLine;
using System.Text.Json;
using SharpFormer.Kernels;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Templates;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer chat</c>: a multi-turn conversation with a chat model in the terminal, the replies streamed; and the
/// one-shot form behind <c>generate --chat</c>.
/// </summary>
public static class ChatCommand
{
    /// <summary>Replies are at most this long unless generation_config.json or a flag says otherwise (HF's default of 20 tokens in all is too short for a chat).</summary>
    public const int DefaultMaxNewTokens = 512;

    const string Help = "commands: /reset (forget the conversation), /system TEXT (set the system message; /system alone removes it), /exit";

    /// <summary>The command.</summary>
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var dtype = CommonOptions.DType();
        var system = new Option<string?>("--system") { Description = "A system message at the start of the conversation." };
        var flags = new GenerationFlags();
        var cmd = new Command("chat", $"Talk with a chat model (its chat template, replies streamed), one user message per line; {Help}.") { model, dtype, system };
        foreach (var option in flags.All) cmd.Options.Add(option);
        cmd.SetAction(r =>
        {
            var dir = r.GetValue(model)!;
            var options = flags.Build(r, dir, DefaultMaxNewTokens);
            var chat = ChatModel.Load(dir, WeightOptions.Inference(r.Precision(dtype)));
            Warnings.ForInitialised(chat.Model.InitialisedParameters);
            return Repl(new ChatSession(chat, options) { SystemPrompt = r.GetValue(system) });
        });
        return cmd;
    }

    /// <summary>
    /// Reads user messages line by line until end of input or /exit. A failed turn (e.g. the conversation outgrew the
    /// context) is one error line and the session goes on; Ctrl-C stops the reply being written (and, between replies,
    /// ends the session with 130).
    /// </summary>
    static int Repl(ChatSession session)
    {
        bool interactive = !Console.IsInputRedirected;
        var stdout = Console.Out;
        CancellationTokenSource? current = null;
        bool interruptedAtPrompt = false;
        Console.CancelKeyPress += (_, e) =>
        {
            var reply = Volatile.Read(ref current);
            if (reply is null) { interruptedAtPrompt = true; return; }   // at the prompt: let the process end
            e.Cancel = true;
            reply.Cancel();
        };
        if (interactive) Console.Error.WriteLine(Help);
        int failures = 0;
        while (true)
        {
            if (interactive) { stdout.Write("> "); stdout.Flush(); }
            var line = Console.ReadLine();
            if (line is null || interruptedAtPrompt) break;
            line = line.Trim();
            if (line.Length == 0) continue;
            if (line.StartsWith('/'))
            {
                var (name, arg) = line.IndexOf(' ') is int sp and > 0 ? (line[..sp], line[(sp + 1)..].Trim()) : (line, "");
                switch (name)
                {
                    case "/exit" or "/quit": return failures > 0 && !interactive ? CliRunner.UserError : 0;
                    case "/reset": session.Reset(); Console.Error.WriteLine("(conversation reset)"); break;
                    case "/system": session.SystemPrompt = arg.Length > 0 ? arg : null; Console.Error.WriteLine(arg.Length > 0 ? "(system message set)" : "(system message removed)"); break;
                    case "/help": Console.Error.WriteLine(Help); break;
                    default: Console.Error.WriteLine($"error: unknown command {name}; {Help}"); failures++; break;
                }
                continue;
            }
            using var cts = new CancellationTokenSource();
            Volatile.Write(ref current, cts);
            try
            {
                var reply = session.Send(line, chunk => { stdout.Write(chunk); stdout.Flush(); }, cts.Token);
                stdout.WriteLine();
                if (!reply.StoppedOnEos) Console.Error.WriteLine($"(reply cut at {reply.NewIds.Length} tokens: --max-new-tokens)");
            }
            catch (OperationCanceledException) { stdout.WriteLine(); Console.Error.WriteLine("(reply interrupted; it is not kept in the conversation)"); }
            catch (SharpFormerException e)
            {
                stdout.Flush();
                Console.Error.WriteLine($"error: {e.Message.ReplaceLineEndings(" ")} (/reset starts a new conversation)");
                failures++;
            }
            finally { Volatile.Write(ref current, null); }
        }
        if (interruptedAtPrompt) return 130;
        return failures > 0 && !interactive ? CliRunner.UserError : 0;
    }

    /// <summary><c>generate --chat</c>: one user message (after an optional system message), the reply streamed or as JSON; <paramref name="options"/> as built with <see cref="DefaultMaxNewTokens"/>.</summary>
    internal static int OneShot(string dir, WeightPrecision precision, string? system, string user, GenerationOptions options, bool json)
    {
        var chat = ChatModel.Load(dir, WeightOptions.Inference(precision));
        Warnings.ForInitialised(chat.Model.InitialisedParameters);
        List<ChatMessage> messages = system is null ? [new("user", user)] : [new("system", system), new("user", user)];
        var stdout = Console.Out;
        var reply = chat.Reply(messages, options, json ? null : chunk => { stdout.Write(chunk); stdout.Flush(); });
        if (json)
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                prompt = reply.Prompt, prompt_ids = reply.PromptIds, new_ids = reply.NewIds, text = reply.Text, stopped_on_eos = reply.StoppedOnEos,
            }, JsonOutput.Options));
        else stdout.WriteLine();
        return 0;
    }
}
