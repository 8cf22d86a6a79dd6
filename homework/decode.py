"""Greedy decoding of one prompt at a time for a plain Llama-shaped model, written out step by step.

`model.generate` at batch 1 spends most of a token outside the arithmetic that must happen: a growing
DynamicCache, the causal mask and the rotary tables rebuilt each step, logits processors and stopping checks.
And on this CPU, torch's bf16 matrix-vector product at batch 1 reads the weights at about a quarter of the
memory bandwidth (`python -m homework.base_llm bench` prints both). `GreedyDecoder` keeps the prompt's
keys and values in buffers of the final length, computes the rotary tables once, and on a CPU with oneDNN
runs each bf16 projection on weights prepacked once for a one-row input, q/k/v and gate/up each joined into
one product, the LM head packed too. Its tokens are generate's: the prefill is the model's own forward, and
each step computes what the model's layers compute, in the same order (tests/test_decode.py compares them
token for token).

In bf16 with oneDNN the step for all layers is one TorchScript function (`_packed_step`): a token's ~1,500 small
operators then run without Python between them, which took the course's 32-question generation case from
23 s of generating to 18-18.5 s here (docs/performance.md). Its arithmetic is the model's, op for op: the norm's fp32 steps, rotary
as q * cos + rotate_half(q) * sin (rotate_half's negation moved onto sin, which is exact), sdpa with GQA.
"""

from __future__ import annotations

import warnings
from typing import List

import torch
from torch.nn import functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb


def supports(model) -> bool:
    """Whether `GreedyDecoder` computes exactly what this model's forward does: a plain (no adapter) Llama
    decoder, SiLU MLP without biases, sdpa attention."""
    config = model.config
    return (type(model).__name__ == "LlamaForCausalLM" and config.hidden_act == "silu"
            and not getattr(config, "attention_bias", False) and not getattr(config, "mlp_bias", False)
            and getattr(config, "_attn_implementation", "sdpa") == "sdpa"
            and not getattr(model, "peft_config", None))


