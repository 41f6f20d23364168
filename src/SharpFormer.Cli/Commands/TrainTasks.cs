using System.CommandLine;
using System.Text.Json.Nodes;
using SharpFormer.Models;
using SharpFormer.Tasks;
using SharpFormer.Tokenizers;
using SharpFormer.Training;

namespace SharpFormer.Cli.Commands;

/// <summary>Helpers the BERT train subcommands share.</summary>
internal static class TrainBert
{
    public static int Id(ITokenizer tok, string token) =>
        tok.TokenToId(token) ?? throw new SharpFormerException($"the tokenizer has no {token} token (a BERT WordPiece vocabulary is needed)");

    public static BertTraining Wrap(BertModel model, ParseResult r, TrainOptionSet o)
    {
        var tr = new BertTraining(model, (ulong)r.GetValue(o.Seed));
        if (r.GetValue(o.NoDropout)) tr.DisableDropout();
        return tr;
    }

    public static void Warn(IReadOnlyList<string> initialised)
    {
        if (initialised.Count > 0)
            Console.Error.WriteLine($"note: newly initialised (not in the checkpoint): {string.Join(", ", initialised)}");
    }

    /// <summary>What a fine-tuning command has once its options are read: data, labels, tokenizer and the model to train.</summary>
    public sealed record FineTuning<T>(string TokenizerDir, ITokenizer Tokenizer, List<string> Labels, List<T> Train, List<T>? Eval,
                                       BertModel Model, BertTraining Training, int MaxLength, int BatchSize, int Seed, int PadId);

    /// <summary>
    /// The setup `train classify` and `train ner` share: tokenizer, label set (--labels, the model's id2label, else
    /// <paramref name="labelsFromData"/>), train/eval data read with <paramref name="read"/>, and the model with <paramref name="head"/>.
    /// </summary>
    public static FineTuning<T> Prepare<T>(ParseResult r, TrainOptionSet o, Option<string?> labels, BertHeads head, string architecture,
                                           Func<string, IReadOnlyList<string>?, List<T>> read, Func<List<T>, List<string>> labelsFromData)
    {
        int maxLength = o.Validate(r);
        string? modelDir = r.GetValue(o.Model);
        var tokDir = o.TokenizerDir(r)!;
        var tok = AutoTokenizer.FromFolder(tokDir);
        var labelSet = LabelsFromOptions(r.GetValue(labels), modelDir, architecture);
        var train = read(r.GetValue(o.Data)!, labelSet);
        labelSet ??= labelsFromData(train);
        var eval = r.GetValue(o.Eval) is string ep ? read(ep, labelSet) : null;
        var model = TrainingModels.Bert(modelDir, r.GetValue(o.Config), head, labelSet, r.GetValue(o.Seed), out var init, r.GetValue(o.ReinitLayers));
        Warn(init);
        if (r.GetValue(o.ReinitLayers) is int n and > 0) Console.Error.WriteLine($"note: re-initialised the top {n} encoder layer(s)");
        return new FineTuning<T>(tokDir, tok, labelSet, train, eval, model, Wrap(model, r, o),
            maxLength, r.GetValue(o.BatchSize), r.GetValue(o.Seed), model.Config.PadTokenId);
    }

    /// <summary>The label set: --labels, else the model's own non-default id2label for that head, else the data's labels sorted.</summary>
    public static List<string>? LabelsFromOptions(string? labelsOpt, string? modelDir, string wantArchitecture)
    {
        if (labelsOpt is not null)
        {
            var l = labelsOpt.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
            if (l.Count == 0 || l.Distinct().Count() != l.Count) throw new SharpFormerException("--labels must be distinct, comma-separated label names");
            return l;
        }
        if (modelDir is not null && ModelConfig.Load(modelDir) is BertConfig c && c.Architecture == wantArchitecture
            && c.Id2Label.Count > 0 && !c.Id2Label.Values.All(v => v.StartsWith("LABEL_", StringComparison.Ordinal)))
            return c.Id2Label.OrderBy(p => p.Key).Select(p => p.Value).ToList();
        return null;
    }
}

