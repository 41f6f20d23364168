"""Plain-PyTorch peers of SharpFormer's models, written by hand (transformers is not installable here).

* BertModel  — HuggingFace ``BertModel`` (post-LN, erf GELU, pooler), parameter names verbatim
  (the unprefixed names ``save_pretrained`` writes for a bare BertModel).
* Gpt2LMHead — HuggingFace ``GPT2LMHeadModel`` (pre-LN, Conv1D weights [in, out], gelu_new, lm_head tied to
  wte), with a per-layer key/value cache for decoding (``torch.cat`` growth, as transformers does).
* Qwen2ForCausalLM — HuggingFace ``Qwen2ForCausalLM`` with ``attn_implementation="eager"`` (RMSNorm, RoPE,
  grouped-query attention through repeat_kv, q/k/v biases, gated SiLU MLP, tied or untied lm_head), the same cache.
* safetensors read/write with json + torch.frombuffer (no safetensors package).

Needs only Debian's python3-torch (torch 1.13) and numpy.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------- safetensors

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}
_NAMES = {v: k for k, v in _DTYPES.items()}


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """Reads a whole safetensors file; tensors share one buffer (no per-tensor copy)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    base = 8 + n
    out: Dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        count = (e - b) // torch.tensor([], dtype=dtype).element_size()
        t = torch.frombuffer(data, dtype=dtype, count=count, offset=base + b) if count else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


def save_safetensors(tensors: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes tensors (sorted by name, as the safetensors package does) with an 8-byte aligned header."""
    header: Dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    names = sorted(tensors)
    for name in names:
        t = tensors[name]
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name in names:
            t = tensors[name].detach().contiguous().cpu()
            # numpy has no bfloat16: its bytes go out through a same-width integer view.
            f.write((t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes())


# ----------------------------------------------------------------------------------------------- BERT

def _ln(h: int, eps: float) -> nn.LayerNorm:
    return nn.LayerNorm(h, eps=eps)


class _BertEmbeddings(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        h = c["hidden_size"]
        self.word_embeddings = nn.Embedding(c["vocab_size"], h)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], h)
        self.LayerNorm = _ln(h, c["layer_norm_eps"])

    def forward(self, ids, type_ids):
        t = ids.shape[1]
        pos = torch.arange(t, dtype=torch.long, device=ids.device).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(type_ids)
        return self.LayerNorm(x)


class _BertSelfAttention(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.d = h // self.heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)

    def _split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.d).transpose(1, 2)

    def forward(self, x, ext_mask):
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + ext_mask
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).contiguous()
        return ctx.view(x.shape)


class _BertSelfOutput(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.LayerNorm = _ln(c["hidden_size"], c["layer_norm_eps"])

    def forward(self, h, resid):
        return self.LayerNorm(self.dense(h) + resid)


class _BertAttention(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.self = _BertSelfAttention(c)
        self.output = _BertSelfOutput(c)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class _BertIntermediate(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])
        assert c.get("hidden_act", "gelu") == "gelu"

    def forward(self, x):
        return F.gelu(self.dense(x))  # erf GELU, as HF "gelu"


class _BertOutput(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.dense = nn.Linear(c["intermediate_size"], c["hidden_size"])
        self.LayerNorm = _ln(c["hidden_size"], c["layer_norm_eps"])

    def forward(self, h, resid):
        return self.LayerNorm(self.dense(h) + resid)


class _BertLayer(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.attention = _BertAttention(c)
        self.intermediate = _BertIntermediate(c)
        self.output = _BertOutput(c)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class _BertEncoder(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.layer = nn.ModuleList([_BertLayer(c) for _ in range(c["num_hidden_layers"])])


class _BertPooler(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    """HuggingFace BertModel: returns (last_hidden_state [B,T,H], pooler_output [B,H])."""

    def __init__(self, c: dict):
        super().__init__()
        self.config = c
        self.embeddings = _BertEmbeddings(c)
        self.encoder = _BertEncoder(c)
        self.pooler = _BertPooler(c)

    def forward(self, input_ids, token_type_ids, attention_mask):
        x = self.embeddings(input_ids, token_type_ids)
        # HF's extended mask: (1 - mask) * finfo.min, broadcast over heads and query rows.
        ext = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, ext)
        return x, self.pooler(x)


# ----------------------------------------------------------------------------------------------- GPT-2

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Conv1D(nn.Module):
    """HF Conv1D: weight [in, out], y = x @ W + b."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        shape = x.shape[:-1] + (self.weight.shape[1],)
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(shape)


class _Gpt2Attention(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        e = c["n_embd"]
        self.heads = c["n_head"]
        self.d = e // self.heads
        self.c_attn = Conv1D(e, 3 * e)
        self.c_proj = Conv1D(e, e)

    def forward(self, x, past_k, past_v):
        b, t, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)
        q = q.view(b, t, self.heads, self.d).transpose(1, 2)
        k = k.view(b, t, self.heads, self.d).transpose(1, 2)
        v = v.view(b, t, self.heads, self.d).transpose(1, 2)
        if past_k is not None:
            k = torch.cat((past_k, k), dim=2)
            v = torch.cat((past_v, v), dim=2)
        total = k.shape[2]
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d)
        # Causal: query i (absolute position past + i) sees keys j <= past + i.
        past = total - t
        qpos = torch.arange(t, device=x.device).unsqueeze(1) + past
        kpos = torch.arange(total, device=x.device).unsqueeze(0)
        scores = scores.masked_fill(kpos > qpos, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).contiguous().view(b, t, e)
        return self.c_proj(ctx), k, v


