using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace SharpFormer.Server;

/// <summary>
/// A JSON value's shape as the OpenAPI document states it: its type, a one-line description and, as it applies, its
/// properties, items, alternatives, allowed values, default and bounds. Immutable, so route tables can be built once;
/// <see cref="ToSchema"/> makes a fresh schema for each document.
/// </summary>
sealed record Shape(JsonSchemaType? Type, string Description)
{
    public IReadOnlyList<Prop>? Properties { get; init; }
    public Shape? Items { get; init; }
    public Shape? Values { get; init; }
    public IReadOnlyList<Shape>? OneOf { get; init; }
    public IReadOnlyList<Shape>? AnyOf { get; init; }
    public IReadOnlyList<string>? Enum { get; init; }
    /// <summary>The default as JSON text (a string, so the record stays immutable).</summary>
    public string? Default { get; init; }
    public double? Minimum { get; init; }
    public double? Maximum { get; init; }
    public double? ExclusiveMinimum { get; init; }
    public int? MinItems { get; init; }
    public int? MaxItems { get; init; }

    public static Shape Str(string description, params string[] allowed) =>
        new(JsonSchemaType.String, description) { Enum = allowed.Length > 0 ? allowed : null };
    public static Shape Int(string description, long? @default = null, double? min = null, double? max = null) =>
        new(JsonSchemaType.Integer, description) { Default = @default?.ToString(CultureInfo.InvariantCulture), Minimum = min, Maximum = max };
    public static Shape Num(string description) => new(JsonSchemaType.Number, description);
    public static Shape Bool(string description, bool? @default = null) =>
        new(JsonSchemaType.Boolean, description) { Default = @default is bool b ? (b ? "true" : "false") : null };
    public static Shape Array(Shape items, string description, int? minItems = null, int? maxItems = null) =>
        new(JsonSchemaType.Array, description) { Items = items, MinItems = minItems, MaxItems = maxItems };
    public static Shape Object(string description, params Prop[] properties) => new(JsonSchemaType.Object, description) { Properties = properties };
    /// <summary>An object whose keys are free and whose values are all <paramref name="values"/>.</summary>
    public static Shape Map(Shape values, string description) => new(JsonSchemaType.Object, description) { Values = values };
    /// <summary>Exactly one of disjoint alternatives.</summary>
    public static Shape Either(string description, params Shape[] alternatives) => new(null, description) { OneOf = alternatives };
    /// <summary>Alternatives that overlap (a value may match several; the description says which reading wins).</summary>
    public static Shape Any(string description, params Shape[] alternatives) => new(null, description) { AnyOf = alternatives };

    /// <summary>The same shape, also allowing JSON null.</summary>
    public Shape OrNull() => this with { Type = Type | JsonSchemaType.Null };
    /// <summary>The same shape with a default (given as JSON text).</summary>
    public Shape Defaults(string json) => this with { Default = json };

    static string? Number(double? v) => v?.ToString(CultureInfo.InvariantCulture);

    public OpenApiSchema ToSchema() => new()
    {
        Type = Type,
        Description = Description,
        Properties = Properties?.ToDictionary(p => p.Name, p => (IOpenApiSchema)p.Shape.ToSchema()),
        Required = Properties?.Where(p => p.Required).Select(p => p.Name).ToHashSet() is { Count: > 0 } required ? required : null,
        AdditionalProperties = Values?.ToSchema(),
        Items = Items?.ToSchema(),
        OneOf = OneOf?.Select(s => (IOpenApiSchema)s.ToSchema()).ToList(),
        AnyOf = AnyOf?.Select(s => (IOpenApiSchema)s.ToSchema()).ToList(),
        Enum = Enum?.Select(v => (JsonNode)JsonValue.Create(v)).ToList(),
        Default = Default is null ? null : JsonNode.Parse(Default),
        Minimum = Number(Minimum),
        Maximum = Number(Maximum),
        ExclusiveMinimum = Number(ExclusiveMinimum),
        MinItems = MinItems,
        MaxItems = MaxItems,
    };
}

/// <summary>A property of an object shape.</summary>
sealed record Prop(string Name, Shape Shape, bool Required = false)
{
    /// <summary>A property the request must carry.</summary>
    public static Prop Req(string name, Shape shape) => new(name, shape, true);
    /// <summary>A property that may be left out.</summary>
    public static Prop Opt(string name, Shape shape) => new(name, shape);
}

/// <summary>One media type of a response and its shape.</summary>
sealed record Content(string MediaType, Shape Shape)
{
    public static Content Json(Shape shape) => new("application/json", shape);
    /// <summary>Server-sent events: their events are described in words (OpenAPI 3.1 has no schema for an event stream).</summary>
    public static Content Events(string description) => new("text/event-stream", Shape.Str(description));
}

/// <summary>A query or path parameter.</summary>
sealed record Param(string Name, ParameterLocation In, Shape Shape, bool Required = false);

/// <summary>
/// What a route takes and answers, for its OpenAPI operation: the JSON body with an example request, the 200 answer's
/// media types, and the error statuses it really returns (in its family's error shape: <see cref="ApiShapes.OpenAiError"/> under /v1, else <see cref="ApiShapes.TeiError"/>).
/// Attached to the endpoint by <see cref="Routes.Map"/> and written into the document by <see cref="ApiShapes.Describe"/>.
/// </summary>
sealed record RouteDoc(string Answer, IReadOnlyList<Content> Ok, IReadOnlyList<int> Errors)
{
    public Shape? Body { get; init; }
    /// <summary>An example request body (JSON text) that the server accepts as it stands.</summary>
    public string? Example { get; init; }
    public IReadOnlyList<Param> Parameters { get; init; } = [];
    /// <summary>Answers other than 200 whose body is the route's own rather than its family's error shape.</summary>
    public IReadOnlyList<(int Status, string Description, Content Content)> Other { get; init; } = [];
}