/// <summary><c>train classify</c>: fine-tune a sequence classifier on JSONL (accuracy and macro-F1 on --eval).</summary>
internal static class TrainClassifyCommand
{
    public static Command Create()
    {
        var o = new TrainOptionSet();
        var labels = new Option<string?>("--labels") { Description = "Comma-separated label names in id order (default: the model's id2label, else the data's labels sorted)." };
        var cmd = new Command("classify", "Fine-tune BERT for sequence classification on JSONL lines {\"text\": ..., \"label\": ...} (optional \"text_pair\").");
        o.AddTo(cmd);
        cmd.Options.Add(o.ReinitLayers);
        cmd.Options.Add(labels);
        cmd.SetAction(r =>
        {
            var (tokDir, tok, labelSet, train, eval, model, tr, maxLen, bs, seed, padId) = TrainBert.Prepare(r, o, labels,
                BertHeads.SequenceClassification, "BertForSequenceClassification", (path, l) => TrainingData.ReadClassificationJsonl(path, l),
                data => data.Select(e => e.Label).Distinct().OrderBy(x => x, StringComparer.Ordinal).ToList());
            EncodedExample Encode(ClassificationExample e)
            {
                var enc = tok.Encode(e.Text, e.Pair, maxLen);
                return new EncodedExample(enc.InputIds, enc.TokenTypeIds, Label: labelSet.IndexOf(e.Label));
            }
            var trainEnc = train.Select(Encode).ToList();
            var evalEnc = eval?.Select(Encode).ToList();
            Func<JsonObject>? evaluate = evalEnc is null ? null : () =>
            {
                var gold = new List<int>(); var pred = new List<int>();
                double lossSum = 0;
                foreach (var chunk in evalEnc.Chunk(bs))
                {
                    var res = tr.Evaluate(Batching.Bert(chunk, padId));
                    lossSum += res.Loss * chunk.Length;
                    int nl = labelSet.Count;
                    for (int i = 0; i < chunk.Length; i++)
                    {
                        var row = res.Logits!.Data.AsSpan(i * nl, nl);
                        int best = 0;
                        for (int c = 1; c < nl; c++) if (row[c] > row[best]) best = c;
                        pred.Add(best); gold.Add(chunk[i].Label);
                    }
                }
                return new JsonObject
                {
                    ["loss"] = TrainLoop.Round(lossSum / evalEnc.Count),
                    ["accuracy"] = TrainLoop.Round(Metrics.Accuracy(gold, pred)),
                    ["macro_f1"] = TrainLoop.Round(Metrics.MacroF1(gold, pred, labelSet.Count)),
                };
            };
            return TrainLoop.Run(r, o, tr,
                epoch => TrainLoop.ShuffledGroups(trainEnc.Count, bs, TrainLoop.EpochRng(seed, epoch)).Select(g => Batching.Bert(g.Select(i => trainEnc[i]).ToList(), padId)).ToList(),
                evaluate, dir => ModelSaver.Save(dir, model, tokDir));
        });
        return cmd;
    }
}

