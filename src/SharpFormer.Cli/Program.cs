using System.CommandLine;
using System.CommandLine.Help;
using SharpFormer.Cli;
using SharpFormer.Cli.Commands;

Console.OutputEncoding = System.Text.Encoding.UTF8;

// Named "sharpformer" (the tool's command name) rather than after the assembly, so usage lines read as users type them.
var root = new Command("sharpformer", "SharpFormer: run, inspect and train HuggingFace BERT and GPT-2 models natively in .NET.")
{
    new HelpOption(),
    new VersionOption(),
};
root.Options.Add(CommonOptions.Threads);
root.Options.Add(CommonOptions.Source);
foreach (var command in new[]
{
    DemoCommand.Create(),
    InfoCommand.Create(),
    TokenizeCommand.Create(),
    ChatTemplateCommand.Create(),
    ForwardCommand.Create(),
    SimilarityCommand.Create(),
    EmbedCommand.Create(),
    FillMaskCommand.Create(),
    NspCommand.Create(),
    ClassifyCommand.Create(),
    NerCommand.Create(),
    GenerateCommand.Create(),
    ChatCommand.Create(),
    PerplexityCommand.Create(),
    TrainCommand.Create(),
    AttentionCommand.Create(),
    CausalMaskCommand.Create(),
    CompareCommand.Create(),
    EvaluateCommand.Create(),
    ServeCommand.Create(),
    DownloadCommand.Create(),
    CacheCommand.Create(),
})
    root.Subcommands.Add(command);

return CliRunner.Run(root, args);
