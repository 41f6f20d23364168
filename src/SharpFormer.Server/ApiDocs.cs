using Microsoft.OpenApi;
using SharpFormer.Tasks;
using static SharpFormer.Server.Prop;
using static SharpFormer.Server.Shape;

namespace SharpFormer.Server;

/// <summary>
/// What every route takes and answers, for the OpenAPI document (<see cref="RouteDoc"/>), and the allowed values and
/// defaults the handlers read from here, so the document and the parsing cannot disagree. Each example request is
/// accepted by a server with a model of each kind (tests send them).
/// </summary>
sealed class ApiDocs(ServerOptions options)
{
    public static readonly string[] EncodingFormats = ["float", "base64"];
    public static readonly string[] AttentionFormats = ["json", "html"];
    public static readonly string[] AggregationStrategies = System.Enum.GetNames<AggregationStrategy>().Select(n => n.ToLowerInvariant()).ToArray();
    public const string DefaultAggregation = "simple";
    public const int FillMaskTopK = 5;
    public const int CompletionMaxTokens = 16;
    public const int PlaygroundMaxTokens = 24;
    public const int PlaygroundAlternatives = 5;
    public const int MaxAlternatives = 20;

    static readonly int[] OpenAiErrors = [400, 404, 413, 429, 500, 503];
    /// <summary>The errors of a TEI-shaped route that runs a model in its queue.</summary>
    static readonly int[] TeiErrors = [404, 413, 422, 424, 429, 503];

    static Shape Model(string which) => Str($"The served model (its folder name); default: the first served {which}.");

    /// <summary>A text or a batch of texts (at most max_client_batch_size).</summary>
    Shape Texts(string description, string text = "A text.") => Either(description,
        Str(text), Array(Str(text), "A batch: one answer per text, in order.", 1, options.MaxClientBatchSize));

    static readonly Shape Truncate = Bool("Only false: SharpFormer does not truncate; true is answered 422 (send texts within the model's length).", false);

    /// <summary>The same answer for one input, or an array of them for a batch.</summary>
    static Shape OneOrBatch(Shape one) => Either(one.Description + " An array of them, in order, when the request sent a batch.",
        one, Array(one, "One per input, in order."));

    // ---- OpenAI ----

    static readonly Shape ModelObject = Object("A served model.",
        Req("id", Str("Its name (its folder name).")), Req("object", Str("Always model.", "model")),
        Req("created", Int("When it was loaded (Unix seconds).")), Req("owned_by", Str("Always sharpformer.", "sharpformer")));

    public RouteDoc Models => new("The served models.", [Content.Json(Object("A list of models.",
        Req("object", Str("Always list.", "list")), Req("data", Array(ModelObject, "Every served model."))))], [503]);

    public RouteDoc Model1 => new("The model.", [Content.Json(ModelObject)], [404, 503])
    {
        Parameters = [new("id", ParameterLocation.Path, Str("The model's name."), true)],
    };

    static readonly Shape Usage = Object("Token counts.",
        Req("prompt_tokens", Int("Tokens of the prompt.")), Req("completion_tokens", Int("Tokens generated.")), Req("total_tokens", Int("Their sum.")));

    public RouteDoc Embeddings => new("The embeddings, in the order of the inputs.", [Content.Json(Object("OpenAI's embedding list.",
        Req("object", Str("Always list.", "list")),
        Req("data", Array(Object("One input's embedding.",
            Req("object", Str("Always embedding.", "embedding")), Req("index", Int("The input's position.")),
            Req("embedding", Either("The vector: numbers, or with encoding_format base64 the little-endian float32 bytes in base64.",
                Array(Num("A component."), "float32 components."), Str("base64 of the float32 bytes.")))), "One per input.")),
        Req("model", Str("The model that answered.")),
        Req("usage", Object("Token counts.", Req("prompt_tokens", Int("Tokens of the inputs.")), Req("total_tokens", Int("The same count.")))))
        )], OpenAiErrors)
    {
        Body = Object("An embeddings request.",
            Opt("model", Model("embedding model")),
            Req("input", Texts("The text or texts to embed (no empty string; token ids are refused).")),
            Opt("encoding_format", Str("How vectors are written.", EncodingFormats).Defaults("\"float\"")),
            Opt("dimensions", Int("Must equal the model's vector size when given (vectors are never shortened).")),
            Opt("user", Str("Accepted and ignored."))),
        Example = """{"model": "bert-chinese-small-embed", "input": ["今天天气很好", "明天会下雨"], "encoding_format": "float"}""",
    };