/// <summary><c>train ner</c>: fine-tune a token classifier on BIO files (entity-level precision/recall/F1, seqeval semantics).</summary>
internal static class TrainNerCommand
{
    public static Command Create()
    {
        var o = new TrainOptionSet();
        var labels = new Option<string?>("--labels") { Description = "Comma-separated BIO tags in id order (default: the model's id2label, else the data's tags: O, then B-/I- by type)." };
        var cmd = new Command("ner", "Fine-tune BERT for token classification on BIO files (\"word TAG\" per line, blank line between sentences).");
        o.AddTo(cmd);
        cmd.Options.Add(o.ReinitLayers);
        cmd.Options.Add(labels);
        cmd.SetAction(r =>
        {
            var (tokDir, tok, labelSet, train, eval, model, tr, maxLen, bs, seed, padId) = TrainBert.Prepare(r, o, labels,
                BertHeads.TokenClassification, "BertForTokenClassification", TrainingData.ReadBio,
                data => TrainingData.BioLabelSet(data.SelectMany(s => s.Tags)));
            int cls = TrainBert.Id(tok, "[CLS]"), sep = TrainBert.Id(tok, "[SEP]"), unk = TrainBert.Id(tok, "[UNK]");
            // Words → word pieces; the first piece of each word carries its tag (HF's label_all_tokens = False).
            (EncodedExample Ex, int[] FirstPiece) Encode(TaggedSentence s)
            {
                var ids = new List<int> { cls }; var lab = new List<int> { -100 };
                var first = Enumerable.Repeat(-1, s.Words.Length).ToArray();
                for (int w = 0; w < s.Words.Length; w++)
                {
                    var pieces = tok.Tokenize(s.Words[w]).Select(p => tok.TokenToId(p) ?? unk).ToList();
                    if (pieces.Count == 0) pieces.Add(unk);
                    if (ids.Count + pieces.Count > maxLen - 1) break;
                    first[w] = ids.Count;
                    for (int k = 0; k < pieces.Count; k++) { ids.Add(pieces[k]); lab.Add(k == 0 ? labelSet.IndexOf(s.Tags[w]) : -100); }
                }
                ids.Add(sep); lab.Add(-100);
                return (new EncodedExample(ids.ToArray(), new int[ids.Count], lab.ToArray()), first);
            }
            var trainEnc = train.Select(s => Encode(s).Ex).ToList();
            var evalEnc = eval?.Select(Encode).ToList();
            Func<JsonObject>? evaluate = evalEnc is null ? null : () =>
            {
                var gold = new List<IReadOnlyList<string>>(); var pred = new List<IReadOnlyList<string>>();
                int nl = labelSet.Count, correct = 0, total = 0;
                double lossSum = 0; int lossCount = 0;
                for (int c0 = 0; c0 < evalEnc.Count; c0 += bs)
                {
                    var chunk = evalEnc.Skip(c0).Take(bs).ToList();
                    var batch = Batching.Bert(chunk.Select(x => x.Ex).ToList(), padId);
                    var res = tr.Evaluate(batch);
                    if (res.Count > 0) { lossSum += res.Loss * res.Count; lossCount += res.Count; }
                    int t = batch.Length;
                    for (int i = 0; i < chunk.Count; i++)
                    {
                        var sent = eval![c0 + i];
                        var tags = new string[sent.Words.Length];
                        for (int w = 0; w < tags.Length; w++)
                        {
                            int p = chunk[i].FirstPiece[w];
                            if (p < 0) { tags[w] = "O"; continue; }
                            var row = res.Logits!.Data.AsSpan((i * t + p) * nl, nl);
                            int best = 0;
                            for (int c = 1; c < nl; c++) if (row[c] > row[best]) best = c;
                            tags[w] = labelSet[best];
                            total++; if (tags[w] == sent.Tags[w]) correct++;
                        }
                        gold.Add(sent.Tags); pred.Add(tags);
                    }
                }
                var (prec, rec, f1) = Metrics.EntityScores(gold, pred);
                return new JsonObject
                {
                    ["loss"] = TrainLoop.Round(lossCount == 0 ? double.NaN : lossSum / lossCount),
                    ["precision"] = TrainLoop.Round(prec), ["recall"] = TrainLoop.Round(rec), ["f1"] = TrainLoop.Round(f1),
                    ["token_accuracy"] = TrainLoop.Round(total == 0 ? 0 : correct / (double)total),
                };
            };
            return TrainLoop.Run(r, o, tr,
                epoch => TrainLoop.ShuffledGroups(trainEnc.Count, bs, TrainLoop.EpochRng(seed, epoch)).Select(g => Batching.Bert(g.Select(i => trainEnc[i]).ToList(), padId)).ToList(),
                evaluate, dir => ModelSaver.Save(dir, model, tokDir));
        });
        return cmd;
    }
}