class _Gpt2Mlp(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        e = c["n_embd"]
        inner = c.get("n_inner") or 4 * e
        self.c_fc = Conv1D(e, inner)
        self.c_proj = Conv1D(inner, e)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class _Gpt2Block(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        e, eps = c["n_embd"], c.get("layer_norm_epsilon", 1e-5)
        self.ln_1 = nn.LayerNorm(e, eps=eps)
        self.attn = _Gpt2Attention(c)
        self.ln_2 = nn.LayerNorm(e, eps=eps)
        self.mlp = _Gpt2Mlp(c)

    def forward(self, x, past_k, past_v):
        a, k, v = self.attn(self.ln_1(x), past_k, past_v)
        x = x + a
        return x + self.mlp(self.ln_2(x)), k, v


class _Gpt2Transformer(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = nn.Embedding(c["n_positions"], c["n_embd"])
        self.h = nn.ModuleList([_Gpt2Block(c) for _ in range(c["n_layer"])])
        self.ln_f = nn.LayerNorm(c["n_embd"], eps=c.get("layer_norm_epsilon", 1e-5))


class Gpt2LMHead(nn.Module):
    """HF GPT2LMHeadModel. forward(ids, past) -> (logits, presents); presents = [(k, v)] per layer, [B,H,Tk,D]."""

    def __init__(self, c: dict):
        super().__init__()
        self.config = c
        self.transformer = _Gpt2Transformer(c)

    def forward(self, input_ids, past: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None, last_only: bool = False):
        tr = self.transformer
        t = input_ids.shape[1]
        p = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(p, p + t, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = tr.wte(input_ids) + tr.wpe(pos)
        presents = []
        for i, block in enumerate(tr.h):
            pk, pv = (None, None) if past is None else past[i]
            x, k, v = block(x, pk, pv)
            presents.append((k, v))
        x = tr.ln_f(x)
        if last_only:
            x = x[:, -1:, :]
        logits = torch.matmul(x, tr.wte.weight.t())  # tied lm_head
        return logits, presents

    @torch.no_grad()
    def greedy(self, prompt: torch.Tensor, new_tokens: int) -> torch.Tensor:
        """Greedy decoding: prefill the prompt, then one token per step with the KV cache. Returns [B, new_tokens]."""
        logits, past = self(prompt, None, last_only=True)
        nxt = logits[:, -1, :].argmax(-1, keepdim=True)
        out = [nxt]
        for _ in range(new_tokens - 1):
            logits, past = self(nxt, past, last_only=True)
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            out.append(nxt)
        return torch.cat(out, dim=1)


# ----------------------------------------------------------------------------------------------- Qwen2

class RMSNorm(nn.Module):
    """HF Qwen2RMSNorm / LlamaRMSNorm: computed in float32, cast back, then scaled."""

    def __init__(self, h: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(h))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def _rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class _Rotary:
    """HF Qwen2RotaryEmbedding (4.40): cos/sin of positions · inv_freq, duplicated over both halves, cast to x's dtype."""

    def __init__(self, dim: int, base: float):
        self.inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))

    def __call__(self, positions, dtype):
        freqs = torch.outer(positions.float(), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


class _Qwen2Attention(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        h = c["hidden_size"]
        self.heads, self.kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        self.d = h // self.heads
        self.q_proj = nn.Linear(h, self.heads * self.d, bias=True)
        self.k_proj = nn.Linear(h, self.kv_heads * self.d, bias=True)
        self.v_proj = nn.Linear(h, self.kv_heads * self.d, bias=True)
        self.o_proj = nn.Linear(self.heads * self.d, h, bias=False)

    def forward(self, x, cos, sin, past_k, past_v):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.d).transpose(1, 2)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        if past_k is not None:
            k = torch.cat((past_k, k), dim=2)
            v = torch.cat((past_v, v), dim=2)
        g = self.heads // self.kv_heads
        kr, vr = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)   # HF repeat_kv
        total = k.shape[2]
        scores = torch.matmul(q, kr.transpose(2, 3)) / math.sqrt(self.d)
        qpos = torch.arange(t).unsqueeze(1) + (total - t)
        scores = scores.masked_fill(torch.arange(total).unsqueeze(0) > qpos, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        ctx = torch.matmul(probs, vr).transpose(1, 2).reshape(b, t, self.heads * self.d)
        return self.o_proj(ctx), k, v


class _Qwen2Mlp(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        h, i = c["hidden_size"], c["intermediate_size"]
        assert c.get("hidden_act", "silu") == "silu"
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class _Qwen2Layer(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        eps = c.get("rms_norm_eps", 1e-6)
        self.input_layernorm = RMSNorm(c["hidden_size"], eps)
        self.self_attn = _Qwen2Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], eps)
        self.mlp = _Qwen2Mlp(c)

    def forward(self, x, cos, sin, past_k, past_v):
        a, k, v = self.self_attn(self.input_layernorm(x), cos, sin, past_k, past_v)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), k, v


class _Qwen2Body(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([_Qwen2Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c.get("rms_norm_eps", 1e-6))


class Qwen2ForCausalLM(nn.Module):
    """HF Qwen2ForCausalLM. forward(ids, past) -> (logits, presents); presents = [(k, v)] per layer, [B, kvH, Tk, D]."""

    def __init__(self, c: dict):
        super().__init__()
        self.config = c
        self.model = _Qwen2Body(c)
        self.tied = c.get("tie_word_embeddings", False)
        if not self.tied:
            self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.rope = _Rotary(c["hidden_size"] // c["num_attention_heads"], c.get("rope_theta", 10000.0))

    def forward(self, input_ids, past: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None, last_only: bool = False):
        m = self.model
        t = input_ids.shape[1]
        p = 0 if past is None else past[0][0].shape[2]
        x = m.embed_tokens(input_ids)
        cos, sin = self.rope(torch.arange(p, p + t), x.dtype)
        presents = []
        for i, layer in enumerate(m.layers):
            pk, pv = (None, None) if past is None else past[i]
            x, k, v = layer(x, cos, sin, pk, pv)
            presents.append((k, v))
        x = m.norm(x)
        if last_only:
            x = x[:, -1:, :]
        head = m.embed_tokens.weight if self.tied else self.lm_head.weight
        return torch.matmul(x, head.t()), presents

    greedy = Gpt2LMHead.greedy


class Gpt2WithPastForOnnx(nn.Module):
    """ONNX export wrapper: flat inputs (input_ids, past_key_0, past_value_0, ...) -> (logits, present_key_0, ...)."""

    def __init__(self, model: Gpt2LMHead):
        super().__init__()
        self.model = model

    def forward(self, input_ids, *flat_past):
        past = [(flat_past[2 * i], flat_past[2 * i + 1]) for i in range(len(flat_past) // 2)]
        logits, presents = self.model(input_ids, past)
        flat = []
        for k, v in presents:
            flat += [k, v]
        return (logits, *flat)


# ----------------------------------------------------------------------------------------------- loading

def load_config(model_dir: str) -> dict:
    with open(f"{model_dir}/config.json", encoding="utf-8") as f:
        return json.load(f)


class _NoInit:
    """Builds modules without initialising (or touching) their parameters: the checkpoint replaces them."""

    def __enter__(self):
        self._saved = (nn.Linear.reset_parameters, nn.Embedding.reset_parameters)
        nn.Linear.reset_parameters = lambda self: None
        nn.Embedding.reset_parameters = lambda self: None

    def __exit__(self, *exc):
        nn.Linear.reset_parameters, nn.Embedding.reset_parameters = self._saved


def _assign(model: nn.Module, sd: Dict[str, torch.Tensor]) -> None:
    """Points every parameter at the checkpoint's tensor (no copy); every parameter must be present."""
    expected = {n for n, _ in model.named_parameters()}
    missing = expected - set(sd)
    unexpected = set(sd) - expected
    if missing or unexpected:
        raise KeyError(f"checkpoint mismatch: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    for name, t in sd.items():
        *path, leaf = name.split(".")
        mod = model
        for p in path:
            mod = getattr(mod, p)
        old = getattr(mod, leaf)
        if tuple(old.shape) != tuple(t.shape):
            raise ValueError(f"{name}: checkpoint shape {tuple(t.shape)}, model {tuple(old.shape)}")
        setattr(mod, leaf, nn.Parameter(t.float() if t.dtype != torch.float32 else t, requires_grad=False))


def load_model(model_dir: str) -> nn.Module:
    c = load_config(model_dir)
    sd = load_safetensors(f"{model_dir}/model.safetensors")
    with _NoInit():
        if c["model_type"] == "bert":
            m = BertModel(c)
            # BertModel ignores pre-training / task heads (cls.*, classifier.*), as HF's from_pretrained does.
            sd = {k[5:] if k.startswith("bert.") else k: v for k, v in sd.items()
                  if not k.startswith(("cls.", "classifier.")) and not k.endswith("position_ids")}
        elif c["model_type"] == "qwen2":
            m = Qwen2ForCausalLM(c)
            sd = {k: v for k, v in sd.items() if not (m.tied and k == "lm_head.weight")}
        elif c["model_type"] == "gpt2":
            m = Gpt2LMHead(c)
            sd = {k if k.startswith("transformer.") else "transformer." + k: v
                  for k, v in sd.items() if k != "lm_head.weight"}
        else:
            raise ValueError(c["model_type"])
    _assign(m, sd)
    return m.eval()