    /// <summary>The sampling fields and the refused OpenAI fields, shared by completions and chat completions.</summary>
    static readonly Prop[] Generation =
    [
        Opt("max_tokens", Int("Most tokens to generate; default: 16 for completions, the room left in the context for chat.", null, 1)),
        Opt("max_completion_tokens", Int("The same as max_tokens (wins when both are given).", null, 1)),
        Opt("temperature", Num("0 to 2; 0 is greedy; default: the model's generation_config.json.") with { Minimum = 0, Maximum = 2 }),
        Opt("top_p", Num("Nucleus sampling mass in (0, 1]; default: the model's generation_config.json.") with { ExclusiveMinimum = 0, Maximum = 1 }),
        Opt("seed", Int("Seed of the sampler (the same seed gives the same text).")),
        Opt("stop", Either("Texts that end the generation (matched across tokens; the text ends just before one).",
            Str("One stop text."), Array(Str("A stop text."), "Up to 4 stop texts.", 0, 4))),
        Opt("stream", Bool("Answer as server-sent events, one per piece of text.", false)),
        Opt("stream_options", Object("Streaming options.", Opt("include_usage", Bool("Send a last chunk with choices [] and usage.", false)))),
        Opt("n", Int("Choices to generate: only 1 (else 400).", 1, 1, 1)),
        Opt("best_of", Int("Only 1 (else 400).", 1, 1, 1)),
        Opt("logprobs", Any("Only false or 0 (log-probabilities are not supported; else 400).", Bool("false."), Int("0."))),
        Opt("echo", Bool("Only false (else 400).", false)),
        Opt("suffix", Str("Not supported: any value is answered 400.")),
        Opt("tools", Array(Object("A tool."), "Only [] (tool calling is not supported; else 400).", 0, 0)),
        Opt("response_format", Object("Only {\"type\": \"text\"} (else 400).", Req("type", Str("The format.", "text")))),
    ];

    static readonly Shape FinishReason = Str("Why generation ended: a stop text or the end-of-text token (stop), or max_tokens / the context (length).", "stop", "length");

    static Shape Completion(bool chat) => Object(chat ? "OpenAI's chat completion." : "OpenAI's text completion.",
        Req("id", Str("The completion's id (the same in every chunk of a stream).")),
        Req("object", Str("The object kind.", chat ? "chat.completion" : "text_completion")),
        Req("created", Int("When it was created (Unix seconds).")),
        Req("model", Str("The model that answered.")),
        Req("choices", Array(Object("The one choice.",
            [Req("index", Int("Always 0.")),
             chat ? Req("message", Object("The answer.", Req("role", Str("Always assistant.", "assistant")), Req("content", Str("The generated text."))))
                  : Req("text", Str("The generated text.")),
             Req("logprobs", new Shape(JsonSchemaType.Null, "Always null.")),
             Req("finish_reason", FinishReason)]), "One choice.", 1, 1)),
        Req("usage", Usage));

    const string StreamNote = " Errors after the stream started arrive as data: {\"error\": {...}} before [DONE].";

    public RouteDoc Completions => new("The completion (or, with stream: true, server-sent events).",
        [Content.Json(Completion(chat: false)), Content.Events(
            "With stream: true, one 'data: {chunk}' event per piece of text, then 'data: [DONE]'. A chunk is the text completion's " +
            "envelope (id, object text_completion, created, model) with choices [{index, text, logprobs: null, finish_reason: null}], " +
            "the last one with text \"\" and finish_reason; with stream_options.include_usage a final chunk has choices [] and usage." + StreamNote)],
        OpenAiErrors)
    {
        Body = Object("A text completion request.",
            [Opt("model", Model("text-generation model")),
             Req("prompt", Either("The prompt (not empty).", Str("The prompt."), Array(Str("The prompt."), "A one-element array.", 1, 1))),
             .. Generation]),
        Example = """{"model": "gpt2-chinese-poems-small", "prompt": "床前明月光，", "max_tokens": 16, "temperature": 0}""",
    };