/// <summary><c>train mlm</c>: BERT masked-LM (80/10/10), plus next-sentence prediction when the text has multi-sentence documents.</summary>
internal static class TrainMlmCommand
{
    public static Command Create()
    {
        var o = new TrainOptionSet();
        var prob = new Option<double>("--mlm-probability") { Description = "Fraction of tokens selected for masking.", DefaultValueFactory = _ => 0.15 };
        var cmd = new Command("mlm", "Pre-train BERT by masked-LM on plain text (one sentence per line; blank lines between documents add next-sentence prediction).");
        o.AddTo(cmd);
        cmd.Options.Add(prob);
        cmd.SetAction(r =>
        {
            int maxLen = o.Validate(r);
            double p = r.GetValue(prob);
            if (!(p > 0 && p <= 1)) throw new SharpFormerException(FormattableString.Invariant($"--mlm-probability must be a number in (0, 1], not {p}"));
            string? modelDir = r.GetValue(o.Model);
            var tokDir = o.TokenizerDir(r)!;
            var tok = AutoTokenizer.FromFolder(tokDir);
            var docs = TrainingData.ReadDocuments(r.GetValue(o.Data)!);
            var evalDocs = r.GetValue(o.Eval) is string ep ? TrainingData.ReadDocuments(ep) : null;
            bool nsp = docs.Any(d => d.Count >= 2);
            bool ckptNsp = modelDir is not null && ModelConfig.Load(modelDir) is BertConfig bc && BertModel.HeadsOf(bc.Architecture).HasFlag(BertHeads.NextSentence);
            var heads = BertHeads.MaskedLM | (nsp || ckptNsp ? BertHeads.NextSentence : BertHeads.None);
            var model = TrainingModels.Bert(modelDir, r.GetValue(o.Config), heads, null, r.GetValue(o.Seed), out var init);
            TrainBert.Warn(init);
            if (tok.VocabSize > model.Config.VocabSize) throw new SharpFormerException($"the tokenizer has {tok.VocabSize} tokens, the model's vocab_size is {model.Config.VocabSize}");
            var tr = TrainBert.Wrap(model, r, o);
            int bs = r.GetValue(o.BatchSize), seed = r.GetValue(o.Seed);
            int cls = TrainBert.Id(tok, "[CLS]"), sep = TrainBert.Id(tok, "[SEP]"), mask = TrainBert.Id(tok, "[MASK]"), unk = TrainBert.Id(tok, "[UNK]");
            int padId = model.Config.PadTokenId, vocab = model.Config.VocabSize;
            var special = new HashSet<int> { cls, sep, padId, mask };
            int[] Ids(string s) => tok.Tokenize(s).Select(x => tok.TokenToId(x) ?? unk).ToArray();
            var sents = docs.Select(d => d.Select(Ids).ToList()).ToList();
            var evalSents = evalDocs?.Select(d => d.Select(Ids).ToList()).ToList();

            // [CLS] A [SEP] (B [SEP]) with longest-first truncation to maxLen, then 80/10/10 masking.
            EncodedExample Build(int[] a, int[]? b, int nspLabel, TrainRng rng)
            {
                var la = a.ToList(); var lb = b?.ToList();
                int budget = maxLen - (b is null ? 2 : 3);
                while (la.Count + (lb?.Count ?? 0) > budget)
                {
                    if (lb is not null && lb.Count > la.Count) lb.RemoveAt(lb.Count - 1); else la.RemoveAt(la.Count - 1);
                }
                var ids = new List<int> { cls }; ids.AddRange(la); ids.Add(sep);
                var types = Enumerable.Repeat(0, ids.Count).ToList();
                if (lb is not null) { ids.AddRange(lb); ids.Add(sep); types.AddRange(Enumerable.Repeat(1, lb.Count + 1)); }
                var (input, labels) = Batching.MaskTokens(ids.ToArray(), special, mask, vocab, rng, p);
                return new EncodedExample(input, types.ToArray(), labels, NextSentenceLabel: nspLabel);
            }
            List<EncodedExample> Examples(List<List<int[]>> ds, TrainRng rng)
            {
                var list = new List<EncodedExample>();
                bool pairs = heads.HasFlag(BertHeads.NextSentence);
                var all = ds.SelectMany((d, di) => d.Select((s, si) => (di, si))).ToList();
                for (int di = 0; di < ds.Count; di++)
                    for (int si = 0; si < ds[di].Count; si++)
                    {
                        var a = ds[di][si];
                        if (a.Length == 0) continue;
                        if (!pairs) { list.Add(Build(a, null, -100, rng)); continue; }
                        bool hasNext = si + 1 < ds[di].Count;
                        if (hasNext && rng.NextDouble() < 0.5) { list.Add(Build(a, ds[di][si + 1], 0, rng)); continue; }
                        // A random sentence (from another document when there is one): label 1 = "B is random".
                        bool Other((int di, int si) x) => ds.Count > 1 ? x.di != di : x.si != si + 1 && x.si != si;
                        // Rejection sampling (O(1) expected) instead of listing every candidate per example (O(N^2) on a real corpus).
                        (int di, int si) pick = (-1, -1);
                        for (int tries = 0; tries < 16 && pick.di < 0; tries++) { var c = all[rng.Next(all.Count)]; if (Other(c)) pick = c; }
                        if (pick.di < 0)
                        {
                            var others = all.Where(Other).ToList();
                            if (others.Count == 0) { list.Add(Build(a, null, -100, rng)); continue; }
                            pick = others[rng.Next(others.Count)];
                        }
                        var (odi, osi) = pick;
                        list.Add(Build(a, ds[odi][osi], 1, rng));
                    }
                return list;
            }
            List<BertBatch> Batches(List<EncodedExample> ex, TrainRng rng, bool shuffle)
            {
                var idx = Enumerable.Range(0, ex.Count).ToList();
                if (shuffle) rng.Shuffle(idx);
                // NSP labels only when every example of the batch is a pair (BertForPreTraining needs both losses).
                return idx.Chunk(bs).Select(g => Batching.Bert(g.Select(i => ex[i]).ToList(), padId))
                    .Select(b => b with { MlmLabels = b.TokenLabels, TokenLabels = null }).ToList();
            }
            Func<JsonObject>? evaluate = evalSents is null ? null : () =>
            {
                var rng = TrainLoop.EpochRng(seed, 0, 7);
                double mlm = 0, nspL = 0; int nM = 0, nN = 0;
                foreach (var b in Batches(Examples(evalSents, rng), rng, shuffle: false))
                {
                    var res = tr.Evaluate(b);
                    if (res.MaskedLmLoss is double m && double.IsFinite(m)) { mlm += m * b.Batch; nM += b.Batch; }
                    if (res.NextSentenceLoss is double n) { nspL += n * b.Batch; nN += b.Batch; }
                }
                var o2 = new JsonObject { ["mlm_loss"] = TrainLoop.Round(nM == 0 ? double.NaN : mlm / nM), ["mlm_perplexity"] = TrainLoop.Round(nM == 0 ? double.NaN : Math.Exp(mlm / nM)) };
                if (nN > 0) o2["nsp_loss"] = TrainLoop.Round(nspL / nN);
                return o2;
            };
            return TrainLoop.Run(r, o, tr, epoch => { var rng = TrainLoop.EpochRng(seed, epoch, 1); return Batches(Examples(sents, rng), rng, shuffle: true); },
                evaluate, dir => ModelSaver.Save(dir, model, tokDir));
        });
        return cmd;
    }
}

