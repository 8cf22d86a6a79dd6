"""A LoRA linear layer's training forward and backward as one autograd node, for a faster CPU step.

    python -m homework.sft speed      # times the step with this path against peft's own forward

peft runs an adapted layer as five autograd nodes (base linear, A, B, scale, add), each with its casts:
`torch.profiler` showed ~13,000 operator calls a step, and about 0.4 s of a 1.0 s step outside matrix
products (docs/performance.md). `FusedLoRA` computes the same function,

    y = x W^T + s (x A^T) B^T,

with one node and its backward written out: the scale is applied to the rank-r intermediate instead of the
[tokens, out] result, the add is folded into the matrix product (`addmm`), and the fp32 adapter is cast to
the activation dtype once. Gradients go to x, A and B only (the base weight is frozen). `register` has peft
build each adapted linear layer as `FusedLinear`, a LoRA Linear whose forward takes this path in training
(peft's own otherwise); the adapter, its parameters and what peft saves are unchanged. A test checks loss and
gradients against peft's forward.
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


def fused_layer_class():
    """`FusedLinear`: a peft LoRA Linear whose training forward is `FusedLoRA`; built on first use (peft is heavy).

    It is given to peft through its custom-layer hook (`register`), so peft builds every adapted linear layer
    as this class from the start: its parameters, their names and what peft saves are a plain LoRA Linear's.
    """
    global _FUSED
    if _FUSED is None:
        from peft.tuners.lora.layer import Linear

        class FusedLinear(Linear):
            def forward(self, x, *args, **kwargs):
                adapters = self.active_adapters
                if (args or kwargs or self.disable_adapters or self.merged or len(adapters) != 1
                        or adapters[0] not in self.lora_A or not torch.is_grad_enabled() or self.lora_variant
                        or not isinstance(self.lora_dropout[adapters[0]], torch.nn.Identity)):
                    return super().forward(x, *args, **kwargs)  # peft's own path
                name, base = adapters[0], self.get_base_layer()
                return FusedLoRA.apply(x, base.weight, base.bias, self.lora_A[name].weight,
                                       self.lora_B[name].weight, self.scaling[name])

        _FUSED = FusedLinear
    return _FUSED


_FUSED = None


def register(config) -> None:
    """Have peft build the linear layers that `config` (a LoraConfig) adapts as `FusedLinear`."""
    config._register_custom_module({torch.nn.Linear: fused_layer_class()})


def count(model) -> int:
    """How many of `model`'s layers train through `FusedLoRA`."""
    return sum(isinstance(m, fused_layer_class()) for m in model.modules())