/// <summary>The error shapes of the two route families, and the operation transformer that writes a <see cref="RouteDoc"/> into the document.</summary>
static class ApiShapes
{
    public static readonly Shape OpenAiError = Shape.Object("OpenAI's error object.",
        Prop.Req("error", Shape.Object("What went wrong.",
            Prop.Req("message", Shape.Str("A one-line explanation.")),
            Prop.Req("type", Shape.Str("invalid_request_error (4xx but 429), requests (429) or server_error (5xx).", "invalid_request_error", "requests", "server_error")),
            Prop.Req("param", Shape.Str("The request field at fault, if one is.").OrNull()),
            Prop.Req("code", Shape.Str("model_not_found (404), rate_limit_exceeded (429), service_unavailable (503), else null.").OrNull()))));

    public static readonly Shape TeiError = Shape.Object("text-embeddings-inference's error object.",
        Prop.Req("error", Shape.Str("A one-line explanation.")),
        Prop.Req("error_type", Shape.Str("validation (404, 413, 422), backend (424), overloaded (429) or unhealthy (503).", "validation", "backend", "overloaded", "unhealthy")));

    static readonly Dictionary<int, string> OpenAiStatuses = new()
    {
        [400] = "Invalid request: invalid JSON, a field missing, of the wrong type or out of range, a model that cannot serve the route, or a field SharpFormer cannot honour (param names it).",
        [404] = "No served model has that name (code model_not_found).",
        [413] = "The body is over the payload limit, or it holds more inputs than max_client_batch_size.",
        [429] = "The model's queue is full (code rate_limit_exceeded); retry after Retry-After seconds.",
        [500] = "An unexpected server error.",
        [503] = "The models are still loading, or the server is stopping (code service_unavailable).",
    };

    static readonly Dictionary<int, string> TeiStatuses = new()
    {
        [404] = "No served model has that name.",
        [413] = "The body is over the payload limit, or the batch holds more than max_client_batch_size inputs.",
        [422] = "Validation: invalid JSON, a field missing, of the wrong type or out of range, or a model without the needed head (error names the field).",
        [424] = "The model failed while running, or cannot serve the route (e.g. /rerank on a model that is not a pair classifier).",
        [429] = "The model's queue is full (error_type overloaded); retry after Retry-After seconds.",
        [503] = "The models are still loading, or the server is stopping (error_type unhealthy).",
    };

    /// <summary>Writes the <see cref="RouteDoc"/> of an endpoint (if it has one) into its operation: parameters, body, answers.</summary>
    public static Task Describe(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken _)
    {
        var doc = context.Description.ActionDescriptor.EndpointMetadata.OfType<RouteDoc>().LastOrDefault();
        if (doc is null) return Task.CompletedTask;
        bool openAi = Http.IsOpenAiPath("/" + context.Description.RelativePath);
        if (doc.Parameters.Count > 0)
        {
            var named = doc.Parameters.Select(p => p.Name).ToHashSet();
            operation.Parameters = (operation.Parameters ?? []).Where(p => !named.Contains(p.Name!))
                .Concat(doc.Parameters.Select(p => (IOpenApiParameter)new OpenApiParameter
                {
                    Name = p.Name, In = p.In, Required = p.Required || p.In == ParameterLocation.Path, Description = p.Shape.Description, Schema = p.Shape.ToSchema(),
                })).ToList();
        }
        if (doc.Body is not null)
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/json"] = new() { Schema = doc.Body.ToSchema(), Example = doc.Example is null ? null : JsonNode.Parse(doc.Example) },
                },
            };
        var responses = new OpenApiResponses { ["200"] = Response(doc.Answer, doc.Ok) };
        foreach (var (status, description, content) in doc.Other) responses[status.ToString(CultureInfo.InvariantCulture)] = Response(description, [content]);
        // The family's error object is stated once under components and referred to by every error answer.
        IOpenApiSchema error = openAi ? OpenAiError.ToSchema() : TeiError.ToSchema();
        if (context.Document is { } document)
        {
            string id = openAi ? "OpenAiError" : "TeiError";
            document.Components ??= new OpenApiComponents();
            document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
            document.Components.Schemas.TryAdd(id, error);
            error = new OpenApiSchemaReference(id, document);
        }
        foreach (int status in doc.Errors)
        {
            var response = new OpenApiResponse
            {
                Description = (openAi ? OpenAiStatuses : TeiStatuses)[status],
                Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = error } },
            };
            if (status == StatusCodes.Status429TooManyRequests)
                response.Headers = new Dictionary<string, IOpenApiHeader>
                {
                    ["Retry-After"] = new OpenApiHeader { Description = "Seconds to wait before retrying.", Schema = new OpenApiSchema { Type = JsonSchemaType.Integer } },
                };
            responses[status.ToString(CultureInfo.InvariantCulture)] = response;
        }
        operation.Responses = responses;
        return Task.CompletedTask;
    }

    static OpenApiResponse Response(string description, IEnumerable<Content> contents) => new()
    {
        Description = description,
        Content = contents.ToDictionary(c => c.MediaType, c => new OpenApiMediaType { Schema = c.Shape.ToSchema() }),
    };
}
