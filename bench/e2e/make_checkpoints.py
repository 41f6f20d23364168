"""Creates the full-size random-weight checkpoints and the shared benchmark inputs (deterministic, fixed seeds).

  bert-base-chinese shape: BertModel + pooler, 12 x 768, 12 heads, FFN 3072, vocab 21128, 512 positions.
  gpt2 (124M) shape:       GPT2LMHeadModel, 12 x 768, 12 heads, vocab 50257, 1024 positions, lm_head tied.
  Qwen2.5-0.5B shape:      Qwen2ForCausalLM, 24 x 896, 14 heads, 2 KV heads, FFN 4864, vocab 151936, tied,
                           rope_theta 1e6, 32768 positions, q/k/v biases, BF16 on disk (Qwen2.5-0.5B's config.json).

Weights (matrices, embeddings and biases) ~ N(0, 0.02); LayerNorm / RMSNorm weight 1, bias 0. HuggingFace names,
model.safetensors; tied lm_head stored once (as wte / embed_tokens), like save_pretrained.
Also writes inputs.json (token ids every engine runs on) and checks torch_models.py against the HuggingFace
goldens of the tiny fixtures in tests/fixtures (bert-tiny, gpt2-tiny, and qwen2-tiny for --models qwen2).
Default paths are resolved from the repository root: the fixtures in <repo>/tests/fixtures, the tokenizer
vocabularies (not the project's) in <repo>/../shared/vocab.
"""
import argparse
import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import torch_models as tm  # noqa: E402

BERT_CONFIG = {
    "architectures": ["BertModel"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None, "directionality": "bidi", "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
    "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
    "pooler_fc_size": 768, "pooler_num_attention_heads": 12, "pooler_num_fc_layers": 3, "pooler_size_per_head": 128,
    "pooler_type": "first_token_transform", "position_embedding_type": "absolute", "torch_dtype": "float32",
    "transformers_version": "4.40.2", "type_vocab_size": 2, "use_cache": True, "vocab_size": 21128,
}
GPT2_CONFIG = {
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": 50256,
    "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
    "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_inner": None, "n_layer": 12,
    "n_positions": 1024, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1, "scale_attn_by_inverse_layer_idx": False,
    "scale_attn_weights": True, "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
    "summary_type": "cls_index", "summary_use_proj": True, "torch_dtype": "float32", "transformers_version": "4.40.2",
    "use_cache": True, "vocab_size": 50257,
}

# Qwen2.5-0.5B's config.json (Hugging Face hub, Qwen/Qwen2.5-0.5B), transformers_version set to the version matched.
QWEN2_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
    "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
    "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14,
    "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 32768, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.40.2",
    "use_cache": True, "use_mrope": False, "use_sliding_window": False, "vocab_size": 151936,
}