    public RouteDoc ChatCompletions => new("The chat completion (or, with stream: true, server-sent events).",
        [Content.Json(Completion(chat: true)), Content.Events(
            "With stream: true, one 'data: {chunk}' event per piece of text, then 'data: [DONE]'. A chunk has id, object " +
            "chat.completion.chunk, created, model and choices [{index, delta, logprobs: null, finish_reason}]: the first delta is " +
            "{role: assistant, content: \"\"}, then {content} per piece, the last {} with finish_reason; with stream_options.include_usage " +
            "a final chunk has choices [] and usage." + StreamNote)],
        OpenAiErrors)
    {
        Body = Object("A chat completion request (the model's chat template renders the messages).",
            [Opt("model", Model("model with a chat template")),
             Req("messages", Array(Object("A message.",
                 Req("role", Str("Who speaks: system, user or assistant (as the chat template knows them).")),
                 Opt("content", Either("The text, or an array of text parts.",
                     Str("The text."),
                     Array(Object("A text part (other part types are answered 400).", Req("type", Str("Only text.", "text")), Req("text", Str("The text."))), "Text parts, joined."))
                     .OrNull())), "The conversation so far.")),
             .. Generation]),
        Example = """{"model": "qwen2-tiny", "messages": [{"role": "system", "content": "你是一个有帮助的助手。"}, {"role": "user", "content": "你好"}], "max_tokens": 16}""",
    };

    // ---- text-embeddings-inference ----

    public RouteDoc Embed => new("The vectors, one per input.",
        [Content.Json(Array(Array(Num("A component."), "One input's vector."), "One vector per input, in order (a single text too gives [[...]])."))], TeiErrors)
    {
        Body = Object("An embedding request.",
            Req("inputs", Texts("The text or texts to embed.")),
            Opt("normalize", Bool("L2-normalise the vectors.", true)),
            Opt("truncate", Truncate),
            Opt("model", Model("embedding model"))),
        Example = """{"inputs": ["今天天气很好", "明天会下雨"], "normalize": true}""",
    };

    static readonly Shape LabelScores = Array(Object("A label's score.",
        Req("score", Num("Its probability, or its logit with raw_scores.")), Req("label", Str("The label (id2label)."))),
        "Every label, most likely first.");

    static readonly Shape Pair = Array(Str("A text."), "A pair [text, text_pair].", 2, 2);

    public RouteDoc Predict => new("The labels of each input.",
        [Content.Json(Any("For one input, its labels; for a batch, an array of them.", LabelScores, Array(LabelScores, "One per input, in order.")))], TeiErrors)
    {
        Body = Object("A sequence-classification request.",
            Req("inputs", Any("A text, a pair [text, text_pair] (an array of exactly two texts is read as a pair), or a batch of texts / [text] / [text, text_pair].",
                Str("A text."), Pair,
                Array(Either("One input.", Str("A text."), Array(Str("A text."), "[text] or [text, text_pair].", 1, 2)), "A batch.", 1, options.MaxClientBatchSize))),
            Opt("raw_scores", Bool("Answer logits instead of probabilities.", false)),
            Opt("truncate", Truncate),
            Opt("model", Model("sequence-classification model"))),
        Example = """{"inputs": "今天天气很好", "raw_scores": false}""",
    };

    public RouteDoc Rerank => new("The texts ranked, most relevant first.",
        [Content.Json(Array(Object("One text's relevance.",
            Req("index", Int("Its position in texts.")), Req("score", Num("P(relevant), or with raw_scores its logit (two labels: the log-odds).")),
            Opt("text", Str("The text (with return_text)."))), "One per text, most relevant first."))], TeiErrors)
    {
        Body = Object("A rerank request: each text scored as the pair (query, text).",
            Req("query", Str("The query.")),
            Req("texts", Texts("The texts to rank.")),
            Opt("raw_scores", Bool("Answer logits instead of probabilities.", false)),
            Opt("return_text", Bool("Include each text in the answer.", false)),
            Opt("truncate", Truncate),
            Opt("model", Model("reranker (a pair classifier with one label, or two labels named 0 and 1)"))),
        Example = """{"query": "怎么学英语", "texts": ["今天天气很好", "如何学好英语"], "return_text": true}""",
    };

