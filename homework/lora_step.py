"""A LoRA linear layer's training forward and backward as one autograd node, for a faster CPU step.

    python -m homework.sft speed      # times the step with this path against peft's own forward

peft runs an adapted layer as five autograd nodes (base linear, A, B, scale, add), each with its casts:
`torch.profiler` showed ~13,000 operator calls a step, and about 0.4 s of a 1.0 s step outside matrix
products (docs/performance.md). `FusedLoRA` computes the same function,

    y = x W^T + s (x A^T) B^T,

with one node and its backward written out: the scale is applied to the rank-r intermediate instead of the
[tokens, out] result, the add is folded into the matrix product (`addmm`), and the fp32 adapter is cast to
the activation dtype once. Gradients go to x, A and B only (the base weight is frozen). `install` swaps it
into every peft LoRA linear layer of a model for training; the adapter, its parameters and what peft saves
are unchanged. A test checks loss and gradients against peft's forward.
"""

from __future__ import annotations

import torch


class FusedLoRA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, lora_a, lora_b, scale):
        dtype = x.dtype
        a, b = lora_a.to(dtype), lora_b.to(dtype)
        flat = x.reshape(-1, x.shape[-1])
        low = flat @ a.t() * scale  # [tokens, r]: the scale on the small side
        out = torch.addmm(flat @ weight.t() if bias is None else torch.addmm(bias.to(dtype), flat, weight.t()),
                          low, b.t())
        ctx.save_for_backward(flat, weight, a, b, low)
        ctx.scale, ctx.shape, ctx.dtypes = scale, x.shape, (lora_a.dtype, lora_b.dtype)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        flat, weight, a, b, low = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1]).to(flat.dtype)
        g_low = (g @ b) * ctx.scale  # [tokens, r]
        grad_x = torch.addmm(g @ weight, g_low, a).reshape(ctx.shape) if ctx.needs_input_grad[0] else None
        grad_a = (g_low.t() @ flat).to(ctx.dtypes[0])
        grad_b = (g.t() @ low).to(ctx.dtypes[1])
        return grad_x, None, None, grad_a, grad_b, None


def _fused_forward(layer):
    """A forward for one peft LoRA Linear that takes the fused path when it can, and peft's own otherwise."""
    plain = layer.forward

    def forward(x, *args, **kwargs):
        adapters = layer.active_adapters
        if (args or kwargs or layer.disable_adapters or layer.merged or len(adapters) != 1
                or adapters[0] not in layer.lora_A or not torch.is_grad_enabled()):
            return plain(x, *args, **kwargs)
        name = adapters[0]
        base = layer.get_base_layer()
        return FusedLoRA.apply(x, base.weight, base.bias, layer.lora_A[name].weight, layer.lora_B[name].weight,
                               layer.scaling[name])

    return forward


def install(model) -> int:
    """Route every vanilla peft LoRA Linear of `model` (no dropout, no variant) through `FusedLoRA`; the count."""
    from peft.tuners.lora.layer import Linear

    count = 0
    for module in model.modules():
        if type(module) is Linear and not module.lora_variant and all(
                isinstance(d, torch.nn.Identity) for d in module.lora_dropout.values()):
            module.forward = _fused_forward(module)
            count += 1
    return count