def _prepacked(dtype: torch.dtype, device: torch.device) -> bool:
    """oneDNN's bf16 product on weights packed for one row: the same sums as F.linear's bf16 path on CPU
    (which is oneDNN too), about 1.4x faster at batch 1 here. fp32 keeps F.linear, bit for bit."""
    return (device.type == "cpu" and dtype == torch.bfloat16 and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


class _Projection:
    """One or more Linear layers applied to one input: their weights joined by output rows into one packed
    product, or (unpacked) each layer's own weight in its own F.linear, exactly as the model runs them."""

    def __init__(self, packed: bool, *linears):
        self.sizes = [linear.out_features for linear in linears]
        self.packed = packed
        if packed:
            weight = torch.cat([linear.weight.detach() for linear in linears])
            self.weights = [torch.ops.mkldnn._reorder_linear_weight(weight, 1)]
        else:
            self.weights = [linear.weight for linear in linears]

    def __call__(self, x: torch.Tensor):
        if not self.packed:
            out = [F.linear(x, w) for w in self.weights]
            return out if len(out) > 1 else out[0]
        y = torch.ops.mkldnn._linear_pointwise(x, self.weights[0], None, "none", [], "")
        return y.split(self.sizes, dim=-1) if len(self.sizes) > 1 else y


def _norm(h: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm's forward, op for op: fp32 variance and scale, then the weight times the input dtype."""
    x = h.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(h.dtype)


def _packed_step(h: torch.Tensor, at: int, cos: torch.Tensor, sin_signed: torch.Tensor, norms1: List[torch.Tensor],
                 norms2: List[torch.Tensor], eps: float, qkv: List[torch.Tensor], o: List[torch.Tensor],
                 gate_up: List[torch.Tensor], down: List[torch.Tensor], keys: List[torch.Tensor],
                 values: List[torch.Tensor], heads: int, kv_heads: int, head_dim: int, inter: int, scaling: float,
                 final_norm: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """One token through every layer on prepacked weights: h is its [1, hidden] embedding, cos/sin_signed the
    [1, head_dim] rotary rows of position `at` (sin's first half negated); the caches are written at `at`."""
    half = head_dim // 2
    rotated = (heads + kv_heads) * head_dim
    for i in range(len(qkv)):
        y = torch.ops.mkldnn._linear_pointwise(_norm(h, norms1[i], eps), qkv[i], None, "none", [], "")
        qk = y[:, :rotated].view(heads + kv_heads, head_dim)
        qk = qk * cos + qk.roll(half, -1) * sin_signed  # roll swaps the halves; the sign is in sin_signed
        keys[i][0, :, at] = qk[heads:]
        values[i][0, :, at] = y[:, rotated:].view(kv_heads, head_dim)
        attn = torch.nn.functional.scaled_dot_product_attention(
            qk[:heads].view(1, heads, 1, head_dim), keys[i][:, :, :at + 1], values[i][:, :, :at + 1],
            scale=scaling, enable_gqa=kv_heads != heads)
        h = h + torch.ops.mkldnn._linear_pointwise(attn.view(1, heads * head_dim), o[i], None, "none", [], "")
        gu = torch.ops.mkldnn._linear_pointwise(_norm(h, norms2[i], eps), gate_up[i], None, "none", [], "")
        act = torch.nn.functional.silu(gu[:, :inter]) * gu[:, inter:]
        h = h + torch.ops.mkldnn._linear_pointwise(act, down[i], None, "none", [], "")
    return torch.ops.mkldnn._linear_pointwise(_norm(h, final_norm, eps), head, None, "none", [], "")[0]


_scripted = None


def _compiled_step():
    """`_packed_step` as TorchScript (scripted once a process), or the same function run by Python where this
    torch cannot script it."""
    global _scripted
    if _scripted is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is frozen, not gone, in 2.13
                _scripted = torch.jit.script(_packed_step)
        except Exception:  # noqa: BLE001 - any scripting failure leaves the identical Python function
            _scripted = _packed_step
    return _scripted


class GreedyDecoder:
    """Batch-1 greedy decoding for a model that `supports` accepts; weights are read from the model once, at
    construction, so build a new decoder after the weights change."""

    def __init__(self, model):
        if not supports(model):
            raise ValueError(f"GreedyDecoder needs a plain LlamaForCausalLM, not {type(model).__name__}")
        self.model = model
        config = model.config
        packed = _prepacked(model.dtype, model.device)
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.layers = []
        for layer in model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append((layer.input_layernorm, _Projection(packed, attn.q_proj, attn.k_proj, attn.v_proj),
                                _Projection(packed, attn.o_proj), attn.scaling, layer.post_attention_layernorm,
                                _Projection(packed, mlp.gate_proj, mlp.up_proj), _Projection(packed, mlp.down_proj),
                                mlp.act_fn))
        self.head = _Projection(packed, model.lm_head)  # 49152 x 576: a fifth of the weights read each token
        self.packed = packed
        if packed:
            norms = [(layer.input_layernorm, layer.post_attention_layernorm) for layer in model.model.layers]
            epsilons = {n.variance_epsilon for pair in norms for n in pair} | {model.model.norm.variance_epsilon}
            scalings = {layer[3] for layer in self.layers}
            if len(epsilons) > 1 or len(scalings) > 1:
                raise ValueError("GreedyDecoder's packed step needs one norm epsilon and one attention scaling")
            self._weights = dict(
                norms1=[a.weight for a, _ in norms], norms2=[b.weight for _, b in norms], eps=float(epsilons.pop()),
                qkv=[layer[1].weights[0] for layer in self.layers], o=[layer[2].weights[0] for layer in self.layers],
                gate_up=[layer[5].weights[0] for layer in self.layers],
                down=[layer[6].weights[0] for layer in self.layers], heads=self.heads, kv_heads=self.kv_heads,
                head_dim=self.head_dim, inter=config.intermediate_size, scaling=float(scalings.pop()),
                final_norm=model.model.norm.weight, head=self.head.weights[0])

    @torch.inference_mode()
    def __call__(self, ids: list[int], max_new_tokens: int, min_new_tokens: int = 0,
                 eos_token_id: int | None = None) -> list[int]:
        """The new tokens: greedy, EOS impossible before min_new_tokens, ending after EOS or max_new_tokens."""
        from transformers import DynamicCache

        model, inner = self.model, self.model.model
        device = model.device
        total = len(ids) + max_new_tokens
        positions = torch.arange(total, device=device)[None]
        cos, sin = inner.rotary_emb(torch.zeros(1, dtype=model.dtype, device=device), positions)
        cache = DynamicCache(config=model.config)
        logits = model(torch.tensor([ids], device=device), past_key_values=cache, use_cache=True).logits[0, -1]
        keys, values = [], []
        for layer in cache.layers:  # the prompt's keys and values, in buffers of the final length
            k = layer.keys.new_empty(1, self.kv_heads, total, self.head_dim)
            v = layer.values.new_empty(1, self.kv_heads, total, self.head_dim)
            k[:, :, :len(ids)], v[:, :, :len(ids)] = layer.keys, layer.values
            keys.append(k)
            values.append(v)
        if self.packed:
            half = self.head_dim // 2
            cos, sin = cos[0], torch.cat((-sin[0, :, :half], sin[0, :, half:]), -1)  # [total, head_dim]
            step_fn = _compiled_step()
        out: list[int] = []
        for step in range(max_new_tokens):
            if step < min_new_tokens and eos_token_id is not None:
                logits[eos_token_id] = float("-inf")
            token = int(logits.argmax())
            out.append(token)
            if token == eos_token_id or step == max_new_tokens - 1:
                break
            at = len(ids) + step
            if self.packed:
                h = inner.embed_tokens.weight[token].view(1, -1)
                logits = step_fn(h, at, cos[at:at + 1], sin[at:at + 1], keys=keys, values=values, **self._weights)
            else:
                logits = self._step(token, at, cos[:, at:at + 1], sin[:, at:at + 1], keys, values)
        return out

    def _step(self, token: int, at: int, cos, sin, keys, values) -> torch.Tensor:
        """The next token's logits, the cache written at position `at`: the model's layers written out (the
        unpacked path: fp32, or no oneDNN; each layer's own F.linear, bit for bit)."""
        inner = self.model.model
        h = inner.embed_tokens(torch.tensor([[token]], device=self.model.device))
        q_size = self.heads * self.head_dim
        for (norm1, qkv, o_proj, scaling, norm2, gate_up, down, act), k_cache, v_cache in zip(self.layers, keys, values):
            q, k, v = qkv(norm1(h))
            q = q.view(1, 1, self.heads, self.head_dim).transpose(1, 2)
            k = k.view(1, 1, self.kv_heads, self.head_dim).transpose(1, 2)
            v = v.view(1, 1, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            k_cache[:, :, at:at + 1] = k
            v_cache[:, :, at:at + 1] = v
            attn = F.scaled_dot_product_attention(q, k_cache[:, :, :at + 1], v_cache[:, :, :at + 1], scale=scaling,
                                                  enable_gqa=self.kv_heads != self.heads)
            h = h + o_proj(attn.transpose(1, 2).reshape(1, 1, q_size))
            gate, up = gate_up(norm2(h))
            h = h + down(act(gate) * up)
        return self.head(inner.norm(h))[0, -1]