    public RouteDoc Tokenize => new("The tokens of each input.",
        [Content.Json(Array(Array(Object("A token.",
            Req("id", Int("Its id.")), Req("text", Str("Its text.")), Req("special", Bool("Whether it is a special token.")),
            Req("start", Int("Start of its character span (UTF-16), null for special tokens.").OrNull()),
            Req("stop", Int("End (exclusive) of its character span, null for special tokens.").OrNull())), "One input's tokens."),
            "One list per input, in order."))], [404, 413, 422, 424, 503])
    {
        Body = Object("A tokenize request.",
            Req("inputs", Texts("The text or texts to tokenize.")),
            Opt("add_special_tokens", Bool("Include [CLS], [SEP] and the like.", true)),
            Opt("model", Model("encoder"))),
        Example = """{"inputs": "今天天气很好", "add_special_tokens": true}""",
    };

    static readonly Shape Id2Label = Map(Str("A label."), "Label by id (the keys are the ids as text).");

    public RouteDoc Info => new("The model's description.", [Content.Json(Object("TEI's info.",
        Req("model_id", Str("The model's name.")),
        Req("model_sha", new Shape(JsonSchemaType.Null, "Always null.")),
        Req("model_dtype", Str("How the weights are held (--dtype).", "float32", "bfloat16", "int8")),
        Req("model_type", Object("What the model is: exactly one of these keys.",
            Opt("classifier", Object("A sequence classifier.", Req("id2label", Id2Label), Req("label2id", Map(Int("An id."), "Id by label.")))),
            Opt("token_classifier", Object("A token classifier.", Req("id2label", Id2Label))),
            Opt("embedding", Object("An embedding model.", Req("pooling", Str("Its pooling.", System.Enum.GetNames<Pooling>().Select(n => n.ToLowerInvariant()).ToArray())))),
            Opt("generator", Object("A causal language model.")))),
        Req("max_concurrent_requests", Int("Requests the model admits at once (running and waiting).")),
        Req("max_input_length", Int("Most tokens per input (null for decoders).").OrNull()),
        Req("max_client_batch_size", Int("Most inputs per request.")),
        Req("version", Str("SharpFormer's version.").OrNull())))], [404, 422, 503])
    {
        Parameters = [new("model", ParameterLocation.Query, Model("encoder"))],
    };

    // ---- tasks no peer serves ----

    static readonly Shape FillMaskResult = Object("The fillings of one text.",
        Req("text", Str("The text.")),
        Req("masks", Array(Object("One [MASK].",
            Req("index", Int("Its token position.")), Req("start", Int("Start of its character span.")), Req("end", Int("End (exclusive) of its character span.")),
            Req("candidates", Array(Object("A candidate token.",
                Req("token", Int("Its id.")), Req("token_str", Str("Its text.")), Req("score", Num("Its probability.")),
                Req("sequence", Str("The text with this token in the mask (other masks left).")), Req("filled", Str("The text with it filled in."))),
                "top_k candidates, most likely first."))), "One entry per [MASK], left to right.")),
        Req("filled", Str("The best filling: the top joint filling with several masks, else the top candidate.")),
        Opt("joint", Array(Object("A joint filling of every mask.",
            Req("tokens", Array(Int("An id."), "One id per mask.")), Req("token_strs", Array(Str("A token."), "One token per mask.")),
            Req("probability", Num("Its joint probability.")), Req("filled", Str("The text filled in.")), Req("sequence", Str("The decoded sequence."))),
            "With two masks or more: the beam search's best joint fillings, most likely first.")));