/// <summary><c>train clm</c>: GPT-2 causal LM on plain text (each document followed by EOS, cut into blocks).</summary>
internal static class TrainClmCommand
{
    public static Command Create()
    {
        var o = new TrainOptionSet();
        var cmd = new Command("clm", "Pre-train or fine-tune GPT-2 (causal LM) on plain text; blank lines separate documents (else one per line), each followed by EOS.");
        o.AddTo(cmd);
        cmd.SetAction(r =>
        {
            int block = o.Validate(r);
            var tokDir = o.TokenizerDir(r)!;
            var tok = AutoTokenizer.FromFolder(tokDir);
            var model = TrainingModels.Gpt2(r.GetValue(o.Model), r.GetValue(o.Config), r.GetValue(o.Seed));
            if (tok.VocabSize > model.Config.VocabSize) throw new SharpFormerException($"the tokenizer has {tok.VocabSize} tokens, the model's vocab_size is {model.Config.VocabSize}");
            var tr = new Gpt2Training(model, (ulong)r.GetValue(o.Seed));
            if (r.GetValue(o.NoDropout)) tr.DisableDropout();
            int bs = r.GetValue(o.BatchSize), seed = r.GetValue(o.Seed);
            int eos = model.Config.EosTokenId;
            List<int[]> Blocks(string path)
            {
                var stream = new List<int>();
                foreach (var doc in TrainingData.ReadDocuments(path))
                {
                    stream.AddRange(tok.EncodeForCausalLm(string.Join("\n", doc)));
                    if ((uint)eos < (uint)model.Config.VocabSize) stream.Add(eos);
                }
                var blocks = Batching.Blocks(stream, block);
                if (blocks.Count == 0) throw new SharpFormerException($"{path}: too little text for one training block");
                return blocks;
            }
            var train = Blocks(r.GetValue(o.Data)!);
            var eval = r.GetValue(o.Eval) is string ep ? Blocks(ep) : null;
            Func<JsonObject>? evaluate = eval is null ? null : () =>
            {
                double sum = 0; int n = 0;
                foreach (var chunk in eval.Chunk(bs))
                {
                    var res = tr.Step(Batching.Gpt2(chunk, eos), backward: false);
                    sum += res.Loss * res.Count; n += res.Count;
                }
                return new JsonObject { ["loss"] = TrainLoop.Round(sum / n), ["perplexity"] = TrainLoop.Round(Math.Exp(sum / n)) };
            };
            Func<JsonObject>? evalNoDropout = evaluate is null ? null : () =>
            {
                bool was = tr.Training; tr.Training = false;
                try { return evaluate(); } finally { tr.Training = was; }
            };
            return TrainLoop.Run(r, o, tr,
                epoch => TrainLoop.ShuffledGroups(train.Count, bs, TrainLoop.EpochRng(seed, epoch)).Select(g => Batching.Gpt2(g.Select(i => train[i]).ToList(), eos)).ToList(),
                evalNoDropout, dir => ModelSaver.Save(dir, model, tokDir));
        });
        return cmd;
    }
}

