using System.CommandLine;
using SharpFormer.AttentionViews;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;

namespace SharpFormer.Cli.Commands;

/// <summary>
/// <c>sharpformer demo</c>: the two families at work on the models SharpFormer ships — a decoder writes (a poem
/// continuing 床前明月光), encoders understand (sentiment, entities, news topics, a cloze), and the architectures side by side.
/// </summary>
public static class DemoCommand
{
    static readonly string[] Reviews =
    [
        "这部电影太精彩了，演员的表演非常出色，强烈推荐！",
        "剧情拖沓，浪费了两个小时，非常失望。",
        "画面还可以，但是故事有点老套。",
    ];
    const string NerSentence = "阿里巴巴的总部位于中国杭州市,马云是它的创始人之一。";
    // Written before the model was trained and kept as they are: the model gets about one headline in two right.
    static readonly string[] Headlines =
    [
        "国足客场战平对手，出线形势依然严峻",
        "央行宣布下调存款准备金率0.5个百分点",
        "新款电动汽车续航突破一千公里",
    ];
    const string PoemPrompt = "床前明月光";
    // The base BERT read only 红楼梦 and 水浒传: a line in their register (modern Chinese is outside what it learnt).
    const string Cloze = "宋[MASK]道：“哥哥！”";

    public static Command Create()
    {
        var seed = new Option<int>("--seed") { Description = "Seed for the poem's sampling.", DefaultValueFactory = _ => 42 };
        var dtype = CommonOptions.DType();
        var cmd = new Command("demo", "Run the shipped Chinese models: a poem continuing 床前明月光 (GPT-2), sentiment, entities and news topics (BERT), a cloze, and the architecture comparison.") { seed, dtype };
        cmd.SetAction(r =>
        {
            var gptDir = ShippedModels.PathOf(ShippedModels.Gpt2);
            var precision = r.Precision(dtype);
            Section("GPT-2 (decoder: reads left to right, writes the next character)", $"{ShippedModels.Gpt2}, sampling with seed {r.GetValue(seed)}");
            var gpt = AutoModel.LoadCausalLM(gptDir, WeightOptions.Inference(precision));
            var options = GenerationOptions.FromModelFolder(gptDir) with { Seed = r.GetValue(seed) };
            Console.Write(PoemPrompt);
            Generation.Generate(gpt, AutoTokenizer.FromFolder(gptDir), PoemPrompt, options, (_, text) => Console.Write(text));
            Console.WriteLine();

            Section("BERT sentiment (encoder: reads the whole review at once)", ShippedModels.Sentiment);
            foreach (var c in TextClassifier.Load(ShippedModels.PathOf(ShippedModels.Sentiment), precision: precision).Classify(Reviews))
                Console.WriteLine($"{c.Label,-9} {c.Scores[0].Score:P1}  {c.Text}");

            Section("BERT named entities: person, place, organisation (tags decoded as a valid BIO sequence)", ShippedModels.NerCoarse);
            var ner = TokenClassifier.Load(ShippedModels.PathOf(ShippedModels.NerCoarse), precision: precision).Predict(NerSentence, decoding: TagDecoding.Bio);
            Console.WriteLine(NerSentence);
            if (ner.Entities.Count == 0) Console.WriteLine("  (no entities found)");
            foreach (var e in ner.Entities) Console.WriteLine($"  {e.Label,-13} {e.Score:F3}  [{e.Start},{e.End})  {e.Word}");

            Section("BERT news topics (15 TNEWS categories; this small model gets about one headline in two right)", ShippedModels.Topic);
            foreach (var c in TextClassifier.Load(ShippedModels.PathOf(ShippedModels.Topic), precision: precision).Classify(Headlines))
                Console.WriteLine($"{c.Label,-18} {c.Scores[0].Score:P1}  {c.Text}");

            Section("BERT cloze (masked language model: fills the blank from both sides)", ShippedModels.Bert);
            var fill = FillMaskPipeline.Load(ShippedModels.PathOf(ShippedModels.Bert), precision: precision).Predict(Cloze, topK: 5);
            Console.WriteLine(Cloze);
            foreach (var m in fill.Masks)
                Console.WriteLine("  " + string.Join("   ", m.Candidates.Select(c => $"{c.TokenStr} {c.Score:P1}")));

            Section("The two architectures, from their configs and weights", $"{ShippedModels.Bert} vs {ShippedModels.Gpt2}");
            var comparison = new ModelComparison([ModelSummary.Load(ShippedModels.PathOf(ShippedModels.Bert)), ModelSummary.Load(gptDir)]);
            Console.WriteLine(comparison.Table());
            Console.WriteLine("These are small models trained in minutes on 2 CPU cores: see models/*/README.md for data, metrics and limits.");
            return 0;
        });
        return cmd;
    }

    static void Section(string title, string model)
    {
        Console.WriteLine();
        Console.WriteLine($"== {title}");
        Console.WriteLine($"   model: {model}");
    }
}
