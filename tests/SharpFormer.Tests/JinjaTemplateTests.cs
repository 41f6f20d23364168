using System.Text.Json;
using SharpFormer.Templates;
using SharpFormer.Tokenizers;

namespace SharpFormer.Tests;

/// <summary>
/// The Jinja subset on real template constructs. Expected outputs are derived by reading the templates under
/// Jinja2 3.1's rules with trim_blocks and lstrip_blocks (transformers 4.40.2's environment); the expected strings of
/// the two theories were checked against Jinja2 3.1.6's ImmutableSandboxedEnvironment.
/// </summary>
public class JinjaTemplateTests
{
    static string Render(string template, string variablesJson = "{}")
    {
        using var doc = JsonDocument.Parse(variablesJson);
        var vars = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
        return JinjaTemplate.Parse(template).Render(vars);
    }

    [Theory]
    // trim_blocks: the newline after a block tag goes; lstrip_blocks: the indentation before it goes.
    [InlineData("{% if true %}\n  yes\n{% endif %}\nend", "  yes\nend")]
    [InlineData("a\n    {% if true %}\nb\n    {% endif %}\nc", "a\nb\nc")]
    // Not for output tags, and not when something else precedes the tag on its line.
    [InlineData("{{ 'x' }}\n  {{ 'y' }}", "x\n  y")]
    [InlineData("a {% if true %}b{% endif %}", "a b")]
    // - strips all whitespace, + disables the automatic rules.
    [InlineData("a  \n  {{- 'b' -}}  \n  c", "abc")]
    [InlineData("  {%+ if true %}x{% endif %}", "  x")]
    [InlineData("{% if true +%}\nx{% endif %}", "\nx")]
    // Comments vanish (with their newline); one trailing newline of the template is dropped.
    [InlineData("a{# note #}\nb\n", "ab")]
    [InlineData("{% raw %}{{ not evaluated }}{% endraw %}", "{{ not evaluated }}")]
    [InlineData("{%- raw -%}  {% x %}  {%- endraw %}", "{% x %}")]
    [InlineData("x\n  {# c #}\n  y", "x\n  y")]
    [InlineData("{% if true %}\n\n  {% endif %}", "\n")]
    [InlineData("  {{ 'a' }}  {% if true %}  b\n  {% endif %}", "  a    b\n")]
    public void WhitespaceRulesMatchJinja(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{% for x in xs %}{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}", "1/3,2/3,3/3")]
    [InlineData("{% for x in xs %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{% endfor %}", "03True12False21False")]
    [InlineData("{% for x in xs if x != 2 %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}", "1232")]
    [InlineData("{% for x in [] %}{{ x }}{% else %}none{% endfor %}", "none")]
    [InlineData("{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% endfor %}{{ ns.n }}", "6")]
    [InlineData("{% set n = 0 %}{% for x in xs %}{% set n = n + x %}{% endfor %}{{ n }}", "0")]
    [InlineData("{% for m in ms %}\n  {{ m.role }}\n{% endfor %}", "  user\n  assistant\n  user\n")]
    [InlineData("{% for x in xs %}{% if loop.first %}{% set y = 5 %}{% endif %}[{{ y }}]{% endfor %}", "[5][][]")]
    [InlineData("{{ 1.0 }} {{ 1e-5 }} {{ 123456789012345678.0 }} {{ 0.0001 }} {{ -2.5e-7 }}", "1.0 1e-05 1.2345678901234568e+17 0.0001 -2.5e-07")]
    [InlineData("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", "b=1;a=2;")]
    [InlineData("{{ xs[::-1] }} {{ xs[1:] }} {{ xs[-1] }} {{ 'abc'[1] }}", "[3, 2, 1] [2, 3] 3 b")]
    [InlineData("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 'a' ~ 2 * 3 }}", "7 3 2 1024 3.5 a6")]
    [InlineData("{{ none }} {{ true }} {{ [1, 'a'] }} {{ {'k': none} }} {{ 0.1 + 0.2 }} {{ 1e20 }}", "None True [1, 'a'] {'k': None} 0.30000000000000004 1e+20")]
    [InlineData("{{ 'a' in 'cat' }} {{ 2 in xs }} {{ 'a' in d }} {{ 5 not in xs }}", "True True True True")]
    [InlineData("{{ missing is defined }} {{ d is mapping }} {{ xs is iterable }} {{ 'x' is string }} {{ none is none }} {{ xs is not string }}", "False True True True True True")]
    [InlineData("{{ missing }}|{{ missing | default('dflt') }}|{{ '' | default('e', true) }}|{{ missing | length }}", "|dflt|e|0")]
    [InlineData("{{ '  hi  ' | trim }}|{{ ' x '.strip() }}|{{ 'a,b'.split(',') }}|{{ 'Hello'.startswith('He') }}|{{ 'ab'.upper() }}|{{ 'x y'.title() }}", "hi|x|['a', 'b']|True|AB|X Y")]
    [InlineData("{{ xs | join(', ') }} {{ xs | first }} {{ xs | last }} {{ xs | length }} {{ 'abc' | upper }} {{ xs | sum }}", "1, 2, 3 1 3 3 ABC 6")]
    [InlineData("{{ ms | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('+') }}", "u1+u2")]
    [InlineData("{{ ms | rejectattr('role', 'equalto', 'user') | list | length }}", "1")]
    [InlineData("{{ d | tojson }}", "{\"a\": 2, \"b\": 1}")]
    [InlineData("{{ {'k': '北京<&>\\'', 'n': [1, 2.5, true, none]} | tojson }}", "{\"k\": \"\\u5317\\u4eac\\u003c\\u0026\\u003e\\u0027\", \"n\": [1, 2.5, true, null]}")]
    [InlineData("{{ xs | tojson(indent=2) }}", "[\n  1,\n  2,\n  3\n]")]
    [InlineData("{% set a, b = xs[:2] %}{{ b }}{% set t %}in {{ a }}{% endset %} {{ t }}", "2 in 1")]
    [InlineData("{% if xs|length > 5 %}big{% elif xs|length > 2 %}mid{% else %}small{% endif %}", "mid")]
    [InlineData("{{ 'yes' if xs else 'no' }} {{ 'a' 'b' }} {{ ms[0]['role'] }} {{ ms[0].content }} {{ d.get('z', 9) }}", "yes ab user u1 9")]
    public void ExpressionsAndStatementsMatchJinja(string template, string expected) =>
        Assert.Equal(expected, Render(template, """{"xs": [1, 2, 3], "d": {"b": 1, "a": 2}, "ms": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]}"""));

    [Theory]
    [InlineData("line one\n{% macro m() %}{% endmacro %}", "line 2: tag 'macro' is not supported")]
    [InlineData("{{ x | wordwrap }}", "line 1: filter 'wordwrap' is not supported")]
    [InlineData("\n\n{{ x is prime }}", "line 3: test 'prime' is not supported")]
    [InlineData("{% for x in y %}", "line 1: {% for %} without {% endfor %}")]
    [InlineData("{% if x %}{% break %}{% endif %}", "line 1: tag 'break' is not supported")]
    [InlineData("{{ (1 }}", "line 1: expected ')'")]
    [InlineData("{{ 1 ~ 2 + 3 }}", "line 1: unsupported operand types for +: str and int")]
    [InlineData("{{ missing.attr }}", "line 1: 'missing' is undefined")]
    public void OutsideTheSubsetIsAnErrorNamingConstructAndLine(string template, string message)
    {
        var e = Assert.ThrowsAny<SharpFormerException>(() => Render(template));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    static ITokenizer Qwen2 => AutoTokenizer.FromFolder(SharedPaths.Fixture("qwen2-tiny"));

    [Fact]
    public void RaiseExceptionIsAOneLineError()
    {
        var t = ChatTemplate.FromSource("{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}", Qwen2);
        var e = Assert.Throws<SharpFormerException>(() => t.Render([new ChatMessage("assistant", "hi")], false));
        Assert.Equal("chat template: chat_template raised: Conversation roles must alternate user/assistant/user/assistant/...", e.Message);
    }

    /// <summary>Qwen2.5-Instruct's template (tools path not taken: transformers 4.40.2 passes no <c>tools</c>).</summary>
    const string Qwen25 = """
        {%- if tools %}
            {{- '<|im_start|>system\n' }}
            {%- if messages[0]['role'] == 'system' %}
                {{- messages[0]['content'] }}
            {%- else %}
                {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
            {%- endif %}
            {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
            {%- for tool in tools %}
                {{- "\n" }}
                {{- tool | tojson }}
            {%- endfor %}
            {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
        {%- else %}
            {%- if messages[0]['role'] == 'system' %}
                {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
            {%- else %}
                {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
            {%- endif %}
        {%- endif %}
        {%- for message in messages %}
            {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
                {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
            {%- elif message.role == "assistant" %}
                {{- '<|im_start|>' + message.role }}
                {%- if message.content %}
                    {{- '\n' + message.content }}
                {%- endif %}
                {%- for tool_call in message.tool_calls %}
                    {%- if tool_call.function is defined %}
                        {%- set tool_call = tool_call.function %}
                    {%- endif %}
                    {{- '\n<tool_call>\n{"name": "' }}
                    {{- tool_call.name }}
                    {{- '", "arguments": ' }}
                    {{- tool_call.arguments | tojson }}
                    {{- '}\n</tool_call>' }}
                {%- endfor %}
                {{- '<|im_end|>\n' }}
            {%- elif message.role == "tool" %}
                {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
                    {{- '<|im_start|>user' }}
                {%- endif %}
                {{- '\n<tool_response>\n' }}
                {{- message.content }}
                {{- '\n</tool_response>' }}
                {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
                    {{- '<|im_end|>\n' }}
                {%- endif %}
            {%- endif %}
        {%- endfor %}
        {%- if add_generation_prompt %}
            {{- '<|im_start|>assistant\n' }}
        {%- endif %}

        """;

    [Fact]
    public void Qwen25TemplateRendersToolCallsAndResults()
    {
        const string conversation = """
            [{"role": "user", "content": "北京天气如何?"},
             {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"unit": "c", "city": "北京"}}}]},
             {"role": "tool", "content": "晴, 25°C"},
             {"role": "tool", "content": "明天下雨"},
             {"role": "assistant", "content": "今天晴。"},
             {"role": "system", "content": "Be brief."}]
            """;
        using var doc = JsonDocument.Parse(conversation);
        var t = ChatTemplate.FromSource(Qwen25, Qwen2);
        Assert.Equal(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
            "<|im_start|>user\n北京天气如何?<|im_end|>\n" +
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"\\u5317\\u4eac\", \"unit\": \"c\"}}\n</tool_call><|im_end|>\n" +
            "<|im_start|>user\n<tool_response>\n晴, 25°C\n</tool_response>\n<tool_response>\n明天下雨\n</tool_response><|im_end|>\n" +
            "<|im_start|>assistant\n今天晴。<|im_end|>\n" +
            "<|im_start|>system\nBe brief.<|im_end|>\n" +
            "<|im_start|>assistant\n",
            t.Render(doc.RootElement, addGenerationPrompt: true));
    }

    /// <summary>Llama 3 Instruct's template: <c>bos_token</c> from the tokenizer, and <c>| trim</c> binding tighter than <c>+</c>.</summary>
    [Fact]
    public void Llama3TemplateRendersWithBosAndTrim()
    {
        const string llama3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
        var gpt2 = AutoTokenizer.FromFolder(SharedPaths.Fixture("llama-tiny"));      // bos_token <|endoftext|>
        var t = ChatTemplate.FromSource(llama3, gpt2);
        Assert.Equal("<|endoftext|><|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                     t.Render([new ChatMessage("system", "  Be kind.\n"), new ChatMessage("user", "Hi!")], addGenerationPrompt: true));
    }
}
