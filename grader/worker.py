"""One grading case, run in the sandbox, in a fresh interpreter whose import path holds only the graded package.

Started by grader.grader as `python grader/worker.py PACKAGE_PARENT CASE REQUEST.json`; prints one line
`GRADER_RESULT {json}` with what the package's own code produced: texts, answers, prompt texts, and the
seconds the course's grader would time (the package's own clock: advice, never points). Nothing
it prints is a score or a verdict: the grader scores in its clean room (grader/cleanroom.py) and uses
these only to check that the package's code agrees with the clean room's decoding of the same model.
"""

import json
import sys
import time


def case_generation(homework, request, batched: bool):
    started = time.perf_counter()  # the course times model load and generation together
    llm = homework.BaseLLM()
    questions = request["questions"]  # raw, as the course's grader passes them: no format_prompt
    texts = llm.batched_generate(questions) if batched else [llm.generate(q) for q in questions]
    return {"texts": texts, "seconds": time.perf_counter() - started}


def case_model(homework, request):
    """The file's questions in one answer() call, then the fresh ones in another (the clean room decodes the
    same two batches), and the prompt text of each; `seconds` is what the course times: the load and the
    file's questions."""
    kind = request["kind"]
    started = time.perf_counter()
    llm = getattr(homework, f"load_{kind}")()
    answers = [float(a) for a in llm.answer(*request["valid"])]
    seconds = time.perf_counter() - started
    answers += [float(a) for a in llm.answer(*request["fresh"])]
    prompts = [llm.format_prompt(q) for q in request["valid"] + request["fresh"]]
    return {"answers": answers, "seconds": seconds, "prompts": prompts}


def main():
    package_parent, case, request_path = sys.argv[1:4]
    import sandbox  # grader/sandbox.py, beside this file, before the graded package's folder replaces it

    if not sandbox.deny_unix_sockets():
        print("worker: AF_UNIX sockets stay open (no seccomp filter for this machine)", file=sys.stderr)
    sys.path[0] = package_parent  # this file's folder out, the graded package's folder in
    del sys.modules["sandbox"]
    with open(request_path) as f:
        request = json.load(f)
    import homework

    if case in ("generate", "batched_generate"):
        result = case_generation(homework, request, batched=case == "batched_generate")
    elif case == "prompts":  # prompts only, for another set of questions (the grader's probe)
        llm = getattr(homework, f"load_{request['kind']}")()
        result = {"prompts": [llm.format_prompt(q) for q in request["questions"]]}
    else:
        result = case_model(homework, request)
    print("GRADER_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