    public RouteDoc FillMask => new("Each text's fillings.", [Content.Json(OneOrBatch(FillMaskResult))], TeiErrors)
    {
        Body = Object("A fill-mask request.",
            Req("inputs", Texts("The text or texts; each holds one or more [MASK].")),
            Opt("top_k", Int("Candidates per mask.", FillMaskTopK, 1)),
            Opt("beam", Int("Beam width of the joint search over several masks; default: top_k.", null, 1)),
            Opt("model", Model("masked-language model"))),
        Example = """{"inputs": "今天天[MASK]很好", "top_k": 3}""",
    };

    static readonly Shape NspResult = Object("One pair's prediction.",
        Req("text", Str("The first text.")), Req("text_pair", Str("The second text.")),
        Req("is_next_probability", Num("P(the second text follows the first).")), Req("is_next", Bool("Whether that probability is at least 0.5.")),
        Req("logits", Array(Num("A logit."), "The head's two logits (is next, is not).")));

    public RouteDoc Nsp => new("Each pair's prediction.", [Content.Json(OneOrBatch(NspResult))], TeiErrors)
    {
        Body = Object("A next-sentence request.",
            Req("inputs", Either("A pair [text, text_pair] or a batch of pairs.", Pair, Array(Pair, "A batch of pairs.", 1, options.MaxClientBatchSize))),
            Opt("model", Model("model with a next-sentence head"))),
        Example = """{"inputs": ["今天天气很好", "我们去公园散步吧"]}""",
    };

    static readonly Shape NerResult = Object("One text's entities.",
        Req("text", Str("The text.")),
        Req("entities", Array(Object("An entity (HuggingFace's keys).",
            Opt("entity_group", Str("Its type, for grouped entities (aggregation other than none).")),
            Opt("entity", Str("Its tag, per token (aggregation none).")),
            Req("score", Num("Its probability.")),
            Opt("index", Int("Its token position (aggregation none).")), Opt("token", Str("Its token (aggregation none).")),
            Req("word", Str("Its text.")), Req("start", Int("Start of its character span.")), Req("end", Int("End (exclusive) of its character span."))),
            "The entities, left to right.")),
        Opt("windows", Int("Windows a long text was read in (only when more than one).")));

    public RouteDoc Ner => new("Each text's entities.", [Content.Json(OneOrBatch(NerResult))], TeiErrors)
    {
        Body = Object("A named-entity request.",
            Req("inputs", Texts("The text or texts.")),
            Opt("aggregation_strategy", Str("How token tags become entities (HuggingFace's strategies).", AggregationStrategies).Defaults($"\"{DefaultAggregation}\"")),
            Opt("stride", Int("Tokens shared by consecutive windows of a long text.", null, 0)),
            Opt("model", Model("token-classification model"))),
        Example = """{"inputs": "李华在北京大学读书", "aggregation_strategy": "simple"}""",
    };

    static readonly Shape PerplexityResult = Object("One text's perplexity.",
        Req("perplexity", Num("exp(loss).")), Req("loss", Num("Mean negative log-likelihood per scored token.")),
        Req("tokens", Int("Tokens scored.")), Req("windows", Int("Windows used (the text may be longer than the context).")));

    public RouteDoc Perplexity => new("Each text's perplexity.", [Content.Json(OneOrBatch(PerplexityResult))], TeiErrors)
    {
        Body = Object("A perplexity request.",
            Req("inputs", Texts("The text or texts.")),
            Opt("stride", Int("Step between windows of a long text; default: the window length.", null, 1)),
            Opt("model", Model("causal language model"))),
        Example = """{"inputs": "床前明月光，疑是地上霜"}""",
    };

    static readonly Shape Layer = Int("The layer (from 0); default: every layer.", null, 0);
    static readonly Shape Head = Int("The head (from 0; needs layer); default: every head.", null, 0);