def random_state(model: torch.nn.Module, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, p in model.named_parameters():
        if ("LayerNorm" in name or ".ln_" in name or name.startswith("transformer.ln_f") or "ln_1" in name or "ln_2" in name
                or name.endswith("layernorm.weight") or name == "model.norm.weight"):
            t = torch.ones(p.shape) if name.endswith("weight") else torch.zeros(p.shape)
        else:
            t = torch.empty(p.shape).normal_(0.0, 0.02, generator=g)
        sd[name] = t.to(dtype)   # one tensor at a time: the float32 copy of a large model is never whole
    return sd


def write_model(out_dir: str, config: dict, cls, seed: int, vocab_files, dtype=torch.float32):
    os.makedirs(out_dir, exist_ok=True)
    with tm._NoInit():
        model = cls(config)
    sd = random_state(model, seed, dtype)
    del model
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    tm.save_safetensors(sd, tmp, {"format": "pt"})
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    for src in vocab_files:
        shutil.copyfile(src, os.path.join(out_dir, os.path.basename(src)))


def make_inputs(path: str):
    g = torch.Generator().manual_seed(20261128)

    def ids(b, t, lo, hi):
        return torch.randint(lo, hi, (b, t), generator=g).tolist()

    inputs = {
        # BERT: ids from the ordinary vocabulary (>= 106, past [unused*]/[CLS]/...), [CLS] first, [SEP] last.
        "bert": {},
        "gpt2": {"prefill_1x512": ids(1, 512, 0, 50256), "prompt_1x16": ids(1, 16, 0, 50256), "prompt_8x16": ids(8, 16, 0, 50256)},
    }
    for b, t in [(1, 16), (1, 128), (1, 512), (32, 128)]:
        rows = ids(b, t, 106, 21128)
        for r in rows:
            r[0], r[-1] = 101, 102
        inputs["bert"][f"{b}x{t}"] = rows
    # Qwen2: ids of the ordinary vocabulary (below 151643, the first special token). Drawn last, so that adding the
    # model kept the other models' inputs identical.
    inputs["qwen2"] = {"prefill_1x512": ids(1, 512, 0, 151643), "prefill_1x4096": ids(1, 4096, 0, 151643),
                       "prompt_1x16": ids(1, 16, 0, 151643), "prompt_8x16": ids(8, 16, 0, 151643)}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(inputs, f)


def incremental_diff(m, ids, start: int) -> float:
    """Max |logits of a cached decode, one token at a time from position `start`, − the full forward's|."""
    logits_full, _ = m(ids)
    _, past = m(ids[:, :start])
    step_logits = []
    for j in range(start, ids.shape[1]):
        lg, past = m(ids[:, j:j + 1], past)
        step_logits.append(lg)
    return (torch.cat(step_logits, 1) - logits_full[:, start:]).abs().max().item()


def check_qwen2(fixtures: str):
    """The Qwen2 peer vs transformers 4.40's qwen2-tiny goldens (BF16 weights, GQA, tied): logits, presents, cache."""
    d = os.path.join(fixtures, "qwen2-tiny")
    if not os.path.isdir(d):
        sys.exit(f"{d} not found: the Qwen2 peer cannot be checked, so it is not timed")
    worst = 0.0
    with torch.no_grad():
        m = tm.load_model(d)
        g = tm.load_safetensors(os.path.join(d, "goldens.safetensors"))
        for case in ("prompt_en", "prompt_zh", "prompt_mixed"):
            logits, presents = m(g[f"{case}.input_ids"].long())
            ref = g.get(f"{case}.logits")
            diff = (logits - ref).abs().max().item() if ref is not None else (logits[:, -1] - g[f"{case}.logits_last"]).abs().max().item()
            for layer, (k, v) in enumerate(presents):
                diff = max(diff, (k - g[f"{case}.present.{layer}.key"]).abs().max().item(),
                           (v - g[f"{case}.present.{layer}.value"]).abs().max().item())
            worst = max(worst, diff)
        worst = max(worst, incremental_diff(m, g["prompt_en.input_ids"].long(), 3))
    print(f"torch_models Qwen2 vs HuggingFace goldens (qwen2-tiny: logits, presents) and KV-cache consistency: max abs diff {worst:.2e}")
    if worst > 1e-4:
        sys.exit(f"torch_models.py's Qwen2 disagrees with the HuggingFace goldens (max abs diff {worst:.3e})")


def check_against_fixtures(fixtures: str):
    """torch_models.py vs HuggingFace transformers 4.40 goldens on the tiny fixtures (proves the peer is faithful)."""
    bert_dir, gpt_dir = os.path.join(fixtures, "bert-tiny"), os.path.join(fixtures, "gpt2-tiny")
    if not (os.path.isdir(bert_dir) and os.path.isdir(gpt_dir)):
        print("fixtures not found; skipping the torch_models check", file=sys.stderr)
        return
    worst = 0.0
    with torch.no_grad():
        m = tm.load_model(bert_dir)
        g = tm.load_safetensors(os.path.join(bert_dir, "goldens.safetensors"))
        for case in ("single", "pair", "batch"):
            lhs, pooled = m(g[f"{case}.input_ids"].long(), g[f"{case}.token_type_ids"].long(), g[f"{case}.attention_mask"].long())
            d = max((lhs - g[f"{case}.last_hidden_state"]).abs().max().item(), (pooled - g[f"{case}.pooler_output"]).abs().max().item())
            worst = max(worst, d)
        m = tm.load_model(gpt_dir)
        g = tm.load_safetensors(os.path.join(gpt_dir, "goldens.safetensors"))
        for case in ("prompt_en", "prompt_mixed", "prompt_zh"):
            logits, presents = m(g[f"{case}.input_ids"].long())
            d = (logits - g[f"{case}.logits"]).abs().max().item()
            if f"{case}.present.1.key" in g:
                d = max(d, (presents[1][0] - g[f"{case}.present.1.key"]).abs().max().item())
            worst = max(worst, d)
        # incremental decoding through the cache must match a full forward
        worst = max(worst, incremental_diff(m, g["prompt_en.input_ids"].long(), 3))
    print(f"torch_models vs HuggingFace goldens (bert-tiny, gpt2-tiny) and KV-cache consistency: max abs diff {worst:.2e}")
    if worst > 1e-4:
        sys.exit(f"torch_models.py disagrees with the HuggingFace goldens (max abs diff {worst:.3e})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--vocab", default=os.path.join(REPO, "..", "shared", "vocab"))
    ap.add_argument("--fixtures", default=os.path.join(REPO, "tests", "fixtures"))
    ap.add_argument("--models", default="bert,gpt2", help="comma-separated: bert, gpt2, qwen2")
    a = ap.parse_args()
    models = set(a.models.split(","))
    if models & {"bert", "gpt2"}:
        check_against_fixtures(a.fixtures)
    if "qwen2" in models:
        check_qwen2(a.fixtures)
    bert = os.path.join(a.cache, "bert-base-chinese")
    gpt = os.path.join(a.cache, "gpt2")
    qwen = os.path.join(a.cache, "qwen2.5-0.5b")
    if "qwen2" in models and not os.path.exists(os.path.join(qwen, "model.safetensors")):
        print(f"writing {qwen} ...", file=sys.stderr)
        write_model(qwen, QWEN2_CONFIG, tm.Qwen2ForCausalLM, 3,
                    [os.path.join(a.vocab, "qwen2", f) for f in ("vocab.json", "merges.txt", "tokenizer_config.json")], torch.bfloat16)
    if "bert" in models and not os.path.exists(os.path.join(bert, "model.safetensors")):
        print(f"writing {bert} ...", file=sys.stderr)
        write_model(bert, BERT_CONFIG, tm.BertModel, 1, [os.path.join(a.vocab, "bert-base-chinese", "vocab.txt")])
    if "gpt2" in models and not os.path.exists(os.path.join(gpt, "model.safetensors")):
        print(f"writing {gpt} ...", file=sys.stderr)
        write_model(gpt, GPT2_CONFIG, tm.Gpt2LMHead, 2,
                    [os.path.join(a.vocab, "gpt2", "vocab.json"), os.path.join(a.vocab, "gpt2", "merges.txt")])
    tok_cfg = os.path.join(bert, "tokenizer_config.json")  # as bert-base-chinese's: cased, 512 tokens
    if "bert" in models and not os.path.exists(tok_cfg):
        with open(tok_cfg, "w", encoding="utf-8") as f:
            json.dump({"do_lower_case": False, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}, f)
    inp = os.path.join(a.cache, "inputs.json")
    # A cache from before a model was added lacks its inputs: the others' are drawn first, so they stay the same.
    if not os.path.exists(inp) or not models <= set(json.load(open(inp, encoding="utf-8"))):
        make_inputs(inp)


if __name__ == "__main__":
    main()
