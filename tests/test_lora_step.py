"""The fused LoRA training node: the same loss and gradients as peft's own forward, and peft's path where it must."""

import pytest
import torch

from homework import batches, lora_step, sft, training
from homework.base_llm import BaseLLM

ROWS = [("Convert 1 m to ft.", 3.28), ("How many g in 2 kg?", 2000), ("What is 7 hours in minutes?", 420),
        ("6 B to gigabytes?", 6e-9)]


def _model(tiny_checkpoint, dtype, fused):
    torch.manual_seed(0)
    model = training.build_model(BaseLLM(tiny_checkpoint, dtype=dtype), rank=4, fused=fused)
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if p.requires_grad:  # lora_B starts at zero; weight it so that both adapter matrices get gradients
            torch.nn.init.normal_(p, std=0.05)
    return model


def _loss_and_grads(model, batch):
    model.zero_grad()
    loss = training.answer_loss(model, batch)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("pack", [False, True])
def test_fused_path_gives_peft_loss_and_gradients_in_fp32(tiny_checkpoint, pack):
    llm_tok = BaseLLM(tiny_checkpoint, dtype=torch.float32).tokenizer
    rows = sft.encode_rows(llm_tok, ROWS)
    batch = (batches.PackCollator(llm_tok.pad_token_id, width=40) if pack
             else batches.PadCollator(llm_tok.pad_token_id))(rows)
    fused = _model(tiny_checkpoint, torch.float32, fused=True)
    plain = _model(tiny_checkpoint, torch.float32, fused=False)
    loss, grads = _loss_and_grads(fused, batch)
    plain_loss, plain_grads = _loss_and_grads(plain, batch)
    assert loss == pytest.approx(plain_loss, rel=1e-5)
    assert grads.keys() == plain_grads.keys() and len(grads) == 2 * 7 * 2  # A and B of 7 layers in 2 blocks
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, plain_grads[name], rtol=1e-4, atol=1e-6)


def test_fused_path_in_bf16_keeps_fp32_gradients_and_the_loss(tiny_checkpoint):
    """bf16 base: the fused node returns fp32 gradients for the fp32 adapter, within bf16 rounding of peft's."""
    llm_tok = BaseLLM(tiny_checkpoint, dtype=torch.float32).tokenizer
    batch = batches.PackCollator(llm_tok.pad_token_id)(sft.encode_rows(llm_tok, ROWS))
    loss, grads = _loss_and_grads(_model(tiny_checkpoint, torch.bfloat16, fused=True), batch)
    plain_loss, plain_grads = _loss_and_grads(_model(tiny_checkpoint, torch.bfloat16, fused=False), batch)
    assert loss == pytest.approx(plain_loss, rel=0.01)
    for name, grad in grads.items():
        assert grad.dtype == torch.float32, name
        assert torch.nn.functional.cosine_similarity(grad.flatten(), plain_grads[name].flatten(), dim=0) > 0.99, name


def test_fused_node_matches_autograd_with_a_bias_and_a_batch_dimension():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    w, bias = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    a = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, a, b: lora_step.FusedLoRA.apply(x, w, bias, a, b, 2.5), (x, a, b))
    expected = x @ w.t() + bias + 2.5 * (x @ a.t()) @ b.t()
    torch.testing.assert_close(lora_step.FusedLoRA.apply(x, w, bias, a, b, 2.5), expected)


def test_generation_and_disabled_adapters_take_peft_path(tiny_checkpoint):
    """No gradients (generation, evaluation) or the adapter switched off: peft's own forward, the same outputs."""
    model = _model(tiny_checkpoint, torch.float32, fused=True)
    plain = _model(tiny_checkpoint, torch.float32, fused=False)
    ids = torch.tensor([[1, 5, 9, 200, 7]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, plain(input_ids=ids).logits)
        with model.disable_adapter():
            off = model(input_ids=ids).logits
        with plain.disable_adapter():
            torch.testing.assert_close(off, plain(input_ids=ids).logits)
    with model.disable_adapter():  # with gradients on too
        torch.testing.assert_close(model(input_ids=ids).logits, off)


def test_every_adapted_layer_is_fused_and_saves_as_plain_lora(tiny_checkpoint, tmp_path, monkeypatch):
    """peft builds each adapted layer as FusedLinear, loaded adapters too, and a training forward runs the fused
    node in each; the saved weights' names are peft's."""
    fused, plain = _model(tiny_checkpoint, torch.float32, fused=True), _model(tiny_checkpoint, torch.float32, fused=False)
    assert lora_step.count(fused) == 7 * 2 and lora_step.count(plain) == 0
    calls, apply = [], lora_step.FusedLoRA.apply
    monkeypatch.setattr(lora_step.FusedLoRA, "apply", lambda *args: calls.append(1) or apply(*args))
    fused(input_ids=torch.tensor([[1, 5, 9]]))
    assert len(calls) == 7 * 2
    fused.save_pretrained(tmp_path / "fused")
    plain.save_pretrained(tmp_path / "plain")
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "fused" / "adapter_model.safetensors")
    assert saved.keys() == load_file(tmp_path / "plain" / "adapter_model.safetensors").keys()
    assert "_custom_modules" not in (tmp_path / "fused" / "adapter_config.json").read_text()
    again = training.build_model(BaseLLM(tiny_checkpoint, dtype=torch.float32), rank=4, init_adapter=tmp_path / "fused")
    assert lora_step.count(again) == 7 * 2


def test_a_layer_with_dropout_takes_peft_path(tiny_checkpoint):
    """Dropout is outside the fused node: such a layer runs peft's own forward (random, so not the fused one)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, lora_dropout=0.5, target_modules="all-linear")
    lora_step.register(config)
    model = get_peft_model(BaseLLM(tiny_checkpoint, dtype=torch.float32).model, config)
    assert lora_step.count(model) == 7 * 2
    for name, p in model.named_parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    ids = torch.tensor([[1, 5, 9, 200, 7]])
    torch.manual_seed(0)
    first = model(input_ids=ids).logits
    torch.manual_seed(1)
    assert not torch.equal(first, model(input_ids=ids).logits), "dropout was skipped"