    public RouteDoc Attention => new("The attention (JSON, or the viewer with ?format=html).",
        [Content.Json(Object("Attention weights with their token labels.",
            Req("model", Str("The model.")), Req("model_type", Str("Its config's model_type.")),
            Req("kind", Str("Whether a token sees the whole text or only what precedes it.", "bidirectional", "causal")),
            Req("text", Str("The text.")), Req("tokens", Array(Str("A token label."), "The tokens, labelling rows and columns.")),
            Req("token_ids", Array(Int("An id."), "Their ids.")), Req("layers", Int("The model's layers.")), Req("heads", Int("Heads per layer.")),
            Req("matrices", Array(Object("One layer and head.", Req("layer", Int("The layer.")), Req("head", Int("The head.")),
                Req("weights", Array(Array(Num("A weight."), "One query row over the keys."), "[T, T]: rows are queries, columns keys."))),
                "The asked layer/head, or every head of the layer, or every layer and head.")))),
         new("text/html", Str("The self-contained attention viewer (with ?format=html)."))], TeiErrors)
    {
        Parameters = [new("format", ParameterLocation.Query, Str("json: the matrices; html: the interactive viewer.", AttentionFormats).Defaults("\"json\""))],
        Body = Object("An attention request.",
            Req("inputs", Str("The text to look at.")),
            Opt("layer", Layer),
            Opt("head", Head),
            Opt("model", Model("encoder or decoder"))),
        Example = """{"inputs": "今天天气很好", "layer": 0, "head": 0}""",
    };

    // ---- the playground's API ----

    static Shape Text(string name = "text") => Str($"The {name} (not empty).");

    public RouteDoc PlaygroundModels => new("The models the playground can use.", [Content.Json(Object("The playground's models.",
        Req("encoders", Array(Object("An encoder.",
            Req("name", Str("Its name.")), Req("layers", Int("Its layers.")), Req("heads", Int("Heads per layer.")),
            Req("tasks", Array(Str("A task.", "attention", "fill-mask", "classify", "ner"), "What it can do.")),
            Req("labels", Array(Str("A label."), "The classifier's labels, by id (null without a classifier).").OrNull())), "The encoders.")),
        Req("decoders", Array(Object("A decoder.",
            Req("name", Str("Its name.")), Req("layers", Int("Its layers.")), Req("heads", Int("Heads per layer.")), Req("context", Int("Its context length.")),
            Req("defaults", Object("Its sampling defaults (generation_config.json).",
                Req("temperature", Num("0 when it decodes greedily.")), Req("top_p", Num("top_p.")), Req("top_k", Int("top_k."))))), "The decoders."))))],
        [503]);

    public RouteDoc PlaygroundFillMask => new("The candidates of each mask.", [Content.Json(Object("Fill-mask for the playground.",
        Req("model", Str("The model.")),
        Req("masks", Array(Object("One [MASK].", Req("start", Int("Start of its span.")), Req("end", Int("End of its span.")),
            Req("candidates", Array(Object("A candidate.", Req("token", Str("Its text.")), Req("id", Int("Its id.")), Req("score", Num("Its probability.")),
                Req("filled", Str("The text with it filled in."))), "Most likely first."))), "Left to right.")),
        Req("joint", Array(Object("A joint filling.", Req("tokens", Array(Str("A token."), "One per mask.")), Req("probability", Num("Its probability.")),
            Req("filled", Str("The text filled in."))), "With several masks: the best joint fillings."))))], TeiErrors)
    {
        Body = Object("One text to fill.", Req("text", Text()), Opt("top_k", Int("Candidates per mask.", FillMaskTopK, 1, MaxAlternatives)), Opt("model", Model("masked-language model"))),
        Example = """{"text": "今天天[MASK]很好", "top_k": 5}""",
    };

    public RouteDoc PlaygroundClassify => new("The labels, most likely first.", [Content.Json(Object("Classification for the playground.",
        Req("model", Str("The model.")), Req("label", Str("The most likely label.")),
        Req("scores", Array(Object("A label's probability.", Req("label", Str("The label.")), Req("score", Num("Its probability."))), "Most likely first."))))], TeiErrors)
    {
        Body = Object("One text to classify.", Req("text", Text()), Opt("model", Model("sequence-classification model"))),
        Example = """{"text": "这部电影太好看了"}""",
    };

