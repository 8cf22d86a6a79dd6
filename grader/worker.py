"""One grading case, run in a fresh interpreter whose import path holds only the graded package.

Started by grader.grader as `python grader/worker.py PACKAGE_PARENT CASE REQUEST.json`; prints one line
`GRADER_RESULT {json}`. It returns raw answers and texts; all scoring happens in the grader's own process.
"""

import json
import sys


def _course_loss(llm, questions, texts):
    """The course's generation score as its grader computes it: one padded batch with the package's tokenizer
    as the package left it, one forward pass with that mask, the mean over every position, padding included."""
    import torch

    with torch.inference_mode():
        batch = llm.tokenizer([q + t for q, t in zip(questions, texts)], padding=True, return_tensors="pt")
        batch = batch.to(llm.model.device)
        logits = llm.model(batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch["input_ids"][:, 1:].flatten()).item()


def _masked_loss(llm, questions, texts):
    """Our own figure beside it: the mean loss of each row's real tokens, padding left out."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for question, text in zip(questions, texts):
            ids = llm.tokenizer(question + text, return_tensors="pt").input_ids.to(llm.model.device)
            if ids.shape[1] < 2:
                continue
            logits = llm.model(ids).logits.float()
            total += torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum").item()
            count += ids.shape[1] - 1
    return total / max(count, 1)


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def case_generation(homework, request, batched: bool):
    llm = homework.BaseLLM()
    questions = request["questions"]  # raw, as the course's grader passes them: no format_prompt
    texts = llm.batched_generate(questions) if batched else [llm.generate(q) for q in questions]
    return {"loss": _course_loss(llm, questions, texts), "masked_loss": _masked_loss(llm, questions, texts),
            "empty": sum(not t.strip() for t in texts), "params": _params(llm.model), "examples": texts[:3]}


def _own_greedy(llm, prompts):
    """Greedy decoding written here, not the package's: answers must follow from model + prompt alone."""
    import torch

    out = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = llm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(llm.model.device)
            gen = llm.model.generate(**ids, max_new_tokens=min(int(getattr(llm, "max_new_tokens", 64)), 256),
                                     do_sample=False, pad_token_id=llm.tokenizer.pad_token_id)
            out.append(llm.tokenizer.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def _method_overrides(homework, llm):
    base = homework.base_llm.BaseLLM
    bad = []
    for name in ("answer", "generate", "batched_generate", "parse_answer"):
        if name in vars(llm):
            bad.append(f"{name} replaced on the instance")
        elif getattr(type(llm), name, None) is not getattr(base, name):
            bad.append(f"{name} overridden by {type(llm).__name__}")
    return bad


def _adapter_checks(llm, adapter_file, base_dir):
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    if not hasattr(llm.model, "peft_config"):
        return {"adapter_problems": ["the loaded model carries no LoRA adapter"]}
    problems = []
    try:
        saved = load_file(adapter_file)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a finding, not a crash
        return {"adapter_problems": [f"adapter file unreadable: {type(err).__name__}"]}
    live = get_peft_model_state_dict(llm.model)
    if set(saved) != set(live):
        problems.append("adapter tensors in the model differ from the adapter file's names")
    elif any(not torch.equal(live[k].float().cpu(), saved[k].float()) for k in saved):
        problems.append("adapter weights in the model differ from the adapter file")
    if all(float(v.abs().sum()) == 0 for k, v in saved.items() if "lora_B" in k):
        problems.append("adapter is untrained (all LoRA B weights are zero)")
    reference = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).state_dict()
    for name, value in llm.model.named_parameters():
        if "lora_" in name:
            continue
        key = name.replace("base_model.model.", "", 1).replace(".base_layer", "")
        ref = reference.get(key)
        if ref is None or ref.shape != value.shape or not torch.equal(ref.to(value.dtype), value.detach().cpu()):
            problems.append(f"base weight {key} differs from the embedded base model")
            break
    return {"adapter_problems": problems}


def case_model(homework, request):
    kind = request["kind"]
    llm = getattr(homework, f"load_{kind}")()
    questions = request["valid"] + request["fresh"]
    answers = [float(a) for a in llm.answer(*questions)]
    probe = request["fresh"][: request["probe"]]
    result = {
        "answers": answers,
        "params": _params(llm.model),
        "overrides": _method_overrides(homework, llm),
        "regenerated": _own_greedy(llm, [llm.format_prompt(q) for q in probe]),
    }
    if kind in ("sft", "rft"):
        result.update(_adapter_checks(llm, request["adapter_file"], request["base_dir"]))
        if hasattr(llm.model, "disable_adapter"):
            with llm.model.disable_adapter():
                result["adapter_off"] = [float(a) for a in llm.answer(*probe)]
    return result


def main():
    package_parent, case, request_path = sys.argv[1:4]
    sys.path[0] = package_parent  # this file's folder out, the graded package's folder in
    with open(request_path) as f:
        request = json.load(f)
    import homework

    if case in ("generate", "batched_generate"):
        result = case_generation(homework, request, batched=case == "batched_generate")
    else:
        result = case_model(homework, request)
    print("GRADER_RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
