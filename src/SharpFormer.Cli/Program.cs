using System.CommandLine;
using SharpFormer.Cli;
using SharpFormer.Cli.Commands;

Console.OutputEncoding = System.Text.Encoding.UTF8;

var root = new RootCommand("SharpFormer: run, inspect and train HuggingFace BERT and GPT-2 models natively in .NET.");
root.Options.Add(CommonOptions.Threads);
foreach (var command in new[]
{
    InfoCommand.Create(),
    TokenizeCommand.Create(),
    ForwardCommand.Create(),
    SimilarityCommand.Create(),
    EmbedCommand.Create(),
    FillMaskCommand.Create(),
    NspCommand.Create(),
    ClassifyCommand.Create(),
    NerCommand.Create(),
    GenerateCommand.Create(),
    PerplexityCommand.Create(),
    TrainCommand.Create(),
    AttentionCommand.Create(),
    CausalMaskCommand.Create(),
    CompareCommand.Create(),
})
    root.Subcommands.Add(command);

return CliRunner.Run(root, args);