    public RouteDoc PlaygroundNer => new("The entities.", [Content.Json(Object("Entities for the playground (BIO decoding).",
        Req("model", Str("The model.")), Req("text", Str("The text.")),
        Req("entities", Array(Object("An entity.", Req("label", Str("Its type.")), Req("score", Num("Its probability.")), Req("word", Str("Its text.")),
            Req("start", Int("Start of its span.")), Req("end", Int("End of its span."))), "Left to right."))))], TeiErrors)
    {
        Body = Object("One text to tag.", Req("text", Text()), Opt("model", Model("token-classification model"))),
        Example = """{"text": "李华在北京大学读书"}""",
    };

    public RouteDoc PlaygroundAttention => new("One layer and head.", [Content.Json(Object("Attention for the playground.",
        Req("model", Str("The model.")), Req("kind", Str("Bidirectional (encoder) or causal (decoder).", "bidirectional", "causal")),
        Req("layer", Int("The layer.")), Req("head", Int("The head.")), Req("layers", Int("The model's layers.")), Req("heads", Int("Heads per layer.")),
        Req("tokens", Array(Str("A token label."), "Row and column labels.")), Req("ids", Array(Int("An id."), "The token ids.")),
        Req("matrix", Array(Array(Num("A weight (5 decimals)."), "A query row."), "[T, T]: rows are queries, columns keys."))))], TeiErrors)
    {
        Body = Object("A text (or a decoder's exact token ids) and a layer and head.",
            Opt("text", Str("The text; required unless ids are given.")),
            Opt("ids", Array(Int("A token id.", null, 0), "A decoder's exact token ids (a prompt and what was generated); encoders take text.", 1)),
            Opt("layer", Int("The layer (from 0).", 0, 0)),
            Opt("head", Int("The head (from 0).", 0, 0)),
            Opt("model", Model("encoder or decoder"))),
        Example = """{"text": "今天天气很好", "layer": 0, "head": 0}""",
    };

    public RouteDoc PlaygroundGenerate => new("A continuation as server-sent events.", [Content.Events(
        "Named events, each 'event: kind' then 'data: {json}': prompt {ids}; one token per generated token {id, token, p, sampled_p, text, " +
        "alternatives: [{id, token, p, sampled_p}]}; text {text} for text that was held back; done {finish_reason, prompt_tokens, " +
        "completion_tokens, ids}; error {error} if the generation fails after the stream started.")], TeiErrors)
    {
        Body = Object("A prompt and its sampling controls.",
            Req("prompt", Text("prompt")),
            Opt("max_tokens", Int("Most tokens to generate (at most the context).", PlaygroundMaxTokens, 1)),
            Opt("temperature", Num("0 to 2; 0 is greedy; default: the model's.") with { Minimum = 0, Maximum = 2 }),
            Opt("top_p", Num("Nucleus sampling mass in (0, 1]; default: the model's.") with { ExclusiveMinimum = 0, Maximum = 1 }),
            Opt("top_k", Int("Sample among the k most likely tokens (0: all); default: the model's.", null, 0)),
            Opt("seed", Int("Seed of the sampler.")),
            Opt("alternatives", Int("Most likely tokens reported per step.", PlaygroundAlternatives, 1, MaxAlternatives)),
            Opt("model", Model("causal language model"))),
        Example = """{"prompt": "床前明月光，", "max_tokens": 8, "temperature": 0}""",
    };

    // ---- the service ----

    static readonly Shape HealthShape = Object("The server's state.",
        Req("status", Str("ok, loading, failed or stopping.", "ok", "loading", "failed", "stopping")),
        Opt("models", Int("How many models are served (when ok).")),
        Opt("error", Str("Why loading failed (when failed).").OrNull()));

    public RouteDoc Health => new("Ready: the models are loaded.", [Content.Json(HealthShape)], [])
    {
        Other = [(503, "Not ready: the models are loading or failed to load, or the server is stopping.", Content.Json(HealthShape))],
    };

    public RouteDoc Metrics => new("Prometheus text exposition.",
        [new("text/plain", Str("sharpformer_requests_total{route,status}, sharpformer_request_duration_seconds, sharpformer_queue_depth{model}, " +
                               "sharpformer_requests_in_flight, sharpformer_batch_size, sharpformer_generated_tokens_total, " +
                               "sharpformer_generation_tokens_per_second, sharpformer_generations_cancelled_total."))], []);
}