/// <summary>
/// <c>train embed</c>: a sentence-embedding BERT by contrastive training (in-batch negatives, InfoNCE over normalised
/// pooled vectors): unsupervised SimCSE on plain text or supervised pairs from JSONL; Spearman of cosine on an STS --eval.
/// </summary>
internal static class TrainEmbedCommand
{
    public static Command Create()
    {
        var o = new TrainOptionSet();
        o.Data.Description = "Plain text, one sentence per line (SimCSE), or JSONL {\"text\", \"text_pair\"} lines (pairs).";
        o.Eval.Description = "STS file (id||s1||s2||score lines, as evaluate --task sts reads, or s1<TAB>s2<TAB>score): Spearman of cosine after every epoch.";
        var format = new Option<string?>("--format") { Description = "simcse (plain text, one sentence per line) or pairs (JSONL {\"text\", \"text_pair\"}); default: detected from the file." };
        format.AcceptOnlyFromAmong("simcse", "pairs");
        var pooling = new Option<string>("--pooling") { Description = "How token vectors become the sentence vector: mean (over the attention mask) or cls.", DefaultValueFactory = _ => "mean" };
        pooling.AcceptOnlyFromAmong("mean", "cls");
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature of the contrastive loss (similarities are cosine / temperature).", DefaultValueFactory = _ => 0.05 };
        var hardNegatives = new Option<bool>("--hard-negatives") { Description = "pairs: use each line's \"negative\", and the text_pair of a label-0 line, as a hard negative of its text (else label-0 lines are skipped)." };
        var cmd = new Command("embed", "Train a BERT sentence-embedding model contrastively (in-batch negatives): SimCSE on plain text (one sentence per line, " +
                                       "each encoded twice with different dropout) or positive pairs from JSONL {\"text\", \"text_pair\"} (optional \"label\" 0/1, \"negative\"). " +
                                       "The folder has sentence-transformers files, so embed / similarity / evaluate --task sts pool and normalise as trained.");
        o.AddTo(cmd);
        foreach (var opt in new Option[] { format, pooling, temperature, hardNegatives }) cmd.Options.Add(opt);
        cmd.SetAction(r =>
        {
            double tau = r.GetValue(temperature);
            if (!(tau > 0 && double.IsFinite(tau))) throw new SharpFormerException(FormattableString.Invariant($"--temperature must be a finite number > 0, not {tau}"));
            int bs = r.GetValue(o.BatchSize);
            if (bs < 2) throw new SharpFormerException($"--batch-size must be at least 2 (the other examples of a batch are the negatives), not {bs}");
            int maxLen = o.Validate(r);
            var pool = SentenceTransformersConfig.ParseName(r.GetValue(pooling)!)!.Value;
            string dataPath = r.GetValue(o.Data)!;
            bool pairs = r.GetValue(format) is string f ? f == "pairs" : TrainingData.LooksLikeJsonl(dataPath);
            // Read the data before the weights: a bad file fails fast.
            List<TextPair> examples;
            if (pairs)
            {
                examples = TrainingData.ReadTextPairs(dataPath, r.GetValue(hardNegatives), out int skipped);
                if (skipped > 0) Console.Error.WriteLine($"note: {skipped} line(s) labelled 0 " + (r.GetValue(hardNegatives) ? "used as hard negatives where their text has a positive" : "skipped (not positives)"));
            }
            else if (r.GetValue(hardNegatives)) throw new SharpFormerException($"--hard-negatives needs pairs data (JSONL {{\"text\", \"text_pair\", \"negative\"}}); {dataPath} is plain text (SimCSE)");
            else examples = TrainingData.ReadSentences(dataPath).Select((s, i) => new TextPair(s, s, null, i + 1)).ToList();
            var sts = r.GetValue(o.Eval) is string ep ? TaskIo.ReadUserFile(() => Evaluation.ReadPairs(ep)) : null;
            var tokDir = o.TokenizerDir(r)!;
            var tok = AutoTokenizer.FromFolder(tokDir);
            var model = TrainingModels.Bert(r.GetValue(o.Model), r.GetValue(o.Config), BertHeads.None, null, r.GetValue(o.Seed), out var init);
            TrainBert.Warn(init);
            if (tok.VocabSize > model.Config.VocabSize) throw new SharpFormerException($"the tokenizer has {tok.VocabSize} tokens, the model's vocab_size is {model.Config.VocabSize}");
            var tr = new ContrastiveTraining(TrainBert.Wrap(model, r, o), pool, tau, symmetric: pairs);
            int seed = r.GetValue(o.Seed), padId = model.Config.PadTokenId;
            var cache = new Dictionary<string, EncodedExample>(StringComparer.Ordinal);
            EncodedExample Enc(string s)
            {
                if (!cache.TryGetValue(s, out var e))
                {
                    var enc = tok.Encode(s, null, maxLen);
                    cache[s] = e = new EncodedExample(enc.InputIds, new int[enc.InputIds.Length]);
                }
                return e;
            }
            // One batch: anchors, their positives (SimCSE: the same sentences again), then the hard negatives there are.
            ContrastiveBatch Batch(IReadOnlyList<TextPair> g) =>
                new(Batching.Bert(g.Select(p => Enc(p.Text)).Concat(g.Select(p => Enc(p.Pair))).Concat(g.Where(p => p.Negative is not null).Select(p => Enc(p.Negative!))).ToList(), padId), g.Count);
            Func<JsonObject>? evaluate = sts is null ? null : () =>
            {
                var texts = sts.SelectMany(p => new[] { p.First, p.Second }).ToList();
                var vecs = texts.Chunk(2 * bs).SelectMany(c => tr.Embed(Batching.Bert(c.Select(Enc).ToList(), padId))).ToList();
                var cos = sts.Select((_, i) => (double)SentenceEmbedder.Cosine(vecs[2 * i], vecs[2 * i + 1])).ToList();
                var gold = sts.Select(p => p.Gold).ToList();
                return new JsonObject
                {
                    ["spearman"] = TrainLoop.Round(EvaluationMetrics.Spearman(cos, gold)),
                    ["pearson"] = TrainLoop.Round(EvaluationMetrics.Pearson(cos, gold)),
                };
            };
            return TrainLoop.Run(r, o, tr,
                // A last group of one has no negatives (its loss is 0): it joins the others by being dropped.
                epoch => TrainLoop.ShuffledGroups(examples.Count, bs, TrainLoop.EpochRng(seed, epoch)).Where(g => g.Count >= 2)
                    .Select(g => Batch(g.Select(i => examples[i]).ToList())).ToList(),
                evaluate, dir => ModelSaver.SaveSentenceEmbedder(dir, model, pool, tokDir));
        });
        return cmd;
    }
}
