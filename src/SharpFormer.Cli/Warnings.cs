namespace SharpFormer.Cli;

public static class Warnings
{
    /// <summary>Says on stderr which parameters were randomly initialised because the checkpoint lacks them.</summary>
    public static void ForInitialised(IReadOnlyList<string> names)
    {
        if (names.Count == 0) return;
        var heads = names.Select(n => n.Contains('.') ? n[..n.LastIndexOf('.')] : n).Distinct().ToList();
        Console.Error.WriteLine($"warning: the checkpoint has no weights for {string.Join(", ", heads)}; they were randomly initialised, so their outputs are meaningless until the model is fine-tuned.");
    }
}
